"""Overhead of measuring: what energybench costs the code it measures, side by side in one run.

Prints, for a CPU-bound torch workload of a few seconds, the ratio of wall time with measurement to wall time
without, at the default settings and with everything polled every 10 ms, next to codecarbon's
OfflineEmissionsTracker on the same workload; then the cost of one window's begin+end, and of
``energybench measure -- true`` over running ``true`` directly. Runs alternate (A B C D A B C D ...) so drift
in the machine's speed hits every variant alike; medians are reported.

Run: ``python benchmarks/bench_overhead.py [--repeats 5] [--seconds 3]``
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
from energybench.meter import Meter


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

    return {
        "unmeasured": plain,
        "energybench default": default,
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


def cli_cost(n: int) -> tuple[float, float]:
    exe = os.path.join(os.path.dirname(sys.executable), "energybench")
    direct, wrapped = [], []
    for _ in range(n):
        direct.append(timed(lambda: subprocess.run(["true"], check=True)))
        wrapped.append(timed(lambda: subprocess.run([exe, "measure", "--", "true"], check=True, capture_output=True)))
    return statistics.median(direct), statistics.median(wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    work = make_workload(args.seconds)
    runs = variants(work)
    for fn in runs.values():  # warm-up: imports, thread pools, caches
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    base = statistics.median(times["unmeasured"])
    print(f"workload: torch 384x384 matmuls, {base:.2f} s per run, {args.repeats} alternating repeats (medians)")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:<22} {med:7.3f} s   ratio to unmeasured {med / base:.4f}")
    per_window = window_cost()
    print(f"one window begin+end: {per_window * 1e6:.0f} us")
    direct, wrapped = cli_cost(15)
    print(
        f"`true` directly {direct * 1e3:.1f} ms; `energybench measure -- true` {wrapped * 1e3:.1f} ms "
        f"(+{(wrapped - direct) * 1e3:.0f} ms, mostly Python start-up and sampler detection)"
    )


if __name__ == "__main__":
    main()
