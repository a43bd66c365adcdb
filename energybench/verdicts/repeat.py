"""How likely an identical run is to give a row the same verdict: a verdict near its claim's edge is a coin flip.

Why: a row whose ratio sits where a claim starts (about 0.80x for a 64-row table with the default 5% between-run
spread and 5% minimum change) reads "saves" in one run and "no significant saving" in the next, however the test
is built: any yes/no rule splits rows at an edge, and a row's estimate moves between runs. Measured on the
README's job beside a steady neighbour: identical runs differed on 2-7 of 64 verdicts, every one an lm row at
0.76-0.83x (docs/performance.md). Moving the edge only moves it onto other rows; saying which verdicts stand that
close to it keeps the promise a verdict makes.

The estimate is the predictive replication probability (Goodman 1992): how far the row's log ratio would have to
move for its verdict to change, every other row's p held fixed (``stats.correction.claim_limit`` gives the
largest p the correction would still claim; each look's test the row reached turns that p into a log ratio),
in units of how far a repeat's estimate lands from this one's: the square root of 2 times the row's standard
error (this run's estimate and the next one's each scatter around the true ratio by that standard error, which
includes the between-run spread). A verdict exactly at its edge scores 0.5; one standing two repeat-sized
steps clear, 0.98.

It is as good as the row's standard error: a row whose ratio moves between runs by more than the run's
between-run spread (bf16 emulated on a CPU) is more of a coin flip than it says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from energybench.stats import RatioTest
from energybench.stats.distributions import normal_cdf, t_ppf

__all__ = ["BORDERLINE_BELOW", "agreement"]

#: A verdict an identical run would repeat less often than this is shown as borderline: the same convention as
#: 80% power, the chance a study is planned to have of finding what it looks for.
BORDERLINE_BELOW = 0.8


def _edges(test: RatioTest, level: float, margin: float) -> tuple[float, float]:
    """The log ratios at which ``test`` (one look) would just claim a saving / a cost at two-sided ``level``."""
    shift = math.log1p(max(margin, 0.0))
    if not 0 < level < 1:
        return (-math.inf, math.inf) if level <= 0 else (math.inf, -math.inf)
    quantile = t_ppf(level / 2, test.df) * test.se  # negative: the one-sided half of a two-sided level
    return -shift + quantile, shift - quantile


def agreement(outcome: str, looks: Sequence[tuple[float, RatioTest]], limit: float, margin: float) -> float:
    """The chance that an identical run gives this row ``outcome`` again (``saves`` / ``costs`` / ``same``).

    ``looks``: (share of alpha spent, test) at each look the row reached, the last one being its final test
    (one look with share 1 for a fixed design); ``limit``: the largest p its correction would claim
    (``claim_limit``); ``margin``: the minimum change a claim needs. The row is claimed at a look when its p
    there is at most ``limit`` times that look's share, which is a log ratio beyond that look's edges."""
    final = looks[-1][1] if looks else None
    if final is None or outcome not in ("saves", "costs", "same") or not math.isfinite(final.se):
        return math.nan
    if final.se == 0:
        return 1.0
    # Shifting every look's estimate by d: saves while d <= to_saves, costs while d >= to_costs.
    to_saves, to_costs = -math.inf, math.inf
    for share, test in looks:
        if share <= 0 or not (math.isfinite(test.log_mean) and math.isfinite(test.se) and test.testable):
            continue
        low, high = _edges(test, limit * share, margin)
        to_saves = max(to_saves, low - test.log_mean)
        to_costs = min(to_costs, high - test.log_mean)
    if outcome == "saves":
        distance = to_saves
    elif outcome == "costs":
        distance = -to_costs
    else:
        distance = min(-to_saves, to_costs)
    if math.isinf(distance):
        return 1.0
    return normal_cdf(max(distance, 0.0) / (math.sqrt(2.0) * final.se))
