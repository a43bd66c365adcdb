"""Overhead of measuring: what energybench costs the code it measures, side by side in one run.

Prints, for a CPU-bound torch workload of a few seconds, the ratio of wall time with measurement to wall time
without, at the default settings and with everything polled every 10 ms, next to codecarbon's
OfflineEmissionsTracker on the same workload; then the cost of one window's begin+end, and of
``energybench measure -- true`` over running ``true`` directly. Runs alternate (A B C D A B C D ...) so drift
in the machine's speed hits every variant alike; medians are reported.

Run: ``python benchmarks/bench_overhead.py [--repeats 15] [--seconds 2]``
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import energybench
from energybench.measuring.meter import Meter


def make_workload(seconds: float) -> Callable[[], None]:
    """Matrix multiplications sized so one call takes about ``seconds``."""
    import torch

    torch.manual_seed(0)
    a = torch.randn(384, 384)
    b = torch.randn(384, 384)
    t0 = time.perf_counter()
    for _ in range(20):
        a @ b
    per = (time.perf_counter() - t0) / 20
    n = max(1, int(seconds / per))

    def work() -> None:
        for _ in range(n):
            a @ b

    return work


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def variants(work: Callable[[], None]) -> dict[str, Callable[[], None]]:
    def plain() -> None:
        work()

    def default() -> None:
        with energybench.measure():
            work()

    def polled_10ms() -> None:
        with energybench.measure(interval=0.01, counter_interval=0.01):
            work()

    def codecarbon() -> None:
        from codecarbon import OfflineEmissionsTracker

        with tempfile.TemporaryDirectory() as out:
            tracker = OfflineEmissionsTracker(
                country_iso_code="FRA", output_dir=out, save_to_file=False, log_level="error"
            )
            tracker.start()
            try:
                work()
            finally:
                tracker.stop()

    # "unmeasured again" is an A/A control: its ratio is the noise floor of this machine, and a measured
    # variant's ratio only means something where it stands clear of that floor.
    return {
        "unmeasured": plain,
        "energybench default": default,
        "unmeasured again": plain,
        "energybench 10 ms": polled_10ms,
        "codecarbon offline": codecarbon,
    }


def window_cost(n: int = 2000) -> float:
    meter = Meter()
    t0 = time.perf_counter()
    for _ in range(n):
        meter.begin("w")
        meter.end("w")
    elapsed = time.perf_counter() - t0
    meter.close()
    return elapsed / n


def read_cost(n: int = 2000) -> float:
    """What one background poll costs: a read of every detected sampler."""
    meter = Meter()
    t0 = time.perf_counter()
    for _ in range(n):
        for sampler in meter.samplers:
            sampler.read()
    elapsed = time.perf_counter() - t0
    meter.close()
    return elapsed / n


def cli_cost(n: int) -> tuple[float, float]:
    exe = os.path.join(os.path.dirname(sys.executable), "energybench")
    direct, wrapped = [], []
    for _ in range(n):
        direct.append(timed(lambda: subprocess.run(["true"], check=True)))
        wrapped.append(timed(lambda: subprocess.run([exe, "measure", "--", "true"], check=True, capture_output=True)))
    return statistics.median(direct), statistics.median(wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    logging.getLogger("codecarbon").propagate = False
    work = make_workload(args.seconds)
    runs = variants(work)
    for fn in runs.values():  # warm-up: imports, thread pools, caches
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    base = statistics.median(times["unmeasured"])
    base_min = min(times["unmeasured"])
    print(f"workload: torch 384x384 matmuls, {base:.2f} s per run, {args.repeats} alternating repeats")
    print(f"  {'variant':<22} {'median':>8}  {'ratio':>6}  {'min':>8}  {'ratio':>6}  spread (max-min)/median")
    for name, values in times.items():
        med, low = statistics.median(values), min(values)
        spread = (max(values) - low) / med
        print(f"  {name:<22} {med:7.3f}s  {med / base:6.4f}  {low:7.3f}s  {low / base_min:6.4f}  {spread:6.1%}")
    per_window = window_cost()
    per_read = read_cost()
    print(f"one window begin+end: {per_window * 1e6:.0f} us; one read of every sampler: {per_read * 1e6:.0f} us")
    print("direct bound on the overhead (poller reads x their cost, plus the window edges), per second measured:")
    for label, period in (("default (counters every 1 s)", 1.0), ("10 ms polling", 0.01)):
        share = per_read / period + per_window / base
        print(f"  {label:<30} {share:.4%} of one core's time")
    direct, wrapped = cli_cost(15)
    print(
        f"`true` directly {direct * 1e3:.1f} ms; `energybench measure -- true` {wrapped * 1e3:.1f} ms "
        f"(+{(wrapped - direct) * 1e3:.0f} ms, mostly Python start-up and sampler detection)"
    )


if __name__ == "__main__":
    main()
