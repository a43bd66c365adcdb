"""How often does the energy gate cry wolf, and how often does it catch real regressions?

A real CPU workload (numpy matrix products, one BLAS thread) is measured with the energy fixture's machinery
at its defaults, in cycles. Each cycle measures, as separate runs, the baseline A and three candidates with
+5%, +10% and +25% more work, and, as A/B sessions (rounds alternating baseline and candidate), A against A
and A against each candidate. The gate ``energy:+5%`` then decides every comparison three ways:

* separate runs: a candidate run against the baseline run of the same cycle (A/A: two consecutive A runs);
* history: the same, with the previous baseline runs' medians as the between-run spread (``--history``);
* A/B: the pairs of one interleaved session (``energybench ab``);

next to pytest-benchmark's ``--benchmark-compare-fail=mean:5%`` rule (fail when the mean time per call grew by
more than 5%) on the very same rounds. ``--noise`` starts a neighbour process whose load steps on and off on
every CPU (a fixed, seeded schedule: a reproducible stand-in for a shared CI runner). The neighbours run
outside this process's tree, as a runner's other jobs do: the process-scope CPU estimate counts this process's
children (a benchmark's subprocesses are its work), so a neighbour started as a child would be billed to the
benchmark. Until 2026-12-02 it was, and the ``--noise`` tables of that day measured that, not a neighbour.

    python benchmarks/bench_gate_accuracy.py                 # quiet machine, 24 cycles (~8 minutes)
    python benchmarks/bench_gate_accuracy.py --noise         # with the neighbour
    python benchmarks/bench_gate_accuracy.py --cycles 6      # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import neighbours  # noqa: E402
import numpy as np  # noqa: E402

from energybench.measuring.meter import Meter  # noqa: E402
from energybench.measuring.noise import Probe, cpus_available  # noqa: E402
from energybench.pytest_plugin.fixture import EnergyFixture  # noqa: E402
from energybench.record import ABSide, Benchmark, Environment, Round, Run  # noqa: E402
from energybench.run.ab import AB_ROUNDS, flagged_pairs, rounds_to_measure  # noqa: E402
from energybench.samplers import benchmark_options  # noqa: E402
from energybench.verdicts.compare import compare_runs  # noqa: E402
from energybench.verdicts.gate import parse_gates  # noqa: E402

BASE_REPS = 40
KINDS = {"A/A (same work)": 1.0, "+5% work": 1.05, "+10% work": 1.10, "+25% work": 1.25}
HISTORY = 5


def workload(reps: int, a: np.ndarray, b: np.ndarray) -> float:
    acc = 0.0
    for _ in range(reps):
        acc += float((a @ b)[0, 0])
    return acc


def separate_run(meter: Meter, reps: int, a: np.ndarray, b: np.ndarray) -> Run:
    """One run of the workload as a pytest session measures it: calibrated windows, 1 warm-up, 10 rounds."""
    resolution = max((float(s.resolution_s) for s in meter.samplers), default=0.0)
    fx = EnergyFixture(nodeid="matmul", meter_factory=lambda: meter, resolution_s=lambda: resolution)
    fx(workload, reps, a, b)
    return Run(name="run", created="", benchmarks=(fx.record(),))


def ab_session(meter: Meter, reps: tuple[int, int], a: np.ndarray, b: np.ndarray, iterations: int,
               rounds: int = AB_ROUNDS) -> tuple[Run, Run]:
    """An A/B session as ``energybench ab`` measures one: ``AB_ROUNDS`` rounds alternating baseline and
    candidate, each a window of ``iterations`` calls, and one more pair for each pair the noise guard flags
    (``rounds_to_measure``)."""
    session = f"{time.monotonic_ns()}"
    sides: list[list[Round]] = [[], []]
    workload(reps[0], a, b)  # warm-up
    r = 0
    while r < rounds_to_measure(rounds, flagged_pairs(*([x.load for x in rs] for rs in sides))):
        for side in (0, 1):
            probe = Probe()
            probe.start()
            meter.begin("ab")
            for _ in range(iterations):
                workload(reps[side], a, b)
            m = meter.end("ab")
            load, flags = probe.stop()
            sides[side].append(Round(index=r, energy_j=m.energy_j, duration_s=m.duration_s, iterations=iterations,
                                     source=m.source, load=load, flags=flags))
        r += 1
    return tuple(  # type: ignore[return-value]
        Run(name=name, created="", environment=Environment(ab=ABSide(session, side=name)),
            benchmarks=(Benchmark(name="matmul", rounds=tuple(rs)),))
        for name, rs in zip(("base", "new"), sides, strict=True))


def pytest_benchmark_fails(base: Run, new: Run, limit: float = 0.05) -> bool:
    """pytest-benchmark's ``mean:5%``: the new mean time per call exceeds the old one by more than 5%."""
    mb = statistics.fmean(base.benchmarks[0].values("duration_per_call_s"))
    mn = statistics.fmean(new.benchmarks[0].values("duration_per_call_s"))
    return mn > mb * (1 + limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=24, help="cycles (A/A comparisons = cycles - 1)")
    parser.add_argument("--size", type=int, default=96, help="matrix size")
    parser.add_argument("--noise", action="store_true", help="run a neighbour whose load steps on and off")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((args.size, args.size)), rng.standard_normal((args.size, args.size))
    gates = parse_gates(["energy:+5%"])
    hogs = neighbours.start(cpus_available()) if args.noise else []
    reps = {k: round(BASE_REPS * f) for k, f in KINDS.items()}
    separate: dict[str, list[Run]] = {k: [] for k in KINDS}
    paired: dict[str, list[tuple[Run, Run]]] = {k: [] for k in KINDS}
    t0 = time.perf_counter()
    try:
        with Meter(options=benchmark_options()) as meter:
            print("samplers:", ", ".join(f"{s.name} ({s.resolution_s:g} s)" for s in meter.samplers), flush=True)
            for cycle in range(args.cycles):
                for kind, n in reps.items():
                    separate[kind].append(separate_run(meter, n, a, b))
                iterations = separate["A/A (same work)"][-1].benchmarks[0].extra["iterations"]
                for kind, n in reps.items():
                    paired[kind].append(ab_session(meter, (BASE_REPS, n), a, b, iterations))
                print(f"cycle {cycle + 1}/{args.cycles} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        neighbours.stop(hogs)
    table = []
    blind: dict[str, tuple[int, int]] = {}
    base_runs = separate["A/A (same work)"]
    for kind in KINDS:
        if kind.startswith("A/A"):
            pairs = list(zip(base_runs, base_runs[1:], strict=False))
        else:
            pairs = list(zip(base_runs, separate[kind], strict=True))
        codes = [compare_runs(bs, nw, gates).exit_code for bs, nw in pairs]  # 1 failed, 6 blind
        ours = codes.count(1)
        theirs = sum(pytest_benchmark_fails(bs, nw) for bs, nw in pairs)
        hist_pairs = [(i, nw) for i, (_, nw) in enumerate(pairs) if i >= HISTORY - 1]
        hist_codes = [compare_runs(base_runs[i], nw, gates, history=base_runs[i - HISTORY + 1:i]).exit_code
                      for i, nw in hist_pairs]
        hist = hist_codes.count(1)
        ab = [compare_runs(bs, nw, gates).exit_code for bs, nw in paired[kind]].count(1)
        blind[kind] = (codes.count(6), hist_codes.count(6))
        ab_theirs = sum(pytest_benchmark_fails(bs, nw) for bs, nw in paired[kind])
        table.append((kind, len(pairs), ours, theirs, len(hist_pairs), hist, len(paired[kind]), ab, ab_theirs))
    first = base_runs[0].benchmarks[0]
    flagged = sum(r.load.get("other_cpus", 0.0) >= 0.5 for runs in separate.values() for run in runs
                  for r in run.benchmarks[0].rounds)
    total = sum(len(run.benchmarks[0].rounds) for runs in separate.values() for run in runs)
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs; noise: {'on' if args.noise else 'off'}; "
          f"workload {BASE_REPS} x {args.size}x{args.size} matmul per call, {len(first.rounds)} rounds x "
          f"{first.extra['iterations']} iterations per run, source {first.source}; "
          f"{time.perf_counter() - t0:.0f} s; {flagged} of {total} rounds with half a CPU or more busy elsewhere")
    sessions = [pair for pairs in paired.values() for pair in pairs]
    ab_pairs = sum(len(b.benchmarks[0].rounds) for b, _ in sessions)
    ab_flagged = sum(flagged_pairs(*([x.load for x in run.benchmarks[0].rounds] for run in pair))
                     for pair in sessions)
    print(f"A/B sessions: {ab_pairs} pairs measured in {len(sessions)} sessions ({AB_ROUNDS} asked for each), "
          f"{ab_flagged} flagged and replaced")
    print("gate energy:+5%, failures (exit 1) / comparisons; pytest-benchmark mean:5% on the same rounds in "
          "brackets; blind gates (exit 6) counted apart")
    print(f"{'comparison':16} {'separate runs':>22} {'history (5 runs)':>18} {'A/B session':>22}")
    for kind, n, ours, theirs, hn, hist, an, ab, ab_theirs in table:
        print(f"{kind:16} {ours:>6}/{n:<3} [{theirs:>3}/{n:<3}]  {hist:>8}/{hn:<7}  "
              f"{ab:>6}/{an:<3} [{ab_theirs:>3}/{an:<3}]  blind: separate {blind[kind][0]}, history {blind[kind][1]}")


if __name__ == "__main__":
    main()
