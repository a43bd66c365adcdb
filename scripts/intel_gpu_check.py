#!/usr/bin/env python
"""Check energybench's Intel GPU figures (i915/xe hwmon energy counters) on a real card, or on a fake tree.

Runs an idle window, then matrix multiplications on ``xpu`` through torch (CPU where XPU is missing), inside
energybench's meter, and prints each counter's energy (card, package, tiles), idle power, where the counters
live and ``energybench sensors``.

    python scripts/intel_gpu_check.py                       # on a Linux machine with an Arc / Flex / Max GPU
    python scripts/intel_gpu_check.py --drm-root /host/sys/class/drm   # a container with the host's sysfs
    python scripts/intel_gpu_check.py --fake-drm --seconds 1 --idle-seconds 0.5 --size 64   # anywhere (tests)

Checks, exit 1 if any fails:

1. every counted counter moves under load, and a package counter never exceeds its card counter;
2. reads come often enough: the meter reads at least four times per wrap period of the 32-bit register at the
   counter's power bound, so the driver never misses a wrap;
3. edge reads: inner windows inside an open outer one never report a reset or impossible figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from gpu_check import _fmt, energy, sensors_output  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="matmul window length (default 20)")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="idle window length (default 5)")
    p.add_argument("--size", type=int, default=4096, help="square matrix size (default 4096)")
    p.add_argument("--drm-root", type=Path, help="the DRM class directory (default $ENERGYBENCH_DRM_ROOT or /sys)")
    p.add_argument("--json", type=Path, help="write the summary as JSON to this path")
    p.add_argument("--fake-drm", action="store_true", help="lay and drive a fake tree (tests/support/drm_tree.py)")
    p.add_argument("--no-sensors", action="store_true", help="skip running `energybench sensors`")
    p.add_argument("--check-windows", type=int, default=3, help="inner windows in the edge check (default 3)")
    return p.parse_args(argv)


def fake_tree() -> tuple[Path, Any]:
    """A Battlemage-like xe card (card 180 W, package 150 W) whose counters a thread advances on the clock."""
    sys.path.insert(0, str(REPO / "tests" / "support"))
    from drm_tree import FakeDrm

    drm = FakeDrm(Path(tempfile.mkdtemp(prefix="eb-drm-")) / "drm")
    drm.add_card(1, "xe", {1: ("card", 180.0), 2: ("pkg", 150.0)}, rated_w=250.0)
    stop = threading.Event()

    def run() -> None:
        last = time.monotonic()
        while not stop.wait(0.002):
            now = time.monotonic()
            drm.advance(now - last)
            last = now

    threading.Thread(target=run, name="fake-drm-writer", daemon=True).start()
    return drm.root, stop


def workload(size: int) -> tuple[Any, str]:
    import torch

    xpu = getattr(torch, "xpu", None)
    on_xpu = bool(xpu is not None and xpu.is_available())
    device = torch.device("xpu" if on_xpu else "cpu")
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)

    def step() -> None:
        for _ in range(4):
            a @ b
        if on_xpu:
            torch.xpu.synchronize()

    step()
    return step, str(device)


def run_for(step: Any, seconds: float) -> int:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += 1
    return done


def check_counters(load: Any, domains: list[Any]) -> tuple[bool, str]:
    counted = [d.key for d in domains if d.counted]
    moving = [k for k in counted if (energy(load, k) or 0.0) > 0]
    over = [d.key for d in domains if d.key.endswith(":pkg") and
            (energy(load, d.key) or 0.0) > (energy(load, d.key.rsplit(":", 1)[0]) or float("inf"))]
    ok = moving == counted and not over
    return ok, f"counted {', '.join(counted)}; moving {', '.join(moving) or 'none'}; package above card: " \
               f"{', '.join(over) or 'none'}"


def check_read_rate(samplers: list[Any]) -> tuple[bool, str]:
    from energybench.measuring.meter import Meter

    periods = [d.details["wrap_period_s_at_max_power"] for s in samplers for d in s.domains()]
    with Meter(samplers) as meter:
        interval = meter.counter_interval
    ok = all(interval <= p / 4 for p in periods)
    return ok, f"meter reads every {interval:.3g} s; shortest wrap period at the power bound {min(periods):.3g} s"


def check_edges(samplers: list[Any], key: str, step: Any, n: int) -> tuple[bool, str]:
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
    total = sum(energy(r, key) or 0.0 for r in inner)
    ok = not bad and total <= (energy(outer, key) or 0.0) + 1e-6
    return ok, f"{n} inner windows: {len(bad)} with a reset or impossible figure; inner sum {total:.4g} J"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from energybench.measuring.meter import Meter
    from energybench.samplers import intel_gpu

    if not args.no_sensors:
        print("== energybench sensors (this machine)")
        print(sensors_output())
    step, device = workload(args.size)
    root, stop = fake_tree() if args.fake_drm else (args.drm_root, None)
    options = {"drm_root": str(root)} if root else {}
    probe = intel_gpu.FACTORY.probe(options)
    print(f"== hwmon under {intel_gpu.resolve_root(options)}: "
          f"{'available' if probe.available else 'unavailable: ' + probe.reason}")
    if not probe.available:
        return 1
    try:
        (sampler,) = intel_gpu.FACTORY.create(options)
        with Meter([sampler]) as meter:
            with meter.window("idle") as idle:
                time.sleep(args.idle_seconds)
            with meter.window("matmul") as load:
                batches = run_for(step, args.seconds)
        print(f"== {batches} batches of 4 x {args.size}^2 matmuls on {device}")
        for c in sampler.counters:
            idle_j = energy(idle.result, c.key)
            idle_w = idle_j / idle.result.duration_s if idle_j else None
            print(f"{c.key:<16} {c.driver:<9} load {_fmt(energy(load.result, c.key), 'J')} over "
                  f"{load.result.duration_s:.2f} s, idle {_fmt(idle_w, 'W')}  ({c.path})")
        main_key = next(c.key for c in sampler.counters if c.counted)
        checks = {"1 counters move": check_counters(load.result, sampler.domains()),
                  "2 read rate": check_read_rate(intel_gpu.FACTORY.create(options)),
                  "3 edge reads": check_edges(intel_gpu.FACTORY.create(options), main_key, step, args.check_windows)}
    finally:
        if stop is not None:
            stop.set()
            shutil.rmtree(Path(root).parent, ignore_errors=True)
    for name, (ok, detail) in checks.items():
        print(f"check {name}: {'PASS' if ok else 'FAIL'}: {detail}")
    if args.json:
        summary = {"root": str(intel_gpu.resolve_root(options)), "device": device,
                   "counters_j": {c.key: energy(load.result, c.key) for c in sampler.counters},
                   "checks": {n: {"passed": ok, "detail": d} for n, (ok, d) in checks.items()}}
        args.json.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return 0 if all(ok for ok, _ in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
