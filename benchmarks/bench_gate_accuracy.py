"""How often does the energy gate cry wolf, and how often does it catch real regressions?

Runs a real CPU workload (numpy matrix products, one BLAS thread) with the ``energy`` fixture's machinery at
its defaults (calibrated windows, 1 warm-up round, 10 rounds) on the samplers detected here, in cycles of
three runs: A (baseline work), B10 (+10% work), B25 (+25% work). Then:

* A/A: consecutive A runs compared (same code both sides) -> false-alarm rate;
* A vs B10, A vs B25 -> detection rates;

for our gate ``energy:+5%`` (threshold AND one-sided Mann-Whitney at alpha 0.01) and, on the very same
rounds, pytest-benchmark's ``--benchmark-compare-fail=mean:5%`` rule (fail when the mean time per call grew
by more than 5%). Runs are interleaved so slow drifts of foreign load hit all three kinds alike.

    python benchmarks/bench_gate_accuracy.py            # 21 cycles: 20 A/A, 21 +10%, 21 +25% comparisons
    python benchmarks/bench_gate_accuracy.py --cycles 6 # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from energybench.fixture import EnergyFixture  # noqa: E402
from energybench.gate import evaluate_gate, parse_gate  # noqa: E402
from energybench.meter import Meter  # noqa: E402
from energybench.record import Benchmark  # noqa: E402
from energybench.samplers import benchmark_options  # noqa: E402

BASE_REPS = 20


def workload(reps: int, a: np.ndarray, b: np.ndarray) -> float:
    acc = 0.0
    for _ in range(reps):
        acc += float((a @ b)[0, 0])
    return acc


def one_run(meter: Meter, reps: int, a: np.ndarray, b: np.ndarray) -> Benchmark:
    resolution = max((float(getattr(s, "resolution_s", 0.0) or 0.0) for s in meter.samplers), default=0.0)
    fx = EnergyFixture(nodeid=f"matmul-{reps}", meter_factory=lambda: meter, resolution_s=lambda: resolution)
    fx(workload, reps, a, b)
    return fx.record()


def pytest_benchmark_fails(base: Benchmark, new: Benchmark, limit: float = 0.05) -> bool:
    """pytest-benchmark's ``mean:5%``: the new mean time per call exceeds the old one by more than 5%."""
    mb = statistics.fmean(base.values("duration_s"))
    mn = statistics.fmean(new.values("duration_s"))
    return mn > mb * (1 + limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=21, help="A/B10/B25 cycles (A/A comparisons = cycles - 1)")
    parser.add_argument("--size", type=int, default=96, help="matrix size")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.size, args.size))
    b = rng.standard_normal((args.size, args.size))
    gate = parse_gate("energy:+5%")
    kinds = {"A": BASE_REPS, "B10": round(BASE_REPS * 1.10), "B25": round(BASE_REPS * 1.25)}
    runs: dict[str, list[Benchmark]] = {k: [] for k in kinds}
    t0 = time.perf_counter()
    with Meter(options=benchmark_options()) as meter:
        print("samplers:", ", ".join(f"{s.name} ({s.resolution_s:g} s)" for s in meter.samplers))
        for cycle in range(args.cycles):
            for kind, reps in kinds.items():
                runs[kind].append(one_run(meter, reps, a, b))
            print(f"cycle {cycle + 1}/{args.cycles} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    pairs = {
        "A/A (same work)": list(zip(runs["A"], runs["A"][1:], strict=False)),
        "+10% work": list(zip(runs["A"], runs["B10"], strict=True)),
        "+25% work": list(zip(runs["A"], runs["B25"], strict=True)),
    }
    first = runs["A"][0]
    print(
        f"\nworkload: {BASE_REPS} x {args.size}x{args.size} matmul per call, {len(first.rounds)} rounds x "
        f"{first.extra['iterations']} iterations per run, source {first.source}; "
        f"{time.perf_counter() - t0:.0f} s total"
    )
    print(f"{'comparison':18} {'n':>3} {'energy gate energy:+5% fails':>30} {'pytest-benchmark mean:5% fails':>32}"
          f" {'median energy change':>22}")
    for label, ps in pairs.items():
        ours = sum(not evaluate_gate(gate, b_.values("energy_j"), n_.values("energy_j")).passed for b_, n_ in ps)
        theirs = sum(pytest_benchmark_fails(b_, n_) for b_, n_ in ps)
        changes = [statistics.median(n_.values("energy_j")) / statistics.median(b_.values("energy_j")) - 1
                   for b_, n_ in ps]
        print(f"{label:18} {len(ps):>3} {ours:>22}/{len(ps):<7} {theirs:>24}/{len(ps):<7} "
              f"{statistics.median(changes):>+21.1%}")
    spreads = [r.summary("energy_j").spread for rs in runs.values() for r in rs]
    print(f"median within-run spread (IQR/median) of energy rounds: {statistics.median(spreads):.1%}")


if __name__ == "__main__":
    main()
