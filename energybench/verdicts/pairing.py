"""Which rounds of a run stand against which: a method's trials against its baseline's, trial by trial.

Apart from ``energybench.verdicts.baseline`` so that what reads saved runs for another purpose (the between-run spread
in ``energybench.verdicts.spread``) pairs trials exactly as the verdicts do, without importing the verdicts.
"""

from __future__ import annotations

import math

from energybench.record import BASELINE, Benchmark, Round, Run

__all__ = ["baseline_of", "paired_values", "usable"]


def usable(r: Round) -> bool:
    """Whether a round can stand in a comparison: it has a finite figure and was not flagged as taken on a
    saturated machine or with a domain missing (``Round.excluded`` explains it)."""
    return math.isfinite(r.energy_per_item_j) and not r.excluded


def paired_values(base: Benchmark, bench: Benchmark, figure: str = "energy_per_item_j") -> tuple[
        list[float], list[float], int]:
    """Values of both benchmarks for the trials they share (matched by ``Round.index``), leaving a trial out
    on both sides when either round is unusable; returns (base values, values, trials left out)."""
    by_trial = {r.index: r for r in base.rounds}
    xs, ys, dropped = [], [], 0
    for r in bench.rounds:
        b = by_trial.get(r.index)
        if b is None:
            continue
        if not (usable(b) and usable(r)):
            dropped += 1
            continue
        xs.append(float(b.value(figure) or math.nan))
        ys.append(float(r.value(figure) or math.nan))
    return xs, ys, dropped


def baseline_of(run: Run, bench: Benchmark, baseline: str = BASELINE) -> Benchmark | None:
    """The benchmark ``bench`` is judged against: the same workload under the ``baseline`` method."""
    return next((b for b in run.benchmarks if b.name == bench.name and b.method == baseline and b.rounds
                 and b.device == bench.device), None)  # same device: a GPU method is judged against the GPU baseline
