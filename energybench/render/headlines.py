"""Headlines in words: the HTML "At a glance" cards and the one-line summaries of the terminal and Markdown.

Every headline figure carries its provenance (``estimated`` / ``measured``) next to it, its interval, and
the quality it costs against the budget; bigger savings that the rules left out are named with why
(``report.headlines`` decides; this module only words it).
"""

from __future__ import annotations

import math

from energybench import units
from energybench.render import cells
from energybench.render.plots import esc
from energybench.report.headlines import Candidate, Headline, headlines
from energybench.report.model import Entry, Report


def tag(source: str) -> str:
    """The provenance badge: ``measured`` (green), ``estimated`` (amber), anything else grey."""
    return f'<span class="tag {esc(source)}">{esc(source)}</span>'


def budget_text(h: Headline) -> str:
    """``within 1% of the baseline's perplexity`` (or that there is no budget, or no quality to check)."""
    if not h.has_quality:
        return "no quality metric recorded, so the quality budget could not be checked"
    metric = h.baseline.quality.metric  # type: ignore[union-attr]
    if math.isinf(h.budget):
        return f"any {metric} (no quality budget)"
    return f"within {units.percent(h.budget)} of the baseline's {metric}"


def saving(e: Entry) -> str:
    """``56% [54%, 58%]``: the saving with its 95% interval (from the ratio's)."""
    r = e.ratio
    assert r is not None
    text = units.percent(1 - r.value)
    if r.low is not None and r.high is not None:
        text += f" [{units.percent(1 - r.high)}, {units.percent(1 - r.low)}]"
    return text


def quality_change(c: Candidate, base: Entry) -> str:
    """``perplexity 13.3 vs 13.2 (+0.5%)``."""
    q, bq = c.entry.quality, base.quality
    if q is None or bq is None:
        return "no quality figure"
    change = f", {units.change(q.value / bq.value - 1)}" if bq.value else ""
    return f"{q.metric} {q.value:.4g} vs {bq.value:.4g}{change}"


def left_out_reason(c: Candidate, h: Headline) -> str:
    """Why a bigger saving is not the headline: ``perplexity 74.8 vs 13.2, +467%: over the 1.0% budget``."""
    if c.why_not == "quality over the budget":
        return f"{quality_change(c, h.baseline)}: over the {units.percent(h.budget)} budget"
    return c.why_not


def _left_out(c: Candidate, h: Headline) -> str:
    return f"{c.entry.method} {cells.entry_change(c.entry)} ({left_out_reason(c, h)})"


def text_line(h: Headline, multi_run: bool = False) -> str:
    """One line for a terminal, a log or a PR: the headline, or why there is none, and what was left out."""
    run, bench, phase = h.group
    where = cells.workload(bench, phase) + (f" [{run}]" if multi_run else "")
    if h.best is not None:
        e = h.best.entry
        near_edge = f"{r}; " if (r := cells.repeats(e.vs)) else ""
        text = (f"{where}: {e.method} saves {saving(e)} energy per {e.per_what} ({e.source}); {near_edge}"
                f"{quality_change(h.best, h.baseline) if h.has_quality else 'no quality metric'}, "
                f"{budget_text(h)}")
    else:
        text = f"{where}: no headline: {h.reason} ({budget_text(h)})"
    if h.passed_over:
        text += "; left out: " + "; ".join(_left_out(c, h) for c in h.passed_over[:3])
    return text


def text_lines(report: Report) -> list[str]:
    return [text_line(h, report.multi_run) for h in headlines(report.groups(), report.quality_budget)]


def _card(report: Report, h: Headline) -> str:
    run, bench, phase = h.group
    title = cells.workload(bench, phase) + (f" \u00b7 {run}" if report.multi_run else "")
    if h.best is not None:
        e = h.best.entry
        big = (f'<div class="big good">{esc(cells.entry_change(e))} {tag(e.source)}</div>'
               f'<div class="what">energy per {esc(e.per_what)} with <b>{esc(e.method)}</b>: saves '
               f"{esc(saving(e))} ({esc(cells.entry_ratio(e))}, {esc(cells.evidence(e.vs))}"
               + (f", {esc(r)}" if (r := cells.repeats(e.vs)) else "") + "); "
               f"{esc(quality_change(h.best, h.baseline) if h.has_quality else 'no quality metric')}, "
               f"{esc(budget_text(h))}</div>")
    else:
        big = (f'<div class="big">no headline {tag(h.baseline.source)}</div>'
               f'<div class="what">{esc(h.reason)} ({esc(budget_text(h))}).</div>')
    left = ""
    if h.passed_over:
        items = "".join(f"<li><b>{esc(c.entry.method)}</b> {esc(cells.entry_change(c.entry))}: "
                        f"{esc(left_out_reason(c, h))}</li>" for c in h.passed_over[:3])
        left = f'<div class="what">Bigger savings left out:<ul>{items}</ul></div>'
    if h.trade_offs:
        items = "".join(
            f"<li><b>{esc(c.entry.method)}</b> {esc(cells.entry_ratio(c.entry, with_ci=False))}"
            + (f", {esc(c.entry.quality.metric)} {c.entry.quality.value:.4g}" if c.entry.quality else "")
            + f" {tag(c.entry.source)}</li>" for c in h.trade_offs[:4])
        trade = f'<div class="what">Best trade-offs (Pareto front, significant, within budget):<ul>{items}</ul></div>'
    else:
        trade = ('<div class="what">Best trade-offs: none (no method on the Pareto front saves energy '
                 "significantly within the quality budget).</div>")
    return f'<div class="card"><div class="what">{esc(title)}</div>{big}{left}{trade}</div>'


def html_section(report: Report) -> str:
    """The "At a glance" section: a card per workload, and how a saving is judged."""
    found = headlines(report.groups(), report.quality_budget)
    if not found:
        return ""
    first = next((e.vs for e in report.entries if e.vs is not None), None)
    how = (f"{first.test}, {first.correction} across {first.family_size} rows at {units.percent(first.alpha)}"
           if first is not None else "the run's verdicts")
    return ('<section><h2>At a glance</h2><div class="cards">' + "".join(_card(report, h) for h in found) +
            '</div><p class="note">A headline counts a method only when its saving is significant (ratio: geometric '
            f"mean of the per-trial ratios with its 95% CI; {esc(how)}) and its quality stays within the budget "
            f"({esc(units.percent(report.quality_budget)) if math.isfinite(report.quality_budget) else 'none'}; "
            "--quality-budget). Every figure is labelled measured or estimated.</p></section>")
