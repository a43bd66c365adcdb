"""Table cells shared by the run table and every report format, so a figure and a verdict read the same in a
terminal, a PR comment and HTML."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from energybench import units
from energybench.record import OneOff, Quality
from energybench.report.model import Entry
from energybench.verdicts.baseline import MIN_PAIRS, BreakEven, VsBaseline
from energybench.verdicts.repeat import BORDERLINE_BELOW

_OUTCOME = {"same": "no significant saving", "no-baseline": "no baseline energy to compare"}


def workload(bench: str, phase: str) -> str:
    """``lm/inference-generate (inference)``; a pytest test's default phase ``other`` is left out (it says nothing)."""
    return bench if phase == "other" else f"{bench} ({phase})"


def verdict(vs: VsBaseline | None, marked: bool = True) -> str:
    """``saves 38%``, ``costs 12% more``, ``no significant saving``, or why no claim is possible at this n;
    empty for the baseline itself. ``(borderline)`` follows a verdict an identical run would likely not repeat
    (unless ``marked`` is False, for a table that shows ``repeats`` beside it)."""
    if vs is None:
        return ""
    if vs.outcome == "untestable":
        left_out = (f" ({vs.excluded_trials} set aside: load differed between their sides, or partial)"
                    if vs.excluded_trials else "")
        return f"cannot be tested: {vs.n} trial pair(s){left_out}, {MIN_PAIRS} needed"
    if vs.outcome == "saves":
        text = f"saves {units.percent(-vs.change)}"
    elif vs.outcome == "costs":
        text = f"costs {units.percent(vs.change)} more"
    else:
        text = _OUTCOME[vs.outcome]
    return f"{text} (borderline)" if marked and vs.borderline else text


def repeats(vs: VsBaseline | None) -> str:
    """``borderline: repeats ~62%``: the chance an identical run gives the same verdict, shown where it is below
    ``repeat.BORDERLINE_BELOW`` (the row's estimate stands near a claim's edge); empty otherwise."""
    if vs is None or not vs.borderline:
        return ""
    return f"borderline: repeats ~{vs.repeat_agreement * 100:.0f}%"


def decided(vs: VsBaseline | None) -> str:
    """``decided after 3 trials`` for a row of a sequential run that stopped before its last look."""
    if vs is None or vs.stopped is None or vs.stopped.reason not in ("claim", "futile"):
        return ""
    return f"decided after {vs.stopped.after} trials"


def evidence(vs: VsBaseline | None) -> str:
    """What a claim rests on: ``p=0.002 (adj. 0.011), n=8``; the test and the correction are in the footer."""
    if vs is None or vs.outcome in ("untestable", "no-baseline"):
        return ""
    text = f"p{units.p_is(vs.p)} (adj. {units.p_value(vs.p_adjusted)}), n={vs.n}"
    return text + (f", {d}" if (d := decided(vs)) else "")


def short_evidence(vs: VsBaseline | None) -> str:
    """``adj. p=0.011, n=12``: the corrected p a claim rests on, for narrow tables (the raw p is in ``evidence``)."""
    if vs is None or vs.outcome in ("untestable", "no-baseline"):
        return ""
    return f"adj. p{units.p_is(vs.p_adjusted)}, n={vs.n}" + (f", {d}" if (d := decided(vs)) else "")


#: What a borderline verdict is, in the run table's footer and under every report's table.
BORDERLINE_MEANING = (f"an identical run would give that verdict less than {units.percent(BORDERLINE_BELOW)} of the "
                      "time, its estimate being near a claim's edge (docs: statistics)")


def borderline_note(entries: Iterable[Entry]) -> str:
    """What ``(borderline)`` means, for a report with such a verdict; empty otherwise."""
    if not any(e.vs is not None and e.vs.borderline for e in entries):
        return ""
    return f"(borderline): {BORDERLINE_MEANING}"


def method_line(verdicts: Mapping[str, VsBaseline]) -> str | None:
    """The footer every verdict table carries: the test, the interval and the correction, with the family."""
    vs = next(iter(verdicts.values()), None)
    if vs is None:
        return None
    excluded = sum(v.excluded_trials for v in verdicts.values())
    text = (f"verdicts: {vs.test} per workload (trials interleaved, so trial t of both sides shares the machine's "
            f"state); ratio = geometric mean of per-trial ratios with its 95% CI"
            + (f", which includes the {vs.between.describe()}" if vs.between is not None and vs.between.sd > 0 else "")
            + (f"; a claim needs a change significantly beyond {units.percent(vs.min_change)} (--min-change)"
               if vs.min_change > 0 else "")
            + f"; {vs.correction} across {vs.family_size} rows at {units.percent(vs.alpha)}"
            + ("; sequential: each row looked at every few trials and stopped once decided, its p taken over the "
               "looks it reached (docs: statistics)" if vs.sequential else ""))
    if any(v.borderline for v in verdicts.values()):
        text += f"; borderline: {BORDERLINE_MEANING}"
    if excluded:
        text += (f"; {excluded} trial pair(s) set aside (the load differed between their two sides, or a side is "
                 "partial)")
    return text


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


def break_even(be: BreakEven | None, unit: str | None) -> str:
    """``after 17.6k tokens [12.1k, 30.2k]`` (shown only for a significant saving)."""
    if be is None:
        return ""
    unit = unit or "item"
    what = unit if unit.endswith("s") else f"{unit}s"  # 1k sentences, not sentencess
    high = "never" if math.isinf(be.high) else units.count(be.high)
    return f"after {units.count(be.items)} {what} [{units.count(be.low)}, {high}]"


def one_off(o: OneOff) -> str:
    """``24.9 J [22.1 J, 27.7 J] over 3 repeats (estimated)``."""
    text = units.joules(o.energy_j)
    if o.interval is not None:
        text += f" {units.interval(o.interval[0], o.interval[1], units.joules)}"
    return text + f" over {o.repeats} repeat{'s' if o.repeats != 1 else ''} ({o.source or 'unknown source'})"


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


def tables_size(quality: Quality | None) -> str:
    """``(tables 124 kB)``: the stored size of a model's embedding tables, as its quality records it
    (``embedding_bytes``: the recommender's). Its energy is memory traffic, so the bytes a method saved belong
    beside its energy in every table, not in a column a narrow terminal leaves out; empty without tables."""
    size = quality.extra.get("embedding_bytes") if quality is not None else None
    if isinstance(size, bool) or not isinstance(size, int | float) or not math.isfinite(size):
        return ""
    return f"(tables {units.si(size, 'B')})"


def entry_quality_parts(e: Entry) -> tuple[str, ...]:
    """``("perplexity", "13.2 ↓")``: the metric above its value when a narrow table folds the cell."""
    if e.quality is None:
        return ("",)
    metric, _, value = entry_quality(e).partition(" ")
    return (metric, value)
