"""Gates at suite scale: 30 benchmarks, one of them changed, quiet or under a neighbour (``--noise``).

Two parts, each printed next to pytest-benchmark's ``mean:5%`` rule on the very same rounds (a suite fails when
any benchmark's mean time per call grew by more than 5%):

* **Separate runs** (all real): ``--runs`` runs of a 30-benchmark suite, each a fresh process measuring with
  the energy fixture at its defaults (numpy matmul products of 30 sizes, one BLAS thread), saved in one store
  as a CI's runs of main would be. ``--cycles`` A/A comparisons, each of two of these runs with the store's
  other runs as this machine's saved history (``verdicts.drift.from_store``), gated ``energy:+5%`` as
  ``energybench compare`` gates them; and the MDE the gates print.
* **A/B sessions** (resampled from real pairs): one stream of real interleaved windows, baseline against
  candidates with the same, +5% and +10% work, is measured here; each simulated session gives each of its 30
  benchmarks process pairs of 5 consecutive real pairs drawn at random offsets (benchmark 0 from the changed
  candidate's stream, the others from the A/A stream). What is not in it: the effect a real process carries
  (``bench_ab_processes.py`` measures that). Each session is gated twice: fixed (10 process pairs per
  benchmark, as ``energybench ab`` did) and adaptive (``verdicts.adaptive``: looks at 4, 7, ... pairs, up to
  40 for the undecided, the session at most twice the fixed one's pairs); its cost is the pairs measured,
  against the fixed session's.

    python benchmarks/bench_gate_suite.py              # quiet (~10 minutes on 2 CPUs)
    python benchmarks/bench_gate_suite.py --noise      # under the stepping neighbour on every CPU
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import neighbours  # noqa: E402
import numpy as np  # noqa: E402

from energybench.measuring.meter import Meter  # noqa: E402
from energybench.measuring.noise import cpus_available  # noqa: E402
from energybench.pytest_plugin.fixture import EnergyFixture  # noqa: E402
from energybench.record import ABSide, Benchmark, Environment, Round, Run  # noqa: E402
from energybench.record.storage import RunFile, list_runs, load_run  # noqa: E402
from energybench.samplers import benchmark_options  # noqa: E402
from energybench.verdicts.adaptive import MAX_PAIRS_FACTOR, replay, up_to  # noqa: E402
from energybench.verdicts.compare import compare_runs  # noqa: E402
from energybench.verdicts.drift import from_store  # noqa: E402
from energybench.verdicts.gate import parse_gates  # noqa: E402

BENCHES = 30
GATES = parse_gates(["energy:+5%"])
KINDS = {"A/A (same work)": 1.0, "+5% work": 1.05, "+10% work": 1.10}
PROCESSES, PER_PROCESS = 10, 5  # energybench ab's defaults: 10 process pairs, 20 rounds -> 5 each
BUDGET = MAX_PAIRS_FACTOR * PROCESSES  # the most process pairs an undecided benchmark gets
WINDOW_S = 0.1  # the energy fixture's default round


def matmul(reps: int, a: np.ndarray, b: np.ndarray) -> float:
    acc = 0.0
    for _ in range(reps):
        acc += float((a @ b)[0, 0])
    return acc


def one_run(out: Path) -> None:
    """One separate run of the 30-benchmark suite, as a pytest session with the energy fixture measures it."""
    rng = np.random.default_rng(0)
    benches = []
    with Meter(options=benchmark_options()) as meter:
        resolution = max((float(s.resolution_s) for s in meter.samplers), default=0.0)
        for i in range(BENCHES):
            size = 48 + 2 * i
            a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
            fx = EnergyFixture(nodeid=f"test_suite.py::test_matmul[{size}]", meter_factory=lambda: meter,
                               resolution_s=lambda: resolution)
            fx(matmul, 8, a, b)
            benches.append(fx.record())
    out.write_text(Run(name="main", created=datetime.now(UTC).isoformat(), benchmarks=tuple(benches)).to_json())


def pytest_benchmark_fails(base: Run, new: Run, limit: float = 0.05) -> bool:
    """pytest-benchmark's ``mean:5%`` over a suite: any benchmark's mean time per call grew by more than 5%."""
    old = {b.key: b for b in base.benchmarks}
    for bench in new.benchmarks:
        if bench.key in old:
            mb = statistics.fmean(old[bench.key].values("duration_per_call_s"))
            if statistics.fmean(bench.values("duration_per_call_s")) > mb * (1 + limit):
                return True
    return False


def separate_runs(runs: int, cycles: int, store: Path) -> str:
    for r in range(runs):
        t0 = time.perf_counter()
        tmp = store.parent / f"run{r}.json"  # the store is a folder of the temporary directory
        subprocess.run([sys.executable, __file__, "--one-run", str(tmp)], check=True)
        RunFile.create(load_run(tmp), str(store), "main")
        tmp.unlink()
        print(f"separate run {r + 1}/{runs} ({time.perf_counter() - t0:.0f} s)", flush=True)
    saved = [load_run(p) for p in list_runs(store)]
    pairs = [(i, j) for i in range(len(saved)) for j in range(len(saved)) if i < j]
    random.Random(0).shuffle(pairs)
    ours = theirs = blind = 0
    mdes = []
    for i, j in pairs[:cycles]:
        base, new = saved[i], saved[j]
        cmp = compare_runs(base, new, GATES, drift=from_store(base, new, str(store)))
        ours += cmp.exit_code == 1
        blind += bool(cmp.blind)
        theirs += pytest_benchmark_fails(base, new)
        mdes += [g.mde for r in cmp.rows for g in r.gates]
    n = min(cycles, len(pairs))
    drift = from_store(saved[0], saved[-1], str(store))
    return (f"separate runs, A/A: {ours}/{n} suites failed [pytest-benchmark {theirs}/{n}], {blind}/{n} blind; "
            f"between-run spread {drift.sd:.1%} ({drift.source}); gates detect (median MDE) "
            f"+{statistics.median(mdes):.0%}")


def stream(meter: Meter, kinds: dict[str, float], pairs: int) -> dict[str, list[tuple[float, float, float, float]]]:
    """Real interleaved windows: per kind, (base energy, new energy, base duration, new duration) per pair."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((96, 96)), rng.standard_normal((96, 96))
    base_reps = 40
    t0 = time.perf_counter()
    matmul(base_reps, a, b)
    calls = max(1, round(WINDOW_S / (time.perf_counter() - t0)))  # windows as long as the fixture's (0.1 s)
    out: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in kinds}
    for _ in range(pairs):
        for kind, factor in kinds.items():
            got = []
            for reps in (base_reps, round(base_reps * factor)):
                meter.begin("w")
                for _ in range(calls):
                    matmul(reps, a, b)
                m = meter.end("w")
                got.append((m.energy_j, m.duration_s))
            out[kind].append((got[0][0], got[1][0], got[0][1], got[1][1]))
    return out


def session(rng: random.Random, aa: list, changed: list, processes: int) -> tuple[Run, Run]:
    """An A/B session of 30 benchmarks with ``processes`` process pairs of ``PER_PROCESS`` real pairs each."""
    sides: list[list[Benchmark]] = [[], []]
    for i in range(BENCHES):
        pool = changed if i == 0 else aa
        rounds: list[list[Round]] = [[], []]
        for p in range(processes):
            start = rng.randrange(len(pool) - PER_PROCESS)
            for k, (eb, en, db, dn) in enumerate(pool[start:start + PER_PROCESS]):
                rounds[0].append(Round(index=k, energy_j=eb, duration_s=db, source="estimated", process=p))
                rounds[1].append(Round(index=k, energy_j=en, duration_s=dn, source="estimated", process=p))
        for s in (0, 1):
            sides[s].append(Benchmark(name=f"bench_{i}", rounds=tuple(rounds[s])))
    return tuple(Run(name=n, created="", environment=Environment(ab=ABSide("sim", side=n, processes=processes)),
                     benchmarks=tuple(bs)) for n, bs in zip(("base", "new"), sides, strict=True))  # type: ignore


def adaptive(base: Run, new: Run) -> tuple[int, int]:
    """Gate an adaptive session over the full-budget session's data, as ``energybench ab`` runs one
    (``verdicts.adaptive.replay``): (exit code, pairs measured)."""
    cmp, _, measured = replay(base, new, GATES, BUDGET, PROCESSES)
    return cmp.exit_code, measured * PER_PROCESS


def ab_part(meter: Meter, cycles: int, pairs: int) -> list[str]:
    t0 = time.perf_counter()
    data = stream(meter, KINDS, pairs)
    window = statistics.fmean(d for rows in data.values() for r in rows for d in r[2:])
    lines = [f"A/B stream: {pairs} real pairs per kind in {time.perf_counter() - t0:.0f} s "
             f"(windows of {window * 1e3:.0f} ms)",
             f"{'comparison':16} {'fixed (10 pairs)':>18} {'[pytest-benchmark]':>19} {f'adaptive (<={BUDGET})':>16} "
             f"{'cost vs fixed':>14}"]
    rng = random.Random(2)
    for kind in KINDS:
        fixed = theirs = adapt = 0
        cost = []
        for _ in range(cycles):
            base, new = session(rng, data["A/A (same work)"], data[kind], BUDGET)
            ten = {b.key: PROCESSES for b in new.benchmarks}
            fb, fn = up_to(base, ten), up_to(new, ten)
            fixed += compare_runs(fb, fn, GATES).exit_code == 1
            theirs += pytest_benchmark_fails(fb, fn)
            code, measured = adaptive(base, new)
            adapt += code == 1
            cost.append(measured / (BENCHES * PROCESSES * PER_PROCESS))
        lines.append(f"{kind:16} {fixed:>14}/{cycles:<3} {theirs:>15}/{cycles:<3} {adapt:>12}/{cycles:<3} "
                     f"{statistics.fmean(cost):>13.2f}x")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", action="store_true", help="a stepping neighbour on every CPU")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--runs", type=int, default=8, help="real separate runs of the suite (0: the A/B part "
                        "alone)")
    parser.add_argument("--pairs", type=int, default=600, help="real A/B pairs per kind (a session draws up "
                        "to BUDGET x 5 of them per benchmark)")
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        one_run(args.one_run)
        return
    hogs = neighbours.start(cpus_available()) if args.noise else []
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            separate = separate_runs(args.runs, args.cycles, Path(tmp) / "store") if args.runs else ""
        with Meter(options=benchmark_options()) as meter:
            source = ", ".join(f"{s.name}" for s in meter.samplers)
            ab = ab_part(meter, args.cycles, args.pairs)
    finally:
        neighbours.stop(hogs)
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, noise {'on' if args.noise else 'off'}, "
          f"samplers {source}; {BENCHES} benchmarks, gate energy:+5%, {args.cycles} cycles; "
          f"{time.perf_counter() - t0:.0f} s")
    print("\n".join([separate, *ab] if separate else ab))


if __name__ == "__main__":
    main()
