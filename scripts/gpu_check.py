#!/usr/bin/env python
"""Check energybench's NVML figures on a real NVIDIA GPU (or replay a trace through the fake NVML).

Runs an idle window, then ~20 s of torch matrix multiplications, both inside energybench's meter with the GPU
measured twice over the same windows: by the NVML energy counter (``gpu:N``) and by polled power integrated
with the trapezoid rule (``gpu:N-polled``, not added to the total). Prints the counter energy, the
power-integrated energy, their ratio, idle power, the GPU's identity and the ``energybench sensors`` output.

    python scripts/gpu_check.py                          # on a GPU machine
    python scripts/gpu_check.py --record tests/support/data/nvml_trace_h200.json   # also save a replayable trace
    python scripts/gpu_check.py --fake-nvml tests/support/data/nvml_synthetic.json --fake-start 1.4 \\
        --seconds 1 --idle-seconds 0.5 --size 64          # no GPU: replay a trace (tests do this)

On a machine without CUDA, torch runs the matmuls on the CPU; the NVML figures then come only from the trace.

Then it checks three defects that once made figures silently wrong, and exits 1 if any check fails:

1. trial windows: a window around one short GPU call has no figure (never 0 J or a whole counter update
   passed off as the call's energy), and windows sized by ``energybench.run.calibration`` (as ``energybench
   run`` sizes its trials) all carry the GPU's energy;
2. only the job's GPUs: a run on ``cuda:N`` measures GPU N alone, the others visible are named, not added;
3. edge reads: inner windows opened and closed while an outer one is open (and kernels are queued, so each
   edge waits for a CUDA sync) never report a counter reset or wrap, nor more than the GPU could draw.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="matmul window length (default 20)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle window length (default 5)")
    p.add_argument("--gpu-index", type=int, default=0, help="GPU as this process numbers it (default 0)")
    p.add_argument("--size", type=int, default=8192, help="square matrix size (default 8192)")
    p.add_argument("--dtype", default="bfloat16", help="torch dtype on CUDA (default bfloat16; CPU uses float32)")
    p.add_argument("--interval", type=float, default=0.05, help="power polling interval in s (default 0.05)")
    p.add_argument("--record", type=Path, help="write a trace in tests/support/fake_nvml.py's format to this path")
    p.add_argument("--json", type=Path, help="write the summary as JSON to this path")
    p.add_argument("--fake-nvml", type=Path, help="replay this trace through tests/support/fake_nvml.py (testing)")
    p.add_argument("--fake-start", type=float, default=0.0, help="trace time at which the replay starts")
    p.add_argument("--no-sensors", action="store_true", help="skip running `energybench sensors`")
    p.add_argument("--check-windows", type=int, default=3, help="windows per defect check (default 3)")
    return p.parse_args(argv)


def load_nvml(args: argparse.Namespace) -> tuple[Any, str]:
    trace = args.fake_nvml or os.environ.get("ENERGYBENCH_FAKE_NVML")
    if not trace:
        import pynvml

        return pynvml, "pynvml (nvidia-ml-py)"
    sys.path.insert(0, str(REPO / "tests" / "support"))
    from fake_nvml import FakeNvml

    origin = time.monotonic() - args.fake_start
    return FakeNvml(trace, clock=lambda: time.monotonic() - origin), f"fake NVML replaying {trace}"


class TraceRecorder:
    """Polls raw NVML values in its own thread and writes them in the fake's trace format."""

    def __init__(self, nvml: Any, handle: Any, period_s: float = 0.05) -> None:
        self.nvml, self.handle, self.period = nvml, handle, period_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-check-recorder", daemon=True)
        self.t0 = time.monotonic()
        self.energy_counter = self._try(lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle)) is not None
        self.power_instant = self._instant() is not None
        self.utilization = self._try(lambda: nvml.nvmlDeviceGetUtilizationRates(handle)) is not None

    def _try(self, fn: Any) -> Any:
        try:
            return fn()
        except self.nvml.NVMLError:
            return None

    def _instant(self) -> int | None:
        values = self._try(
            lambda: self.nvml.nvmlDeviceGetFieldValues(self.handle, [self.nvml.NVML_FI_DEV_POWER_INSTANT])
        )
        if values is None or values[0].nvmlReturn != 0:
            return None
        return int(values[0].value.uiVal)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def sample(self) -> None:
        n, h = self.nvml, self.handle
        row: dict[str, Any] = {"t": round(time.monotonic() - self.t0, 4)}
        power = self._instant() if self.power_instant else None
        row["power_mw"] = power if power is not None else self._try(lambda: n.nvmlDeviceGetPowerUsage(h))
        if self.energy_counter:
            row["energy_mj"] = self._try(lambda: n.nvmlDeviceGetTotalEnergyConsumption(h))
        if self.utilization:
            util = self._try(lambda: n.nvmlDeviceGetUtilizationRates(h))
            mem = self._try(lambda: n.nvmlDeviceGetMemoryInfo(h))
            if util is not None and mem is not None:
                row.update(util_gpu=util.gpu, util_mem=util.memory, mem_used=mem.used)
        self.samples.append(row)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def trace(self, identity: dict[str, Any], source: str, fake: bool) -> dict[str, Any]:
        n, h = self.nvml, self.handle
        mem = self._try(lambda: n.nvmlDeviceGetMemoryInfo(h))
        mig = self._try(lambda: n.nvmlDeviceGetMigMode(h))
        samples = [s for s in self.samples if s.get("power_mw") is not None]
        if self.energy_counter and any(s.get("energy_mj") is None for s in samples):
            samples = [s for s in samples if s.get("energy_mj") is not None]
        note = (
            f"re-recorded from {source}: NOT a device measurement"
            if fake
            else f"recorded by scripts/gpu_check.py on {platform.node()} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        )
        return {
            "synthetic": fake,
            "note": note,
            "recorded_with": "scripts/gpu_check.py",
            "driver_version": identity.get("driver_version"),
            "init_error": None,
            "devices": [
                {
                    "name": identity.get("name"),
                    "uuid": identity.get("uuid"),
                    "power_limit_mw": int((identity.get("power_limit_w") or 0) * 1000),
                    "memory_total": int(mem.total) if mem is not None else 0,
                    "energy_counter": self.energy_counter,
                    "power_instant": self.power_instant,
                    "utilization": self.utilization,
                    **({"mig_mode": list(mig)} if mig is not None else {}),
                    "mig_devices": [],
                    "counter_period_s": 0.1,
                    "energy_start_mj": samples[0].get("energy_mj", 0) if samples else 0,
                    "counter_resets_at": [],
                    "lost_at_s": None,
                    "samples": samples,
                }
            ],
        }


def sensors_output() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "energybench", "sensors"], capture_output=True, text=True, check=False, timeout=120
    )
    return (out.stdout + out.stderr).rstrip() + (f"\n(exit code {out.returncode})" if out.returncode else "")


def prepare_matmuls(size: int, dtype_name: str, gpu_index: int) -> dict[str, Any]:
    """Import torch and allocate the operands before any window opens (torch's import alone takes seconds)."""
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{gpu_index}" if cuda else "cpu")
    dtype = getattr(torch, dtype_name) if cuda else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up: kernel selection and cuBLAS handles stay out of the measured window
    if cuda:
        torch.cuda.synchronize(device)
    return {"torch": torch, "cuda": cuda, "device": device, "dtype": dtype, "a": a, "b": b, "size": size}


def run_matmuls(prepared: dict[str, Any], seconds: float) -> dict[str, Any]:
    torch, cuda, device, a, b = (prepared[k] for k in ("torch", "cuda", "device", "a", "b"))
    iterations = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        iterations += 10
        if cuda:
            torch.cuda.synchronize(device)  # keep the launch queue short so the window ends on time
    elapsed = time.perf_counter() - start
    size = prepared["size"]
    return {
        "device": str(device),
        "dtype": str(prepared["dtype"]).replace("torch.", ""),
        "size": size,
        "iterations": iterations,
        "tflops": 2 * size**3 * iterations / elapsed / 1e12,
    }


def small_op(prepared: dict[str, Any]) -> Any:
    """One short GPU call (a 256^2 matmul, synchronised): far shorter than the counter's 0.1 s updates."""
    torch, cuda, device = prepared["torch"], prepared["cuda"], prepared["device"]
    x = torch.randn(256, 256, device=device, dtype=prepared["dtype"])

    def call() -> None:
        x @ x
        if cuda:
            torch.cuda.synchronize(device)

    return call


def check_trial_windows(samplers: list[Any], key: str, call: Any, n: int) -> tuple[bool, str]:
    """Defect 1: a short window has no figure or a stated one; calibrated windows all carry the GPU."""
    import math

    from energybench.measuring.meter import Meter
    from energybench.run.calibration import calibrate, window_target_s

    want = window_target_s(samplers)
    runs = calibrate(call, want)
    short, sized = [], []
    with Meter(samplers) as meter:
        for i in range(n):
            with meter.window(f"short{i}") as w:
                call()
            short.append(w.result)
            with meter.window(f"sized{i}") as w:
                t0 = time.perf_counter()
                done = 0
                while done < runs or time.perf_counter() - t0 < want:
                    call()
                    done += 1
            sized.append(w.result)
    # a window shorter than one counter update: n/a, or a figure that says it spans few updates
    bad_short = [r for r in short if (g := energy(r, key)) is not None and math.isfinite(g)
                 and not any(key in x and "counter update" in x for x in r.warnings)]
    bad_sized = [r for r in sized if key in r.missing_domains or r.partial or r.duration_s < 0.9 * want]
    ok = not bad_short and not bad_sized
    watts = [(energy(r, key) or math.nan) / r.duration_s for r in sized]
    detail = (f"{n} single-call windows: {sum(1 for r in short if key in r.missing_domains)} n/a, "
              f"{len(bad_short)} unflagged figures; {n} windows of >= {runs} calls sized for {want:.3g} s: "
              f"GPU {', '.join(f'{w:.4g} W' for w in watts)} over {', '.join(f'{r.duration_s:.3g} s' for r in sized)}, "
              f"{len(bad_sized)} partial or short")
    return ok, detail


def check_only_the_jobs_gpu(options: dict[str, Any], index: int) -> tuple[bool, str]:
    """Defect 2: a run on cuda:N measures GPU N alone and names the other visible GPUs."""
    from energybench.measuring.meter import Meter
    from energybench.run.devices import devices_record, sampler_options_for

    device = f"cuda:{index}"
    chosen = sampler_options_for(device, {k: v for k, v in options.items() if k != "gpu_indices"})
    with Meter(options={**chosen, "samplers": ["nvml"]}) as meter:
        keys = sorted({d.key for s in meter.samplers for d in s.domains() if d.counted})
        record = devices_record(device, chosen, meter.samplers, chosen_by=f"--device {device}")
    ok = keys == [f"gpu:{index}"]
    return ok, f"--device {device} measured {', '.join(keys) or 'nothing'}; seen, not measured: " \
               f"{', '.join(record.gpus_not_measured) or 'none'}"


def check_nested_edges(samplers: list[Any], key: str, prepared: dict[str, Any], n: int) -> tuple[bool, str]:
    """Defect 4: inner windows inside an open outer one, with kernels queued at every edge."""
    from energybench.measuring.meter import Meter

    a, b = prepared["a"], prepared["b"]
    bound = next((d.max_power_w for s in samplers for d in s.domains() if d.key == key), None) or 3000.0
    inner = []
    with Meter(samplers, counter_interval=0.02) as meter:
        meter.begin("outer")
        for i in range(n):
            for _ in range(4):
                a @ b  # queued: the inner window's edges wait for them (CUDA sync) while the poller reads
            with meter.window(f"inner{i}") as w:
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < 0.6:  # six counter updates: long enough for a figure
                    for _ in range(4):
                        a @ b
                    if prepared["cuda"]:
                        prepared["torch"].cuda.synchronize(prepared["device"])
                for _ in range(4):
                    a @ b  # queued again at the end edge
            inner.append(w.result)
        outer = meter.end("outer")
    bad = [r for r in inner + [outer] if r.lower_bound_domains or any(
        ("backwards" in x or "impossible" in x or "wrap" in x) for x in r.warnings)
        or (energy(r, key) or 0.0) > bound * (r.duration_s + 0.2)]
    ok = not bad and sum(energy(r, key) or 0.0 for r in inner) <= (energy(outer, key) or 0.0) + 1e-6
    return ok, (f"{n} inner windows in an outer one: {len(bad)} with a reset, wrap or impossible figure; "
                f"inner sum {sum(energy(r, key) or 0.0 for r in inner):.4g} J <= outer {energy(outer, key) or 0:.4g} J")


def energy(result: Any, key: str) -> float | None:
    for d in result.domains:
        if d.key == key:
            return d.energy_j
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from energybench.measuring.meter import Meter
    from energybench.samplers import nvml as nv

    if not args.no_sensors:
        print("== energybench sensors (this machine)")
        print(sensors_output())
    prepared = prepare_matmuls(args.size, args.dtype, args.gpu_index)
    module, source = load_nvml(args)  # after torch's import, so a replayed trace starts with the windows
    options = {"nvml_module": module, "gpu_indices": [args.gpu_index], "nvml_mode": "both"}
    probe = nv.FACTORY.probe(options)
    print(f"== NVML through {source}: {'available' if probe.available else 'unavailable: ' + probe.reason}")
    if not probe.available:
        return 1
    samplers = nv.FACTORY.create(options)
    key = f"gpu:{args.gpu_index}"
    identity = samplers[0].identity
    recorder = TraceRecorder(module, samplers[0].target.handle) if args.record else None
    if recorder:
        recorder.start()
    meter = Meter(samplers, interval=args.interval)
    try:
        with meter.window("idle") as idle:
            time.sleep(args.idle_seconds)
        with meter.window("matmul") as load:
            work = run_matmuls(prepared, args.seconds)
    finally:
        if recorder:
            recorder.stop()
        meter.close()
    idle_r, load_r = idle.result, load.result
    assert idle_r is not None and load_r is not None
    counter_j, polled_j = energy(load_r, key), energy(load_r, f"{key}-polled")
    if polled_j is None:  # a GPU without counter: the polling sampler owns the plain key
        counter_j, polled_j = None, energy(load_r, key)
    idle_counter, idle_polled = energy(idle_r, key), energy(idle_r, f"{key}-polled")
    summary = {
        "source": source,
        "gpu": identity,
        "workload": work,
        "load_seconds": load_r.duration_s,
        "counter_j": counter_j,
        "polled_j": polled_j,
        "ratio_counter_over_polled": counter_j / polled_j if counter_j and polled_j else None,
        "load_power_w": counter_j / load_r.duration_s if counter_j else None,
        "idle_seconds": idle_r.duration_s,
        "idle_power_counter_w": idle_counter / idle_r.duration_s if idle_counter else None,
        "idle_power_polled_w": idle_polled / idle_r.duration_s if idle_polled else None,
        "window_activity": load_r.metadata.get("samplers", {}).get(samplers[0].name, {}).get("window"),
        "warnings": list(idle_r.warnings) + list(load_r.warnings),
    }
    print(
        f"== GPU {key}: {identity['name']} {identity['uuid']} driver {identity['driver_version']}, "
        f"power limit {identity['power_limit_w']} W, MIG {identity['mig']}"
    )
    shape = f"{work['iterations']} x {work['size']}^2 {work['dtype']}"
    print(f"matmuls: {shape} on {work['device']}, {work['tflops']:.3g} TFLOP/s")
    print(f"counter energy ({nv.METHOD_COUNTER}):        {_fmt(counter_j, 'J')} over {load_r.duration_s:.3f} s")
    print(f"power-integrated energy ({nv.METHOD_POLLING}): {_fmt(polled_j, 'J')} (polled every {args.interval} s)")
    print(f"ratio counter / power-integrated:           {_fmt(summary['ratio_counter_over_polled'], '')}")
    print(f"load power (counter):                       {_fmt(summary['load_power_w'], 'W')}")
    print(
        f"idle power over {idle_r.duration_s:.2f} s: counter {_fmt(summary['idle_power_counter_w'], 'W')}, "
        f"polled {_fmt(summary['idle_power_polled_w'], 'W')}"
    )
    print(f"window activity: {summary['window_activity']}")
    for w in summary["warnings"]:
        print(f"warning: {w}")
    checks = {}
    counter = [s for s in nv.FACTORY.create({**options, "nvml_mode": "counter"})] if counter_j is not None else []
    if counter:
        checks["1 trial windows"] = check_trial_windows(counter, key, small_op(prepared), args.check_windows)
        for sampler in counter:
            sampler.close()
        counter = nv.FACTORY.create({**options, "nvml_mode": "counter"})
        checks["4 edge reads"] = check_nested_edges(counter, key, prepared, args.check_windows)
        for sampler in counter:
            sampler.close()
    checks["2 only the job's GPUs"] = check_only_the_jobs_gpu(options, args.gpu_index)
    for name, (ok, detail) in checks.items():
        print(f"check {name}: {'PASS' if ok else 'FAIL'}: {detail}")
    summary["checks"] = {name: {"passed": ok, "detail": detail} for name, (ok, detail) in checks.items()}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    if recorder:
        trace = recorder.trace(identity, source, fake=bool(args.fake_nvml or os.environ.get("ENERGYBENCH_FAKE_NVML")))
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(trace, indent=1) + "\n")
        print(f"trace: {len(trace['devices'][0]['samples'])} samples written to {args.record}")
    return 0 if all(ok for ok, _ in checks.values()) else 1


def _fmt(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.4g} {unit}".rstrip()


if __name__ == "__main__":
    sys.exit(main())
