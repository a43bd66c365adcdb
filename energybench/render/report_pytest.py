"""Reports of pytest sessions: the sessions side by side per test, not a compression table.

A pytest run measures a suite's functions: there is no subject, and "vs baseline" means the previous session,
not a method. So with two or more sessions the report is the comparison ``energybench compare`` makes
(``compare.compare_runs``: the last run against the one before it, with the older ones as its history): base
and new energy per call per test, the change with its 95% interval, the gate's verdict, and with three or
more sessions a trend per test (``history.trends``) with its change points. Energy per item is shown only for
tests that count items (``Benchmark.has_items``); one session is a plain table of its tests.
"""

from __future__ import annotations

from energybench.compare import Row as CmpRow
from energybench.history import Trend
from energybench.render import cells, units
from energybench.render.comparison import change_with_ci, gate_message, method_line
from energybench.render.plots import esc
from energybench.render.tables import Column, fit_table, markdown_table
from energybench.report.model import Entry, Report

SPARKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"


def sparkline(values: list[float]) -> str:
    """``▁▃▅█``: each run's median scaled between the lowest and the highest."""
    lo, hi = min(values), max(values)
    if hi <= lo:
        return SPARKS[3] * len(values)
    return "".join(SPARKS[round((v - lo) / (hi - lo) * (len(SPARKS) - 1))] for v in values)


def trend_cell(t: Trend | None) -> str:
    """``▁▃▅█ +12% at 0004_pr``: the medians over the runs and where their level changed."""
    if t is None or len(t.points) < 2:
        return ""
    text = sparkline([p.median for p in t.points])
    steps = [f"{units.change(t.step(cp))} at {t.points[cp].run}" for cp in t.change_points]
    return text + (" " + ", ".join(steps) if steps else " one level")


def _trends(report: Report) -> dict[str, Trend]:
    return {t.key: t for t in report.trends}


def _entries(report: Report) -> dict[tuple[str, str], Entry]:
    return {(e.run, e.key): e for e in report.entries}


def _per_call(r: CmpRow, side: str) -> str:
    return units.per(units.joules(r.base_energy if side == "base" else r.new_energy), "call")


def _item_note(report: Report, key: str) -> str:
    """Energy per item of the newest run, for a test that counts items (else nothing: it would be per call)."""
    e = _entries(report).get((report.runs[-1].label, key))
    if e is None or not e.has_items:
        return ""
    return cells.entry_per_item(e, with_ci=False)


def comparison_rows(report: Report) -> list[list[tuple[str, ...]]]:
    cmp = report.comparison
    assert cmp is not None
    trends = _trends(report)
    rows: list[list[tuple[str, ...]]] = []
    for r in cmp.rows:
        change, _, interval = change_with_ci(r).partition(" ")
        item = _item_note(report, r.key)
        rows.append([(r.key,), (_per_call(r, "base"),), (_per_call(r, "new"), item) if item else (_per_call(r, "new"),),
                     (change, interval), (r.verdict(cmp.alpha),), (r.source,), (trend_cell(trends.get(r.key)),)])
    return rows


def _columns(report: Report) -> tuple[Column, ...]:
    cmp = report.comparison
    assert cmp is not None
    trend = (Column(("trend",), drop=1),) if report.trends else ()
    return (Column(("test",)), Column((str(cmp.base_id), "per call"), right=True),
            Column((cmp.new_id, "per call"), right=True), Column(("change", "[95% CI]"), right=True),
            Column(("verdict",)), Column(("source",)), *trend)


def single_rows(report: Report) -> list[list[tuple[str, ...]]]:
    """One session: each test's energy per call (per item where it counts items) with its interval."""
    rows: list[list[tuple[str, ...]]] = []
    for e in report.entries:
        figure = cells.entry_per_item(e, with_ci=False) if e.has_items else units.per(
            units.joules(e.per_item.value), "call")
        interval = units.compact_interval(e.per_item.low, e.per_item.high, e.per_item.value, units.joules)
        rows.append([(e.key,), (figure, interval) if interval else (figure,), (e.source,), (str(e.rounds),)])
    return rows


SINGLE = (Column(("test",)), Column(("energy", "[95% CI]"), right=True), Column(("source",)),
          Column(("rounds",), right=True))


def render_pytest_terminal(report: Report, *, width: int, wide: bool = False) -> str:
    from energybench.render.report_text import machine_lines, notice_lines, regions_lines, wrap

    out = machine_lines(report, width)
    cmp = report.comparison
    if cmp is not None and cmp.rows:
        out += ["", f"pytest sessions {cmp.base_id} -> {cmp.new_id}" + (
            f" (trend over {len(report.runs)} runs)" if report.trends else "")]
        fitted = fit_table(_columns(report), comparison_rows(report), width, indent="  ", wide=wide)
        out += fitted.lines
        if fitted.dropped:
            out += wrap(f"columns left out to fit {width} characters: {', '.join(fitted.dropped)} (--wide)", width)
        out += wrap(method_line(cmp) or "", width)
        out += [line for r in cmp.rows for g in r.gates for line in wrap(gate_message(g), width, "  ")]
        if cmp.only_new or cmp.only_base:
            out += wrap("only in one session: " + ", ".join([*(f"{k} (new)" for k in cmp.only_new),
                                                              *(f"{k} (removed)" for k in cmp.only_base)]), width)
    else:
        for run in report.runs:
            entries = [e for e in report.entries if e.run == run.label]
            sub = Report(runs=(run,), entries=tuple(entries), baseline=report.baseline)
            out += ["", f"pytest session {run.label}"]
            out += fit_table(SINGLE, single_rows(sub), width, indent="  ", wide=wide).lines
    out += regions_lines(report, width) + notice_lines(report, width)
    return "\n".join(out) + "\n"


def render_pytest_markdown(report: Report) -> list[str]:
    """The comparison (or one session's table) as Markdown lines for a PR comment."""
    cmp = report.comparison
    if cmp is not None and cmp.rows:
        rows = [[" ".join(c) for c in row] for row in comparison_rows(report)]
        headers = [" ".join(c.header) for c in _columns(report)]
        return [markdown_table(headers, rows, "lrrrlll"), "", method_line(cmp) or "", ""]
    rows = [[" ".join(c) for c in row] for row in single_rows(report)]
    return [markdown_table([" ".join(c.header) for c in SINGLE], rows, "lrlr"), ""]


def html_section(report: Report) -> str:
    """The sessions side by side per test, with the change, its interval, the verdict and the trend."""
    cmp = report.comparison
    if cmp is None or not cmp.rows:
        rows = "".join("<tr>" + "".join(f"<td>{esc(' '.join(c))}</td>" for c in row) + "</tr>"
                       for row in single_rows(report))
        head = "".join(f"<th>{esc(' '.join(c.header))}</th>" for c in SINGLE)
        return (f"<section><h2>Energy per test</h2><div class=scroll><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{rows}</tbody></table></div></section>")
    body = []
    for row in comparison_rows(report):
        verdict = row[4][0]
        body.append(
            f"<tr><td class=name>{esc(row[0][0])}</td><td class=num>{esc(row[1][0])}</td>"
            f"<td class=num>{esc(row[2][0])}{'<br><small>' + esc(row[2][1]) + '</small>' if len(row[2]) > 1 else ''}"
            f"</td><td class=num>{esc(row[3][0])}<br><small>{esc(row[3][1])}</small></td>"
            f'<td class="verdict-{esc(verdict.lower().replace(" ", "-"))}">{esc(verdict)}</td>'
            f'<td><span class="tag {esc(row[5][0])}">{esc(row[5][0])}</span></td>'
            + (f"<td>{esc(row[6][0])}</td>" if report.trends else "") + "</tr>")
    head = "".join(f"<th>{esc(' '.join(c.header))}</th>" for c in _columns(report))
    return (f"<section><h2>pytest sessions: {esc(cmp.base_id)} \u2192 {esc(cmp.new_id)}</h2><div class=scroll>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
            f'<p class="note">{esc(method_line(cmp) or "")}</p></section>')
