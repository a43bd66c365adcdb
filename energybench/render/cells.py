"""Table cells shared by the run table and every report format, so a figure and a verdict read the same in a
terminal, a PR comment and HTML."""

from __future__ import annotations

import math

from energybench.render import units
from energybench.report.model import Entry
from energybench.verdicts import VsBaseline

_OUTCOME = {"same": "no significant saving", "no-baseline": "no baseline energy to compare"}


def verdict(vs: VsBaseline | None) -> str:
    """``saves 38%``, ``costs 12% more``, ``no significant saving``; empty for the baseline itself."""
    if vs is None:
        return ""
    if vs.outcome == "saves":
        return f"saves {units.percent(-vs.change)}"
    if vs.outcome == "costs":
        return f"costs {units.percent(vs.change)} more"
    return _OUTCOME[vs.outcome]


def ratio_with_ci(ratio: float | None, low: float | None, high: float | None) -> str:
    """``0.62x [0.58, 0.66]``; the interval left off when unknown."""
    text = units.ratio(ratio)
    if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
        text += f" [{low:.2f}, {high:.2f}]"
    return text


def energy_per_item(median: float, low: float | None, high: float | None, unit: str | None,
                    with_ci: bool = True) -> str:
    """``27.3 nJ/token [26.9 nJ, 27.8 nJ]``."""
    text = units.per(units.joules(median), unit)
    if with_ci and (interval := units.interval(low, high, units.joules)):
        text += f" {interval}"
    return text


def break_even(items: float | None, unit: str | None) -> str:
    """``after 10,583 tokens`` or ``never (no per-item saving)``."""
    if items is None:
        return ""
    if math.isinf(items):
        return "never (no per-item saving)"
    unit = unit or "item"
    return f"after {units.count(items)} {unit if unit.endswith('s') else unit + 's'}"  # 1k sentences, not sentencess


def quality(metric: str, value: float, higher_is_better: bool) -> str:
    arrow = "\u2191" if higher_is_better else "\u2193"
    return f"{metric} {value:.4g} {arrow}"


# -- a report entry's cells (``energybench.report.model.Entry``) -------------------------------------------
def entry_per_item(e: Entry, with_ci: bool = True) -> str:
    return energy_per_item(e.per_item.value, e.per_item.low, e.per_item.high, e.item_unit, with_ci)


def entry_ratio(e: Entry, with_ci: bool = True) -> str:
    """``0.62x [0.58, 0.66]`` relative to the baseline; ``baseline`` for the baseline itself."""
    if e.is_baseline:
        return "baseline"
    if e.ratio is None:
        return units.NA
    return ratio_with_ci(e.ratio.value, e.ratio.low if with_ci else None, e.ratio.high if with_ci else None)


def entry_change(e: Entry) -> str:
    """The saving or cost as a signed percentage: ``-38%`` (less energy) or ``+12%``."""
    if e.is_baseline or e.ratio is None or not math.isfinite(e.ratio.value):
        return ""
    return units.change(e.ratio.value - 1.0)


def entry_verdict(e: Entry) -> str:
    return "" if e.is_baseline else verdict(e.vs) or entry_change(e)


def entry_quality(e: Entry) -> str:
    return "" if e.quality is None else quality(e.quality.metric, e.quality.value, e.quality.higher_is_better)
