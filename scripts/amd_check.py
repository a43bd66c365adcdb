#!/usr/bin/env python
"""Check energybench's amdsmi figures on a real AMD GPU (or replay a trace through the fake amdsmi).

Runs an idle window, then matrix multiplications on ``cuda:N`` (a ROCm build of torch drives AMD GPUs through
torch.cuda), both inside energybench's meter with the GPU measured twice over the same windows: by the amdsmi
energy accumulator (``gpu:N``) and by polled power integrated with the trapezoid rule (``gpu:N-polled``, not
added). Prints both energies, their ratio, idle power, the GPU's identity and ``energybench sensors``.

    python scripts/amd_check.py                          # on a ROCm machine (pip install 'energybench[amd]')
    python scripts/amd_check.py --record tests/support/data/amd_trace_mi300x.json   # also save a replayable trace
    python scripts/amd_check.py --fake-amdsmi tests/support/data/amd_synthetic.json --fake-start 4.5 \\
        --gpu-index 1 --seconds 1 --idle-seconds 0.5 --size 64      # no GPU: replay a trace (tests do this)

Checks, exit 1 if any fails:

1. the counter moves under load and agrees with integrated power within 20 % (the faults of ROCm/amdsmi#38 and
   #115 -- a counter that stands still or steps back -- fail here, with the sampler's warning);
2. edge reads: inner windows inside an open outer one never report a reset, wrap or impossible figure;
3. the share of the GPU (``--share``): this process's part of the counter's energy while it is alone on the
   GPU is (nearly) all of it, and the per-process figures add up to the device's energy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from gpu_check import _fmt, check_nested_edges, energy, prepare_matmuls, run_matmuls, sensors_output  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="matmul window length (default 20)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle window length (default 5)")
    p.add_argument("--gpu-index", type=int, default=0, help="GPU as this process numbers it (default 0)")
    p.add_argument("--size", type=int, default=8192, help="square matrix size (default 8192)")
    p.add_argument("--dtype", default="bfloat16", help="torch dtype on the GPU (default bfloat16)")
    p.add_argument("--interval", type=float, default=0.05, help="power polling interval in s (default 0.05)")
    p.add_argument("--share", action="store_true", help="also measure this process's share of the GPU")
    p.add_argument("--record", type=Path, help="write a trace in tests/support/fake_amdsmi.py's format here")
    p.add_argument("--json", type=Path, help="write the summary as JSON to this path")
    p.add_argument("--fake-amdsmi", type=Path, help="replay this trace through tests/support/fake_amdsmi.py")
    p.add_argument("--fake-start", type=float, default=0.0, help="trace time at which the replay starts")
    p.add_argument("--no-sensors", action="store_true", help="skip running `energybench sensors`")
    p.add_argument("--check-windows", type=int, default=3, help="inner windows in the edge check (default 3)")
    return p.parse_args(argv)


def load_amdsmi(args: argparse.Namespace) -> tuple[Any, str]:
    if not args.fake_amdsmi:
        from energybench.samplers.amd.library import import_amdsmi

        return import_amdsmi({}), "amdsmi (ROCm)"
    sys.path.insert(0, str(REPO / "tests" / "support"))
    from fake_amdsmi import FakeAmdSmi

    origin = time.monotonic() - args.fake_start
    fake = FakeAmdSmi(args.fake_amdsmi, clock=lambda: time.monotonic() - origin)
    for device in fake.devices:  # the replay has no processes of its own: this one holds 90 % of each GPU
        device.spec.setdefault("processes", [{"pid": os.getpid(), "gfx_fraction": 0.9},
                                             {"pid": 1, "gfx_fraction": 0.1}])
    return fake, f"fake amdsmi replaying {args.fake_amdsmi}"


class Recorder:
    """Raw ``amdsmi_get_energy_count`` answers and power, written as a replayable trace (recorded_answers)."""

    def __init__(self, amdsmi: Any, handle: Any) -> None:
        self.amdsmi, self.handle, self.t0 = amdsmi, handle, time.monotonic()
        self.answers: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []

    def sample(self) -> None:
        t = round(time.monotonic() - self.t0, 4)
        try:
            self.answers.append({"t": t, "answer": dict(self.amdsmi.amdsmi_get_energy_count(self.handle))})
        except self.amdsmi.AmdSmiException:
            pass
        info = self.amdsmi.amdsmi_get_power_info(self.handle)
        watts = next((info[k] for k in ("current_socket_power", "average_socket_power")
                      if isinstance(info.get(k), int)), None)
        if watts is not None:
            self.samples.append({"t": t, "power_w": watts})

    def trace(self, identity: dict[str, Any], fake: bool) -> dict[str, Any]:
        where = "re-recorded from a fake: NOT a device measurement" if fake else \
            f"recorded by scripts/amd_check.py on {platform.node()} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        return {"synthetic": fake, "note": where, "recorded_with": "scripts/amd_check.py",
                "driver_version": identity.get("driver_version"), "devices": [{
                    "market_name": identity.get("name"), "uuid": identity.get("uuid"), "hip_id": 0,
                    "power_cap_uw": int((identity.get("power_cap_w") or 0) * 1e6),
                    "compute_partition": identity.get("compute_partition"),
                    "recorded_answers": self.answers, "samples": self.samples or [{"t": 0, "power_w": 0}]}]}


def measure(samplers: list[Any], prepared: dict[str, Any], args: argparse.Namespace,
            recorder: Recorder | None) -> tuple[Any, Any, dict[str, Any]]:
    from energybench.measuring.meter import Meter

    meter = Meter(samplers, interval=args.interval)
    try:
        if recorder:
            recorder.sample()
        with meter.window("idle") as idle:
            time.sleep(args.idle_seconds)
        if recorder:
            recorder.sample()
        with meter.window("matmul") as load:
            work = run_matmuls(prepared, args.seconds)
        if recorder:
            recorder.sample()
    finally:
        meter.close()
    return idle.result, load.result, work


def check_counter(load: Any, key: str) -> tuple[bool, str]:
    counter_j, polled_j = energy(load, key), energy(load, f"{key}-polled")
    stuck = [w for w in load.warnings if "have not moved" in w or "went backwards" in w]
    ratio = counter_j / polled_j if counter_j and polled_j else None
    ok = bool(counter_j) and not stuck and ratio is not None and 0.8 <= ratio <= 1.25
    return ok, (f"counter {_fmt(counter_j, 'J')}, integrated power {_fmt(polled_j, 'J')}, ratio "
                f"{_fmt(ratio, '')}{'; ' + stuck[0] if stuck else ''}")


def check_share(options: dict[str, Any], key: str, prepared: dict[str, Any]) -> tuple[bool, str]:
    from energybench.measuring.meter import Meter
    from energybench.samplers import amd

    samplers = amd.FACTORY.create({**options, "amd_mode": "auto", "gpu_share": True})
    with Meter(samplers) as meter, meter.window("share") as w:
        run_matmuls(prepared, 2.0)
    stats = w.result.metadata["samplers"][samplers[0].name]["window"].get("shared_gpu") or {}
    device = stats.get("device_j") or 0.0
    parts = sum(p["energy_j"] for p in stats.get("processes", {}).values()) + stats.get("unattributed_j", 0.0)
    mine = stats.get("this_process_tree_j") or 0.0
    ok = device > 0 and abs(parts - device) <= 1e-6 * device and mine >= 0.5 * device
    return ok, (f"device {device:.4g} J; this process {mine:.4g} J; all processes + unattributed {parts:.4g} J"
                f"{'; n/a: ' + str(stats.get('unavailable')) if stats.get('unavailable') else ''}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from energybench.samplers import amd

    if not args.no_sensors:
        print("== energybench sensors (this machine)")
        print(sensors_output())
    prepared = prepare_matmuls(args.size, args.dtype, args.gpu_index)
    module, source = load_amdsmi(args)
    options = {"amdsmi_module": module, "gpu_indices": [args.gpu_index], "amd_mode": "both"}
    probe = amd.FACTORY.probe(options)
    print(f"== amdsmi through {source}: {'available' if probe.available else 'unavailable: ' + probe.reason}")
    if not probe.available:
        return 1
    samplers = amd.FACTORY.create(options)
    key, identity = f"gpu:{args.gpu_index}", samplers[0].identity
    recorder = Recorder(module, samplers[0].target.handle) if args.record else None
    idle, load, work = measure(samplers, prepared, args, recorder)
    print(f"== GPU {key}: {identity['name']} {identity['uuid']} partition {identity['compute_partition']}, "
          f"power cap {identity['power_cap_w']} W, HIP index {identity['hip_index']}")
    print(f"matmuls: {work['iterations']} x {work['size']}^2 {work['dtype']} on {work['device']}, "
          f"{work['tflops']:.3g} TFLOP/s")
    idle_j = energy(idle, key)
    print(f"idle power over {idle.duration_s:.2f} s: {_fmt(idle_j / idle.duration_s if idle_j else None, 'W')}")
    for warning in list(idle.warnings) + list(load.warnings):
        print(f"warning: {warning}")
    checks = {"1 counter under load": check_counter(load, key)}
    counters = [s for s in amd.FACTORY.create({**options, "amd_mode": "counter"})]
    checks["2 edge reads"] = check_nested_edges(counters, key, prepared, args.check_windows)
    for s in counters:
        s.close()
    if args.share:
        checks["3 share of the GPU"] = check_share(options, key, prepared)
    for name, (ok, detail) in checks.items():
        print(f"check {name}: {'PASS' if ok else 'FAIL'}: {detail}")
    summary = {"source": source, "gpu": identity, "workload": work, "load_seconds": load.duration_s,
               "counter_j": energy(load, key), "polled_j": energy(load, f"{key}-polled"),
               "checks": {n: {"passed": ok, "detail": d} for n, (ok, d) in checks.items()}}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    if recorder:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(recorder.trace(identity, bool(args.fake_amdsmi)), indent=1) + "\n")
        print(f"trace: {len(recorder.answers)} counter answers written to {args.record}")
    return 0 if all(ok for ok, _ in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
