"""Verdicts on a run's compressed models against their baseline: ratio, interval, test and outcome.

Data only (the words "saves 38%" are the renderers'): every table, report and export asks here, so a
verdict reads the same everywhere. Derived from the rounds each time, never stored, so an old file is
judged by today's rules rather than by whatever rule wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from energybench import stats
from energybench.record import BASELINE, Benchmark, Run

#: Significance level of each row's one-sided rank test.
VERDICT_ALPHA = 0.05


@dataclass(frozen=True)
class VsBaseline:
    """One method's energy per item against the baseline's, over the same workload.

    ``outcome`` is ``saves`` / ``costs`` (the ratio's CI excludes 1 and the rank test in that direction is
    significant), ``same`` (no significant difference) or ``no-baseline`` (nothing to compare with).
    """

    ratio: float
    ci_low: float
    ci_high: float
    p_lower: float
    p_higher: float
    n_base: int
    n: int
    outcome: str

    @property
    def change(self) -> float:
        """The relative change of the medians (-0.38 = 38% less energy per item)."""
        return self.ratio - 1.0


def compare_to_baseline(base: Sequence[float], new: Sequence[float], alpha: float = VERDICT_ALPHA) -> VsBaseline:
    """Ratio of medians with a bootstrap CI and an honest outcome.

    A saving (or a cost) is claimed only when the bootstrap CI of the ratio excludes 1 AND a one-sided
    Mann-Whitney test in that direction gives p <= alpha. With few trials a bootstrap CI is too narrow; the
    rank test is exact, so with 3 trials a side a saving needs every compressed trial below every baseline
    trial (p = 0.05), and fewer trials can never claim one.
    """
    mb, mn = stats.median(base), stats.median(new)
    ratio = mn / mb if mb else math.nan
    lo, hi = stats.change_ci(base, new, relative=True)
    ci_low, ci_high = 1.0 + lo, 1.0 + hi
    p_lower = stats.mann_whitney_greater(new, base).p  # H1: new < base
    p_higher = stats.mann_whitney_greater(base, new).p  # H1: new > base
    if math.isnan(ratio) or math.isnan(ci_low):
        outcome = "no-baseline"
    elif ci_high < 1.0 and p_lower <= alpha:
        outcome = "saves"
    elif ci_low > 1.0 and p_higher <= alpha:
        outcome = "costs"
    else:
        outcome = "same"
    return VsBaseline(ratio, ci_low, ci_high, p_lower, p_higher, len(stats._clean(base)), len(stats._clean(new)),
                      outcome)


def baseline_of(run: Run, bench: Benchmark, baseline: str = BASELINE) -> Benchmark | None:
    """The benchmark ``bench`` is judged against: the same workload under the ``baseline`` method."""
    return next((b for b in run.benchmarks if b.name == bench.name and b.method == baseline and b.rounds
                 and b.device == bench.device), None)  # same device: a GPU method is judged against the GPU baseline


def vs_baseline(run: Run, bench: Benchmark, baseline: str = BASELINE) -> VsBaseline | None:
    """``bench`` against its baseline in the same run (``None`` for the baseline itself or without one)."""
    base = baseline_of(run, bench, baseline)
    if base is None or base is bench or not bench.rounds:
        return None
    return compare_to_baseline(base.values("energy_per_item_j"), bench.values("energy_per_item_j"))


def break_even_items(run: Run, bench: Benchmark) -> float | None:
    """Items the method must serve before its per-item saving repays its one-off cost (distillation):
    ``None`` when there is no one-off cost, no baseline, or no saving per item."""
    if bench.one_off is None or bench.one_off.energy_j is None or bench.phase != "inference":
        return None
    base = baseline_of(run, bench)
    if base is None:
        return None
    saving = base.energy_per_item.median - bench.energy_per_item.median
    return bench.one_off.energy_j / saving if saving > 0 else math.inf
