"""A benchmark over saved runs: its level run by run, and where that level changed.

Why: one comparison answers "did this change cost energy"; a history answers "when did we get slower, and
is it still so". Each run contributes its median with its CI; change points come from PELT on the log medians
(``stats.changepoints``), so a step that stays is reported and one noisy run is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from energybench import stats
from energybench.record import FIGURES, Run


@dataclass(frozen=True)
class TrendPoint:
    run: str
    created: str
    commit: str | None
    median: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class Trend:
    """One benchmark's figure over runs, oldest first, with the runs where its level changed."""

    key: str
    figure: str
    points: tuple[TrendPoint, ...]
    change_points: tuple[int, ...]  # indices into ``points`` where a new level starts

    def step(self, index: int) -> float:
        """Relative change of the level at change point ``index`` (median of the segment after / before - 1)."""
        bounds = [0, *self.change_points, len(self.points)]
        at = bounds.index(index)
        before = [p.median for p in self.points[bounds[at - 1]:index]]
        after = [p.median for p in self.points[index:bounds[at + 1]]]
        return stats.median(after) / stats.median(before) - 1.0


def trends(runs: Sequence[Run], figure: str = "energy_per_item_j", keys: Sequence[str] = ()) -> list[Trend]:
    """Every benchmark (or those whose key contains one of ``keys``) over ``runs``, in the runs' order."""
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; one of {', '.join(FIGURES)}")
    order: list[str] = []
    points: dict[str, list[TrendPoint]] = {}
    for run in runs:
        for bench in run.benchmarks:
            if keys and not any(k in bench.key for k in keys):
                continue
            values = bench.values(figure)
            if not values:
                continue
            s = stats.summarize(values)
            if bench.key not in points:
                order.append(bench.key)
            points.setdefault(bench.key, []).append(TrendPoint(
                run=run.label, created=run.created, commit=(run.commit.get("id") or None) if run.commit else None,
                median=s.median, ci_low=s.ci_low, ci_high=s.ci_high, n=s.n))
    out = []
    for key in order:
        pts = points[key]
        medians = [p.median for p in pts]
        cps = tuple(stats.change_points(medians)) if all(m > 0 and math.isfinite(m) for m in medians) else ()
        out.append(Trend(key, figure, tuple(pts), cps))
    return out
