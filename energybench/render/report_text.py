"""The plain-text report printed by ``energybench report``: headlines, then one block per benchmark and phase.

It fits the terminal (100 columns when output is not a terminal; ``wide`` for every column on one line):
intervals fold under their figures, long notes wrap, and region sources become numbered footnotes. A report
of pytest sessions is a comparison of the sessions instead (``render.report_pytest``).
"""

from __future__ import annotations

from energybench import units
from energybench.render import cells
from energybench.render.comparison import change_with_ci, gate_message
from energybench.render.headlines import text_lines
from energybench.render.printable import printable_output
from energybench.render.report_lines import machine_lines, notice_lines, regions_lines, wrap
from energybench.render.tables import Column, Row, fit_table, terminal_width
from energybench.report.model import Entry, Report

COLUMNS = (
    Column(("method",), shrink=True),
    Column(("energy per item", "[95% CI]"), right=True),
    Column(("vs baseline", "[95% CI]"), right=True),
    Column(("verdict",)),
    Column(("quality",)),
    Column(("source",)),
    Column(("rounds",), right=True, drop=1),
)


def _split(text: str) -> tuple[str, ...]:
    """``27.3 nJ/token [26.9 nJ, 27.8 nJ]`` -> (figure, interval), so a narrow table can fold them."""
    figure, sep, interval = text.partition(" [")
    return (figure, "[" + interval) if sep else (figure,)


def _row(e: Entry, baseline: str) -> list[tuple[str, ...]]:
    vs = cells.entry_ratio(e) if not e.is_baseline else "baseline"
    evidence = cells.short_evidence(e.vs) if e.vs is not None and e.vs.significant else ""
    per_item = units.per(units.joules(e.per_item.value), e.per_what)
    interval = units.compact_interval(e.per_item.low, e.per_item.high, e.per_item.value, units.joules)
    method = (e.method + (" *" if e.on_front else ""), cells.tables_size(e.quality))  # an empty part is left out
    return [method, (per_item, interval) if interval else (per_item,),
            _split(vs), (cells.entry_verdict(e), evidence) if evidence else (cells.entry_verdict(e),),
            cells.entry_quality_parts(e), (e.source,), (str(e.rounds),)]


def comparison_lines(report: Report, width: int) -> list[str]:
    cmp = report.comparison
    if cmp is None or not cmp.rows:
        return []
    out = ["", "gates:" if cmp.gates else "comparison:"]
    rows: list[Row] = [[(r.key,), (r.verdict(cmp.alpha),), _split(change_with_ci(r))] for r in cmp.rows]
    cols = (Column(("benchmark",)), Column(("verdict",)), Column(("change in energy", "[95% CI]"), right=True))
    out += fit_table(cols, rows, width, indent="  ").lines
    out += [line for r in cmp.rows for g in r.gates for line in wrap(gate_message(g), width, "  ")]
    return out


@printable_output
def render_terminal(report: Report, *, width: int | None = None, wide: bool = False) -> str:
    """The report as text no wider than ``width`` (default: the terminal's, 100 when not a terminal)."""
    width = terminal_width() if width is None else width
    if report.kind == "pytest":
        from energybench.render.report_pytest import render_pytest_terminal

        return render_pytest_terminal(report, width=width, wide=wide)
    out = machine_lines(report, width)
    heads = text_lines(report)
    if heads:
        out += ["", "headlines:"] + [line for h in heads for line in wrap(h, width, "  ")]
    # provenance in each block's title when the block is all of one source, else a column
    mixed = wide or any(len({e.source for e in entries}) > 1 for _, entries in report.groups())
    keep = [i for i, c in enumerate(COLUMNS) if mixed or c.header != ("source",)]
    rows: list[Row] = []
    for (run_id, bench, phase), entries in report.groups():
        title = cells.workload(bench, phase) + (f"  [{run_id}]" if report.multi_run else "")
        rows.append(title if mixed else f"{title}: {entries[0].source}")
        rows += [[cell for i, cell in enumerate(_row(e, report.baseline)) if i in keep] for e in entries]
    fitted = fit_table([COLUMNS[i] for i in keep], rows, width, indent="  ", wide=wide)
    out += ["", *fitted.lines]
    if fitted.dropped:
        out += wrap(f"columns left out to fit {width} characters: {', '.join(fitted.dropped)} (--wide shows every "
                    "column)", width)
    if any(e.on_front for e in report.entries):
        out += ["", "* on the energy/quality Pareto front"]
    if note := cells.borderline_note(report.entries):
        out += wrap(note, width)
    out += regions_lines(report, width) + comparison_lines(report, width) + notice_lines(report, width)
    return "\n".join(out) + "\n"
