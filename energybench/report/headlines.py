"""What a report may announce: per workload, the biggest saving that is real and keeps quality (data only).

Why: the largest saving of a table is often a model nobody should ship (a distilled student at six times the
baseline's perplexity) or no saving at all (a ratio whose interval spans 1). A headline here counts a method
only when its saving is significant (``VsBaseline.outcome == "saves"``: corrected p at the verdict's level)
and its quality is within ``budget`` of the baseline's (default 1%: ``options.quality_budget``); the bigger
savings left out are listed with why, so a reader sees what was traded away. Renderers add the words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from energybench.report.model import Entry

#: Default quality budget: a method may be at most 1% worse than the baseline on its quality metric.
DEFAULT_QUALITY_BUDGET = 0.01


def quality_loss(e: Entry, base: Entry) -> float | None:
    """How much worse ``e``'s quality is than the baseline's, as a fraction (negative: better); ``None`` when
    either has no quality figure or they measure different metrics."""
    if e.quality is None or base.quality is None or e.quality.metric != base.quality.metric:
        return None
    b, v = base.quality.value, e.quality.value
    if b == 0 or not (math.isfinite(b) and math.isfinite(v)):
        return None
    change = v / b - 1.0
    return -change if e.quality.higher_is_better else change


@dataclass(frozen=True)
class Candidate:
    """A method of the workload with what the headline rules found about it."""

    entry: Entry
    saves: bool  # a significant saving (corrected p at the verdict's level)
    loss: float | None  # quality loss against the baseline (fraction), None when not comparable
    within_budget: bool

    @property
    def why_not(self) -> str:
        """Why this method is not a headline (empty when it could be)."""
        if not self.saves:
            return "no significant saving"
        if not self.within_budget:
            return "quality not comparable with the baseline's" if self.loss is None else "quality over the budget"
        return ""


@dataclass(frozen=True)
class Headline:
    """One workload's headline: ``best`` (or ``None``, and ``reason`` says why), the trade-offs that are on
    the Pareto front and pass both rules, and the bigger savings left out (``passed_over``)."""

    group: tuple[str, str, str]  # (run, benchmark, phase) as ``Report.groups`` names it
    baseline: Entry
    best: Candidate | None
    trade_offs: tuple[Candidate, ...]
    passed_over: tuple[Candidate, ...]  # bigger energy savings than ``best`` that the rules left out
    budget: float
    has_quality: bool  # the baseline has a quality figure (else the budget could not be checked)
    reason: str = ""


def headlines(groups: Sequence[tuple[tuple[str, str, str], list[Entry]]],
              budget: float = DEFAULT_QUALITY_BUDGET) -> list[Headline]:
    """A ``Headline`` for every group (``Report.groups()``) that has a baseline and another method."""
    out = []
    for key, entries in groups:
        base = next((e for e in entries if e.is_baseline), None)
        others = [e for e in entries if not e.is_baseline and e.ratio is not None]
        if base is None or not others:
            continue
        has_quality = base.quality is not None
        cands = []
        for e in sorted(others, key=_ratio):
            loss = quality_loss(e, base)
            within = (loss is not None and loss <= budget + 1e-12) if has_quality else True
            cands.append(Candidate(e, e.vs is not None and e.vs.outcome == "saves", loss, within))
        best = next((c for c in cands if not c.why_not), None)
        bigger = [c for c in cands if _ratio(c.entry) < 1 and c is not best
                  and (best is None or _ratio(c.entry) < _ratio(best.entry))]
        trade = tuple(c for c in cands if c.entry.on_front and not c.why_not)
        reason = ""
        if best is None:
            if all(c.entry.vs is None or c.entry.vs.outcome in ("untestable", "no-baseline") for c in cands):
                reason = "no method could be tested against the baseline (too few usable trial pairs)"
            elif not any(c.saves for c in cands):
                reason = "no method saves energy significantly"
            else:
                reason = "every significant saving costs more quality than the budget allows"
        out.append(Headline(key, base, best, trade, tuple(bigger), budget, has_quality, reason))
    return out


def _ratio(e: Entry) -> float:
    """The entry's ratio to the baseline; an unknown one sorts last."""
    r = e.ratio.value if e.ratio is not None else math.nan
    return r if math.isfinite(r) else math.inf
