"""Reports of pytest sessions: the sessions side by side per test, not a compression table.

A pytest run measures a suite's functions: there is no subject, and "vs baseline" means the previous session,
not a method. So with two or more sessions the report is the comparison ``energybench compare`` makes
(``compare.compare_runs``: the last run against the one before it, with the older ones as its history): base
and new energy per call per test, the change with its 95% interval, the gate's verdict, and with three or
more sessions a trend per test (``history.trends``) with its change points. Energy per item is shown only for
tests that count items (``Benchmark.has_items``); one session is a plain table of its tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from energybench import units
from energybench.render import cells
from energybench.render.comparison import change_with_ci, gate_message, method_line
from energybench.render.headlines import tag
from energybench.render.plots import Bar, StackRow, color, esc, hbar_chart, stacked_hbar
from energybench.render.report_lines import machine_lines, notice_lines, regions_lines, wrap
from energybench.render.tables import Column, fit_table, markdown_table, md_escape
from energybench.report.model import Entry, Report
from energybench.verdicts.history import Trend

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
    if steps:
        return f"{text} {', '.join(steps)}"
    return f"{text} one level" if len(t.points) >= MIN_CHANGE_POINT_RUNS else text


#: Fewest runs in which a missing change point means something (``energybench history`` says the same).
MIN_CHANGE_POINT_RUNS = 4


def _trends(report: Report) -> dict[str, Trend]:
    return {t.key: t for t in report.trends}


def _entries(report: Report) -> dict[tuple[str, str], Entry]:
    return {(e.run, e.key): e for e in report.entries}


def _item_note(report: Report, key: str) -> str:
    """Energy per item of the newest run, for a test that counts items (else nothing: it would be per call)."""
    e = _entries(report).get((report.runs[-1].label, key))
    if e is None or not e.has_items:
        return ""
    return cells.entry_per_item(e, with_ci=False)


def common_module(keys: list[str]) -> str:
    """``test_m.py`` when every test lives in it (then rows show ``test_sum``), else empty."""
    modules = {k.split("::", 1)[0] for k in keys}
    return modules.pop() if len(modules) == 1 and all("::" in k for k in keys) else ""


@dataclass(frozen=True)
class SessionRow:
    """One test across two sessions, as every format shows it."""

    test: str
    base: str
    new: str
    per_item: str  # the newest session's energy per item, for a test that counts items
    change: str
    interval: str
    verdict: str
    source: str
    trend: tuple[str, ...]


def session_rows(report: Report) -> list[SessionRow]:
    cmp = report.comparison
    assert cmp is not None
    trends = _trends(report)
    module = common_module([r.key for r in cmp.rows])
    out = []
    for r in cmp.rows:
        change, _, interval = change_with_ci(r).partition(" ")
        t = trend_cell(trends.get(r.key))
        spark, _, steps = t.partition(" ")
        out.append(SessionRow(r.key.removeprefix(f"{module}::") if module else r.key, units.joules(r.base_energy),
                              units.joules(r.new_energy), _item_note(report, r.key), change, interval,
                              r.verdict(cmp.alpha), r.source, (spark, steps) if steps else (spark,) if spark else ()))
    return out


def _mixed_sources(rows: list[SessionRow]) -> bool:
    return len({r.source for r in rows}) > 1


def _columns(report: Report, rows: list[SessionRow]) -> tuple[Column, ...]:
    source = (Column(("source",)),) if _mixed_sources(rows) else ()
    trend = (Column(("trend",), drop=1),) if report.trends else ()
    return (Column(("test",), shrink=True), Column(("base", "per call"), right=True),
            Column(("new", "per call"), right=True), Column(("change", "[95% CI]"), right=True),
            Column(("verdict",)), *source, *trend)


def _cells(report: Report, rows: list[SessionRow]) -> list[list[tuple[str, ...]]]:
    mixed = _mixed_sources(rows)
    return [[(r.test,), (r.base,), (r.new, r.per_item) if r.per_item else (r.new,), (r.change, r.interval),
             (r.verdict,), *([(r.source,)] if mixed else []), *([r.trend or ("",)] if report.trends else [])]
            for r in rows]


def title(report: Report, rows: list[SessionRow]) -> str:
    """``pytest sessions: base 0002_main -> new 0003_main, test_m.py (estimated; trend over 3 runs)``."""
    cmp = report.comparison
    assert cmp is not None
    module = common_module([r.key for r in cmp.rows])
    facts = [] if _mixed_sources(rows) else [rows[0].source] if rows else []
    facts += [f"trend over {len(report.runs)} runs"] if report.trends else []
    return (f"pytest sessions: base {cmp.base_id} -> new {cmp.new_id}" + (f", {module}" if module else "")
            + (f" ({'; '.join(facts)})" if facts else ""))


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
    out = machine_lines(report, width)
    cmp = report.comparison
    if cmp is not None and cmp.rows:
        rows = session_rows(report)
        out += ["", *wrap(title(report, rows), width)]
        fitted = fit_table(_columns(report, rows), _cells(report, rows), width, indent="  ", wide=wide)
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
        rows = session_rows(report)
        cols = _columns(report, rows)
        body = [[" ".join(p for p in c if p) for c in row] for row in _cells(report, rows)]
        return [f"**{md_escape(title(report, rows))}**", "",
                markdown_table([" ".join(c.header) for c in cols], body, "lrrrl" + "l" * (len(cols) - 5)), "",
                md_escape(method_line(cmp) or ""), ""]
    rows_single = [[" ".join(c) for c in row] for row in single_rows(report)]
    return [markdown_table([" ".join(c.header) for c in SINGLE], rows_single, "lrlr"), ""]


def html_section(report: Report) -> str:
    """The sessions side by side per test, with the change, its interval, the verdict and the trend."""
    cmp = report.comparison
    if cmp is None or not cmp.rows:
        body = "".join("<tr>" + "".join(f"<td>{esc(' '.join(c))}</td>" for c in row) + "</tr>"
                       for row in single_rows(report))
        head = "".join(f"<th>{esc(' '.join(c.header))}</th>" for c in SINGLE)
        return (f"<section><h2>Energy per test</h2><div class=scroll><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table></div></section>")
    rows = session_rows(report)
    trs = []
    for r in rows:
        item = f"<br><small>{esc(r.per_item)}</small>" if r.per_item else ""
        trs.append(
            f"<tr><td class=name>{esc(r.test)}</td><td class=num>{esc(r.base)}</td><td class=num>{esc(r.new)}{item}"
            f"</td><td class=num>{esc(r.change)}<br><small>{esc(r.interval)}</small></td>"
            f'<td class="verdict-{esc(r.verdict.lower().replace(" ", "-"))}">{esc(r.verdict)}</td>'
            f'<td><span class="tag {esc(r.source)}">{esc(r.source)}</span></td>'
            + (f"<td>{esc(' '.join(r.trend))}</td>" if report.trends else "") + "</tr>")
    head = ("<th>test</th><th>base<br>per call</th><th>new<br>per call</th><th>change<br>[95% CI]</th>"
            "<th>verdict</th><th>source</th>" + ("<th>trend</th>" if report.trends else ""))
    return (f"<section><h2>{esc(title(report, rows))}</h2><div class=scroll><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table></div><p class=\"note\">{esc(method_line(cmp) or '')}</p>"
            "</section>")


def _figure(caption: str, svg: str, source: str) -> str:
    return (f'<figure class="chart"><figcaption>{esc(caption)} {tag(source)}</figcaption><div class="plot">{svg}</div>'
            "</figure>")


def _source(entries: list[Entry]) -> str:
    sources = {e.source for e in entries}
    return "measured" if sources == {"measured"} else "estimated" if "estimated" in sources else "unknown"


def html_charts(report: Report) -> str:
    """One chart per test: a bar per session (oldest first) with its 95% CI, so a change reads at a glance."""
    runs = [r.label for r in report.runs]
    by_key: dict[str, list[Entry]] = {}
    for e in report.entries:
        by_key.setdefault(e.key, []).append(e)
    charts = []
    for key, entries in by_key.items():
        entries = sorted(entries, key=lambda e: runs.index(e.run))
        unit = entries[-1].per_what
        bars = [Bar(label=e.run, value=e.per_item.value, low=e.per_item.low, high=e.per_item.high,
                    color=color(runs.index(e.run)),
                    note=units.change(e.per_item.value / entries[0].per_item.value - 1) if i else "")
                for i, e in enumerate(entries)]
        svg = hbar_chart(bars, kind="energy", title=f"Energy per {unit}: {key}", fmt=units.joules,
                         axis_label=f"J per {unit}; whiskers: 95% CI of the median")
        charts.append(_figure(key, svg, _source(entries)))
    return f'<section><h2>Energy per test</h2><div class="charts">{"".join(charts)}</div></section>'


def html_domains(report: Report) -> str:
    """Energy per call (or item) by device for the newest session: one bar per test."""
    newest = report.runs[-1].label
    entries = [e for e in report.entries if e.run == newest and e.domains_per_item]
    if not entries:
        return ""
    keys = list(dict.fromkeys(k for e in entries for k in e.domains_per_item))
    svg = stacked_hbar([StackRow(label=e.key, parts=e.domains_per_item) for e in entries],
                       title=f"Energy by device: {newest}", fmt=units.joules, axis_label="J per call or item",
                       colors={k: color(i) for i, k in enumerate(keys)})
    return (f'<section><h2>Energy by device</h2><div class="charts">{_figure(newest, svg, _source(entries))}</div>'
            "</section>")
