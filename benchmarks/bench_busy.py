"""Does the README's main job answer on a busy machine, and how long does it take?

Runs ``energybench run benchmarks/ --quick --region FRA`` (each run in an empty results directory) on a quiet
machine, under a steady neighbour that keeps one CPU busy (twice: identical runs must agree), and under the
stepping neighbour (busy 1-4 s, idle 1-4 s, on every CPU), then prints side by side:

* wall time, and the time against the quiet run's;
* rows with a verdict (saves, costs, no significant saving: not "cannot be tested"), and against the quiet run's;
* rows claiming the opposite of the quiet run (a saving where it found a cost, or the reverse), and how many
  verdicts identical runs differ on (each pair of runs of one condition), in all and among those neither run
  marked borderline, with the rows that differ, their ratio and stated chance of repeating in each run;
* the progress line's forecast of the time left, after trial 1 and after trial 3, against the time it took;
* the trial pairs set aside (their two sides saw different load) and the thread count the run chose.

    python benchmarks/bench_busy.py                  # about 15 minutes on 2 CPUs
    python benchmarks/bench_busy.py --only quiet     # one condition
    python benchmarks/bench_busy.py --history        # a first quiet run, then each condition with it saved
    python benchmarks/bench_busy.py --repeat 4 --only quiet steady   # agreement of identical runs, ~17 min

Each run starts in an empty results directory, so its forecast knows nothing of this machine: a first run.
``--history`` puts the first quiet run's file in every later run's directory, as a user's ``results/`` holds
the last run: the forecast then takes each row's spread from it (one saved run: the between-run spread stays
the default, so verdicts are judged as without it).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import neighbours  # noqa: E402

from energybench.measuring.noise import cpus_available  # noqa: E402
from energybench.record.storage import list_runs, load_run  # noqa: E402
from energybench.verdicts.baseline import run_verdicts  # noqa: E402
from energybench.verdicts.pairing import baseline_of, pair_set_aside  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "energybench", "run", "benchmarks/", "--quick", "--region", "FRA"]
MILESTONE = re.compile(r"trial (\d+)/\d+ done.*about ([\d.]+) (s|min) left")


@dataclass
class Outcome:
    """One run of the main job: its wall time, verdicts, clock and what the noise guard did."""

    condition: str
    wall_s: float
    verdicts: dict[str, str]
    ratios: dict[str, float] = field(default_factory=dict)
    forecasts: dict[int, tuple[float, float]] = field(default_factory=dict)  # trial -> (forecast, truth) s
    set_aside: tuple[int, int] = (0, 0)
    threads: str = ""
    repeats: dict[str, float] = field(default_factory=dict)  # each row's stated chance an identical run agrees
    borderline: set[str] = field(default_factory=set)  # rows the run marked borderline (``VsBaseline.borderline``)

    @property
    def decided(self) -> int:
        return sum(v in ("saves", "costs", "same") for v in self.verdicts.values())


def run_once(condition: str, results: Path) -> Outcome:
    """The main job, with its stderr read line by line and timed (the progress milestones' forecasts)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([*COMMAND, "--results", str(results)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seen: dict[int, tuple[float, float]] = {}
    threads = ""
    assert proc.stderr is not None
    for line in proc.stderr:
        if (m := MILESTONE.search(line)) is not None:
            seen[int(m[1])] = (time.monotonic(), float(m[2]) * (60 if m[3] == "min" else 1))
        if "torch threads" in line:
            threads = line.split("torch threads", 1)[1].split(":")[0].strip()
    if proc.wait() != 0:
        raise SystemExit(f"{condition}: the main job exited {proc.returncode}")
    end = time.monotonic()
    run = load_run(list_runs(results)[-1])
    forecasts = {t: (left, end - at) for t, (at, left) in seen.items() if t in (1, 3)}
    verdicts = run_verdicts(run)
    return Outcome(condition, end - t0, {k: v.outcome for k, v in verdicts.items()},
                   {k: v.ratio for k, v in verdicts.items()}, forecasts, _set_aside(run), threads or "kept",
                   {k: v.repeat_agreement for k, v in verdicts.items()},
                   {k for k, v in verdicts.items() if v.borderline})


def _set_aside(run) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    aside = total = 0
    for bench in run.benchmarks:
        base = baseline_of(run, bench) if bench.method != "baseline" else None
        if base is None:
            continue
        by_trial = {r.index: r for r in base.rounds}
        for r in bench.rounds:
            if (other := by_trial.get(r.index)) is not None:
                total += 1
                aside += bool(pair_set_aside(other, r))
    return aside, total


def opposite(a: dict[str, str], b: dict[str, str]) -> int:
    return sum({a[k], b[k]} == {"saves", "costs"} for k in a.keys() & b.keys())


def differ(a: dict[str, str], b: dict[str, str]) -> int:
    return sum(a[k] != b[k] for k in a.keys() & b.keys())


def firm(o: Outcome, key: str) -> bool:
    return key not in o.borderline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=("quiet", "steady", "stepping"), help="run these conditions")
    parser.add_argument("--history", action="store_true",
                        help="a first quiet run, then every condition with that run saved beside it")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="N quiet and N steady runs (at least 2 steady), for the agreement of identical runs")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    plan = ([("quiet", None)] * args.repeat + [("steady", "steady")] * max(2, args.repeat)
            + [("stepping", "stepping")])
    plan = [p for p in plan if args.only is None or p[0] in args.only]
    if args.history:
        plan = [("first", None), *plan]
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as tmp:
        first: Path | None = None
        for i, (condition, kind) in enumerate(plan):
            results = Path(tmp) / f"results-{i}"
            if first is not None:
                results.mkdir()
                shutil.copy(first, results / first.name)
            pids = neighbours.start(1 if kind == "steady" else cpus_available(), kind) if kind else []
            try:
                time.sleep(1.0 if kind else 0.0)
                outcome = run_once(condition, results)
            finally:
                neighbours.stop(pids)
            if condition == "first":
                first = list_runs(results)[-1]
            outcomes.append(outcome)
            print(f"{condition}: {outcome.wall_s:.0f} s, {outcome.decided} rows decided", flush=True)
    report(outcomes)


def report(outcomes: list[Outcome]) -> None:
    quiet = next((o for o in outcomes if o.condition == "quiet"), None)
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs; energybench {' '.join(COMMAND[3:])}")
    print(f"{'condition':10} {'wall':>7} {'x quiet':>8} {'decided':>8} {'of quiet':>9} {'opposite':>9} "
          f"{'clock@1':>13} {'clock@3':>13} {'set aside':>10}  threads")
    for o in outcomes:
        ratio = f"{o.wall_s / quiet.wall_s:.2f}" if quiet else "-"
        share = f"{o.decided / quiet.decided:.0%}" if quiet and quiet.decided else "-"
        opp = str(opposite(o.verdicts, quiet.verdicts)) if quiet and o is not quiet else "-"
        clocks = [f"{f:.0f}/{t:.0f} s" if (f := o.forecasts.get(k, (0, 0))[0]) else "-"
                  for k, t in ((1, o.forecasts.get(1, (0, 0))[1]), (3, o.forecasts.get(3, (0, 0))[1]))]
        print(f"{o.condition:10} {o.wall_s:>6.0f}s {ratio:>8} {o.decided:>4}/{len(o.verdicts):<3} {share:>9} "
              f"{opp:>9} {clocks[0]:>13} {clocks[1]:>13} {o.set_aside[0]:>4}/{o.set_aside[1]:<5}  {o.threads}")
    for condition, label in (("quiet", "quiet (with the first run)"), ("steady", "steady-neighbour")):
        same = [o for o in outcomes if o.condition == condition or (condition == "quiet" and o.condition == "first")]
        if len(same) >= 2:
            agreement(label, same)
    print("clock: the progress line's forecast of the time left / the time it really took, after trials 1 and 3")


def agreement(label: str, runs: list[Outcome]) -> None:
    """How many verdicts each pair of identical runs differs on, how many of those both runs stated firm (not
    borderline), each differing row's verdict, ratio and stated chance of repeating per run, and the stated
    chance against the share of verdicts the other runs repeated (a row whose ratio holds steady while its
    verdict flips sits at the claim's edge; one whose ratio moves has a run-level effect the between-run spread
    did not cover)."""
    pairs = [(i, j) for i in range(len(runs)) for j in range(i + 1, len(runs))]
    counts = [differ(runs[i].verdicts, runs[j].verdicts) for i, j in pairs]
    both_firm = [sum(runs[i].verdicts[k] != runs[j].verdicts[k] and firm(runs[i], k) and firm(runs[j], k)
                     for k in runs[i].verdicts.keys() & runs[j].verdicts.keys()) for i, j in pairs]
    keys = sorted({k for i, j in pairs for k in runs[i].verdicts.keys() & runs[j].verdicts.keys()
                   if runs[i].verdicts[k] != runs[j].verdicts[k]})
    print(f"{len(runs)} {label} runs: each pair differs on {', '.join(map(str, counts))} of "
          f"{len(runs[0].verdicts)} verdicts; on {', '.join(map(str, both_firm))} that neither run marked "
          f"borderline; borderline per run: {', '.join(str(len(o.borderline)) for o in runs)}")
    for k in keys:
        cells = [f"{o.verdicts.get(k, '-')} {o.ratios[k]:.2f}x ({o.repeats.get(k, float('nan')):.0%})"
                 if k in o.ratios else "-" for o in runs]
        print(f"  {k}: {' | '.join(cells)}")
    stated = [(o.repeats[k], o.verdicts[k] == other.verdicts[k]) for o in runs for other in runs if other is not o
              for k in o.verdicts.keys() & other.verdicts.keys() if math.isfinite(o.repeats.get(k, math.nan))]
    if stated:
        print(f"  stated chance of repeating, mean over rows and ordered pairs: "
              f"{sum(s for s, _ in stated) / len(stated):.3f}; share repeated: "
              f"{sum(r for _, r in stated) / len(stated):.3f} (n={len(stated)})")


if __name__ == "__main__":
    main()
