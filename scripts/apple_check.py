#!/usr/bin/env python
"""Check energybench's Apple-silicon figures on a Mac (or against the fake zeus_apple_silicon).

Runs an idle window, then matrix multiplications on the GPU through torch's MPS backend (CPU where MPS is
missing), inside energybench's meter, and reads the same span through the binding's own ``begin_window`` /
``end_window`` as a second opinion. Prints every block's energy (CPU, GPU, ANE, DRAM, GPU SRAM), idle power,
the chip and ``energybench sensors``.

    pip install 'energybench[apple]' && python scripts/apple_check.py       # on an Apple-silicon Mac, no sudo
    python scripts/apple_check.py --fake-apple --seconds 1 --idle-seconds 0.5 --size 64   # anywhere (tests)

Checks, exit 1 if any fails:

1. the binding's own window over the load agrees with energybench's per-block figures within 2 % (both read
   the same IOReport counters: a larger gap means a read at the wrong moment);
2. under load the CPU and GPU blocks carry energy (a block stuck at 0 J would pass silently otherwise);
3. edge reads: inner windows inside an open outer one never report a reset or impossible figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from gpu_check import _fmt, energy, sensors_output  # noqa: E402

BLOCKS = {"cpu:package-0": "cpu_total_mj", "gpu:0": "gpu_mj", "ane:0": "ane_mj", "cpu:dram-0": "dram_mj",
          "gpu:0:sram": "gpu_sram_mj"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="matmul window length (default 20)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle window length (default 5)")
    p.add_argument("--size", type=int, default=4096, help="square matrix size (default 4096)")
    p.add_argument("--json", type=Path, help="write the summary as JSON to this path")
    p.add_argument("--fake-apple", action="store_true", help="use tests/support/fake_apple.py (testing)")
    p.add_argument("--no-sensors", action="store_true", help="skip running `energybench sensors`")
    p.add_argument("--check-windows", type=int, default=3, help="inner windows in the edge check (default 3)")
    return p.parse_args(argv)


def load_binding(fake: bool) -> tuple[Any, str]:
    if not fake:
        from energybench.samplers.apple import import_binding

        return import_binding({}), "zeus-apple-silicon (IOReport)"
    sys.path.insert(0, str(REPO / "tests" / "support"))
    from fake_apple import FakeAppleModule

    return FakeAppleModule(), "fake zeus_apple_silicon (an M2-Max-like chip at fixed power)"


def workload(size: int) -> tuple[Any, str]:
    """A callable that runs one batch of matmuls on MPS (or the CPU) and waits for it, and its device."""
    import torch

    mps = torch.backends.mps.is_available()
    device = torch.device("mps" if mps else "cpu")
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)

    def step() -> None:
        for _ in range(4):
            a @ b
        if mps:
            torch.mps.synchronize()

    step()  # warm-up outside any window
    return step, str(device)


def run_for(step: Any, seconds: float) -> int:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += 1
    return done


def check_binding_agrees(module: Any, samplers: list[Any], step: Any, seconds: float) -> tuple[bool, str]:
    from energybench.measuring.meter import Meter

    monitor = module.AppleEnergyMonitor()
    with Meter(samplers) as meter:
        monitor.begin_window("apple-check")
        with meter.window("load") as w:
            run_for(step, seconds)
        theirs = monitor.end_window("apple-check")
    gaps = {}
    for key, field in BLOCKS.items():
        ours, raw = energy(w.result, key), getattr(theirs, field)
        if ours is not None and raw is not None and raw > 0:
            gaps[key] = ours / (raw / 1000.0) - 1.0
    ok = bool(gaps) and all(abs(g) <= 0.02 for g in gaps.values())
    return ok, ", ".join(f"{k} {g:+.2%}" for k, g in gaps.items()) or "no block to compare"


def check_edges(samplers: list[Any], step: Any, n: int) -> tuple[bool, str]:
    from energybench.measuring.meter import Meter

    inner = []
    with Meter(samplers, counter_interval=0.02) as meter:
        meter.begin("outer")
        for i in range(n):
            with meter.window(f"inner{i}") as w:
                run_for(step, 0.3)
            inner.append(w.result)
        outer = meter.end("outer")
    bad = [r for r in [*inner, outer] if r.lower_bound_domains or any("backwards" in x for x in r.warnings)]
    total = sum(energy(r, "gpu:0") or 0.0 for r in inner)
    ok = not bad and total <= (energy(outer, "gpu:0") or 0.0) + 1e-6
    return ok, f"{n} inner windows: {len(bad)} with a reset or impossible figure; inner GPU sum {total:.4g} J"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from energybench.measuring.meter import Meter
    from energybench.samplers import apple

    if not args.no_sensors:
        print("== energybench sensors (this machine)")
        print(sensors_output())
    step, device = workload(args.size)
    module, source = load_binding(args.fake_apple)
    options = {"apple_module": module}
    probe = apple.FACTORY.probe(options)
    print(f"== IOReport through {source}: {'available' if probe.available else 'unavailable: ' + probe.reason}")
    if not probe.available:
        return 1
    with Meter(apple.FACTORY.create(options)) as meter:
        with meter.window("idle") as idle:
            time.sleep(args.idle_seconds)
        with meter.window("matmul") as load:
            batches = run_for(step, args.seconds)
    print(f"== chip {apple.chip_name() or 'unknown'}; {batches} batches of 4 x {args.size}^2 matmuls on {device}")
    for key in BLOCKS:
        joules = energy(load.result, key)
        idle_j = energy(idle.result, key)
        idle_w = idle_j / idle.result.duration_s if idle_j is not None else None
        print(f"{key:<14} load {_fmt(joules, 'J')} over {load.result.duration_s:.2f} s, idle {_fmt(idle_w, 'W')}")
    checks = {"1 binding agrees": check_binding_agrees(module, apple.FACTORY.create(options), step, 1.0)}
    loaded = [k for k in ("cpu:package-0", "gpu:0") if (energy(load.result, k) or 0.0) > 0]
    checks["2 blocks carry load"] = (len(loaded) == 2, f"blocks with energy under load: {', '.join(loaded)}")
    checks["3 edge reads"] = check_edges(apple.FACTORY.create(options), step, args.check_windows)
    for name, (ok, detail) in checks.items():
        print(f"check {name}: {'PASS' if ok else 'FAIL'}: {detail}")
    if args.json:
        summary = {"source": source, "chip": apple.chip_name(), "device": device,
                   "blocks_j": {k: energy(load.result, k) for k in BLOCKS},
                   "checks": {n: {"passed": ok, "detail": d} for n, (ok, d) in checks.items()}}
        args.json.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return 0 if all(ok for ok, _ in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
