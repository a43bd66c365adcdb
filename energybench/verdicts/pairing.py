"""Which rounds of a run stand against which: a method's trials against its baseline's, trial by trial.

A trial pair stands when both sides have a whole figure and saw the same machine: the noise guard's rule
(``measuring.noise.pair_flags``) sets a pair aside when its two sides' load differed (a neighbour started or
stopped between them, a burst of steal, throttling on one side), never because the machine was busy.
Apart from ``verdicts.baseline`` so that what reads saved runs for another purpose (the between-run spread in
``verdicts.spread``) pairs trials exactly as the verdicts do.
"""

from __future__ import annotations

import math

from energybench.measuring.noise import pair_flags
from energybench.record import BASELINE, Benchmark, Round, Run

__all__ = ["baseline_of", "pair_set_aside", "paired_log_ratios", "paired_values"]


def pair_set_aside(a: Round, b: Round) -> tuple[str, ...]:
    """Why the pair of rounds ``a`` and ``b`` cannot stand in a comparison (empty when it can): a side with no
    finite figure, a partial side (a domain missing, or only a lower bound), or loads that differed."""
    if not (math.isfinite(a.energy_per_item_j) and math.isfinite(b.energy_per_item_j)):
        return ("no figure",)
    if a.partial or b.partial:
        return ("partial",)
    return pair_flags(a.load, b.load)


def paired_values(base: Benchmark, bench: Benchmark, figure: str = "energy_per_item_j", *,
                  before: int | None = None) -> tuple[list[float], list[float], int]:
    """Values of both benchmarks for the trials they share (matched by ``Round.index``, only those below
    ``before`` when given), leaving out a pair ``pair_set_aside`` rejects; returns (base values, values, pairs
    left out)."""
    by_trial = {r.index: r for r in base.rounds}
    xs, ys, dropped = [], [], 0
    for r in bench.rounds:
        b = by_trial.get(r.index)
        if b is None or (before is not None and r.index >= before):
            continue
        if pair_set_aside(b, r):
            dropped += 1
            continue
        xs.append(float(b.value(figure) or math.nan))
        ys.append(float(r.value(figure) or math.nan))
    return xs, ys, dropped


def paired_log_ratios(base: Benchmark, bench: Benchmark) -> tuple[list[float], int]:
    """The per-trial log ratios of the pairs that stand (``paired_values``, positive figures only), and the
    pairs left out: what a row's spread is computed from, in the verdicts and in the forecast's prior."""
    xs, ys, dropped = paired_values(base, bench)
    return [math.log(y / x) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0], dropped


def baseline_of(run: Run, bench: Benchmark, baseline: str = BASELINE) -> Benchmark | None:
    """The benchmark ``bench`` is judged against: the same workload under the ``baseline`` method."""
    return next((b for b in run.benchmarks if b.name == bench.name and b.method == baseline and b.rounds
                 and b.device == bench.device), None)  # same device: a GPU method is judged against the GPU baseline
