"""One self-contained HTML file: inline CSS and inline SVG, no script, no fetch, readable on a phone.

A Content-Security-Policy that forbids every external load and every script is part of the page, so even
a name that slipped past escaping could not run or phone home; escaping is still done everywhere (``esc``)
because the CSP is a second line, not the first.
"""

from __future__ import annotations

from energybench import units
from energybench.record import Run
from energybench.render import cells
from energybench.render.comparison import change_with_ci, gate_message
from energybench.render.devices import hardware_section
from energybench.render.headlines import html_section, tag
from energybench.render.layers import CSS as LAYERS_CSS
from energybench.render.layers import layers_section
from energybench.render.plots import (
    BASELINE_COLOR,
    Bar,
    Point,
    Series,
    StackRow,
    color,
    esc,
    hbar_chart,
    line_chart,
    scatter_pareto,
    stacked_hbar,
)
from energybench.render.printable import printable_output
from energybench.report.model import Entry, Report, stopped_note

STAR = " \u2605"
DOT = " \u00b7 "
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root{--fg:#1d1d1f;--muted:#5f6368;--line:#e3e3e3;--card:#fff;--bg:#f4f5f7;--good:#0b7a3e;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#12263a;color:#fff;padding:18px 20px}
header h1{margin:0 0 4px;font-size:1.35rem}
header p{margin:0;color:#c9d3dd;font-size:.9rem;overflow-wrap:anywhere}
header p.partial{color:#ffd08a;font-weight:600;margin-top:4px}
main{max-width:1200px;margin:0 auto;padding:14px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,520px),1fr));gap:14px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:0 0 14px;
  min-width:0}
.grid section{margin:0}
.grid{margin:0 0 14px}
tr.group td{background:#f0f3f7;font-weight:600;overflow-wrap:anywhere}
td small{color:var(--muted)}
tr.detail td{padding-top:0;overflow-wrap:anywhere}
tr:has(+ tr.detail) td{border-bottom:0}
h2{font-size:1.05rem;margin:0 0 8px}
h3{font-size:.95rem;margin:12px 0 4px;overflow-wrap:anywhere}
p.note{color:var(--muted);font-size:.85rem;margin:6px 0}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
.plot svg{display:block;width:100%;max-width:640px;height:auto}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));gap:8px 22px;margin:0 0 10px}
figure.chart{margin:0;min-width:0}
figcaption{font-weight:600;font-size:.92rem;margin:6px 0 2px;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{overflow-wrap:anywhere;min-width:8em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,250px),1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fbfbfc}
.card .big{font-size:1.6rem;font-weight:700}
.card .big.good{color:var(--good)} .card .big.bad{color:var(--bad)}
.card .what{overflow-wrap:anywhere}
.card ul{margin:2px 0 0;padding-left:18px;font-size:.88rem}
.tag{display:inline-block;border-radius:4px;padding:0 6px;font-size:.78rem;font-weight:600}
.tag.measured{background:#dff3e6;color:#0b5a2e} .tag.estimated{background:#fff0cc;color:#7a4b00}
.tag.mixed,.tag.unknown{background:#eee;color:#333}
.verdict-regression,.verdict-higher{color:var(--bad);font-weight:700}
.verdict-pass,.verdict-lower{color:var(--good);font-weight:700}
ol.sources{margin:6px 0;padding-left:22px;overflow-wrap:anywhere}
ul.warn{margin:4px 0;padding-left:20px} ul.warn li{margin:3px 0;overflow-wrap:anywhere}
@media (max-width:600px){body{font-size:14px} main{padding:8px} section{padding:10px} header{padding:12px}}
"""


def _tag(source: str) -> str:
    return f'<span class="tag {esc(source)}">{esc(source)}</span>'


def _group_title(report: Report, run: str, bench: str, phase: str) -> str:
    return cells.workload(bench, phase) + (f" \u00b7 {run}" if report.multi_run else "")


def _figure(caption: str, svg: str, entries: list[Entry] | None = None) -> str:
    """A chart under its caption; the caption carries the provenance badge of the figures drawn."""
    badge = f" {tag(_source(entries))}" if entries else ""
    return (f'<figure class="chart"><figcaption>{esc(caption)}{badge}</figcaption><div class="plot">{svg}</div>'
            "</figure>")


def _source(entries: list[Entry]) -> str:
    """``measured`` only when every figure was, ``estimated`` as soon as one was."""
    sources = {e.source for e in entries}
    return "measured" if sources == {"measured"} else "estimated" if "estimated" in sources else "unknown"


def _colors(report: Report) -> dict[str, str]:
    """One colour per method across every chart; the baseline is always grey."""
    out: dict[str, str] = {report.baseline: BASELINE_COLOR}
    for e in report.entries:
        if e.method not in out:
            out[e.method] = color(len(out) - 1)
    return out


def _per_item_ci(e: Entry) -> str:
    return units.interval(e.per_item.low, e.per_item.high, units.joules)


def _ratio_ci(e: Entry) -> str:
    r = e.ratio
    if e.is_baseline or r is None or r.low is None or r.high is None:
        return ""
    return f"[{r.low:.2f}, {r.high:.2f}]"


def _energy_section(report: Report, colors: dict[str, str]) -> tuple[str, str]:
    """The per-benchmark bar charts, and the table of every figure (shown further down the page)."""
    charts = []
    for (run, bench, phase), entries in report.groups():
        bars = [
            Bar(label=e.method, value=e.per_item.value, low=e.per_item.low, high=e.per_item.high,
                color=colors.get(e.method, BASELINE_COLOR),
                note="" if e.is_baseline or e.ratio is None else cells.entry_ratio(e, with_ci=False))
            for e in entries
        ]
        unit = entries[0].per_what
        svg = hbar_chart(bars, kind="energy", title=f"Energy per {unit}: {cells.workload(bench, phase)}",
                         fmt=units.joules, axis_label=f"J per {unit}; whiskers: 95% CI of the median")
        charts.append(_figure(_group_title(report, run, bench, phase), svg, entries))
    chart = f'<div class="charts">{"".join(charts)}</div>'
    rows = []
    for (run, bench, phase), entries in report.groups():
        rows.append(f'<tr class="group"><td colspan="7">{esc(_group_title(report, run, bench, phase))}</td></tr>')
        for e in entries:
            rows.append(
                f"<tr><td class=name>{esc(e.method)}{STAR if e.on_front else ''}</td>"
                f"<td class=num>{esc(cells.entry_per_item(e, with_ci=False))}<br>"
                f"<small>{esc(_per_item_ci(e))}</small></td>"
                f"<td class=num>{esc(cells.entry_ratio(e, with_ci=False))}<br><small>{esc(_ratio_ci(e))}</small></td>"
                f"<td>{esc(cells.entry_verdict(e))}</td><td>{esc(cells.entry_quality(e))}</td>"
                f"<td>{_tag(e.source)}</td><td class=num>{e.rounds}</td></tr>"
            )
    table = (
        '<div class="scroll"><table><thead><tr><th>method</th>'
        f"<th>energy per item<br>[95% CI]</th><th>vs {esc(report.baseline)}<br>[95% CI]</th><th>verdict</th>"
        "<th>quality</th><th>source</th><th>rounds</th></tr></thead><tbody>" + "".join(rows) +
        "</tbody></table></div>"
    )
    return (f"<section><h2>Energy per item</h2>{chart}</section>",
            f'<section><h2>All figures</h2>{table}<p class="note">\u2605 on the energy/quality Pareto front.</p>'
            + (f'<p class="note">{esc(note)}</p>' if (note := cells.borderline_note(report.entries)) else "")
            + "</section>")


def _pareto_section(report: Report, colors: dict[str, str]) -> str:
    parts = []
    for (run, bench, phase), entries in report.groups():
        rated = [e for e in entries if e.quality is not None]
        if len(rated) < 2:
            continue
        q = rated[0].quality
        points = [
            Point(label=e.method, x=e.per_item.value, y=e.quality.value,  # type: ignore[union-attr]
                  x_low=e.per_item.low, x_high=e.per_item.high, baseline=e.is_baseline,
                  on_front=e.on_front, color=colors.get(e.method, BASELINE_COLOR))
            for e in rated
        ]
        direction = "higher is better" if q.higher_is_better else "lower is better"  # type: ignore[union-attr]
        chart = scatter_pareto(points, title=f"Energy vs {q.metric}: {bench}",  # type: ignore[union-attr]
                               fmt_x=units.joules, x_label=f"energy per {rated[0].per_what} (J)",
                               y_label=f"{q.metric}, {direction}")  # type: ignore[union-attr]
        parts.append(_figure(_group_title(report, run, bench, phase), chart, rated))
    if not parts and report.kind == "pytest":
        return ""  # tests rarely record a quality; a section saying so for every session is noise
    if not parts:
        body = '<p class="note">No benchmark has a quality metric on two or more methods.</p>'
    else:
        body = '<div class="charts">' + "".join(parts) + "</div>" + (
            '<p class="note">Diamond: baseline. Green ring and dashed line: Pareto front (nothing else uses '
            "less energy at better quality). Horizontal whiskers: 95% CI of energy.</p>")
    return f"<section><h2>Energy vs quality</h2>{body}</section>"


def _domains_section(report: Report) -> str:
    keys: list[str] = []
    for e in report.entries:
        keys += [k for k in e.domains_per_item if k not in keys]
    dom_colors = {k: color(i) for i, k in enumerate(keys)}
    charts = []
    for (run, bench, phase), entries in report.groups():
        rows = [StackRow(label=e.method, parts=e.domains_per_item) for e in entries if e.domains_per_item]
        if not rows:
            continue
        unit = entries[0].per_what
        svg = stacked_hbar(rows, title=f"Energy per {unit} by device: {cells.workload(bench, phase)}", fmt=units.joules,
                           axis_label=f"J per {unit}, as recorded per domain", colors=dom_colors)
        charts.append(_figure(_group_title(report, run, bench, phase), svg, entries))
    if not charts:
        return ('<section><h2>Energy by device</h2><p class="note">No per-device figures in these runs.</p>'
                "</section>")
    return (f'<section><h2>Energy by device</h2><div class="charts">{"".join(charts)}</div>'
            '<p class="note">Domains as the samplers reported them (e.g. cpu:package, gpu:0): their shares over '
            "all rounds, scaled to the median energy per item."
            "</p></section>")


def _timeline_entry(report: Report) -> Entry | None:
    """The baseline trial with the most timeline points: short windows hold one point, which shows nothing."""
    with_tl = [e for e in report.entries if e.timeline]
    baselines = [e for e in with_tl if e.is_baseline] or with_tl
    return max(baselines, key=lambda e: len(e.timeline), default=None)


def _timeline_section(report: Report) -> str:
    e = _timeline_entry(report)
    if e is None:
        return ('<section><h2>Power over time</h2><p class="note">No power timeline was recorded in these runs '
                "(rounds[].timeline is absent), so there is nothing to plot.</p></section>")
    keys: list[str] = []
    for _, watts in e.timeline:
        keys += [k for k in watts if k not in keys]
    series = [Series(k, [(t, w.get(k, 0.0)) for t, w in e.timeline], color(i)) for i, k in enumerate(keys)]
    if len(keys) > 1:
        series.append(Series("total", [(t, sum(w.values())) for t, w in e.timeline], "#000000"))
    chart = line_chart(series, title=f"Power over time: {e.benchmark} / {e.method}", x_label="time in round (s)",
                       y_label="power", fmt_y=units.watts)
    what = f"{e.benchmark} ({e.phase}) / {e.method}, round {e.timeline_round}" + (
        f", run {e.run}" if report.multi_run else "")
    return (f'<section><h2>Power over time {tag(e.source)}</h2><p class="note">One typical trial (the median-energy '
            f"round): {esc(what)}.</p>"
            f'<div class="plot scroll">{chart}</div></section>')


def _regions_section(report: Report) -> str:
    if not report.regions:
        return ""
    bars = [Bar(label=r.name + (" (yours)" if r.is_user else ""), value=r.co2e_g,
                color=color(0) if r.is_user else "#8fa3b8") for r in report.regions]
    chart = hbar_chart(bars, kind="regions", title="CO2e of the same joules by grid region", fmt=units.grams,
                       axis_label="g CO2e")
    sources = list(dict.fromkeys(r.source for r in report.regions))
    rows = "".join(
        f"<tr><td class=name>{esc(r.name)}{' <b>(yours)</b>' if r.is_user else ''}</td><td>{esc(r.label)}</td>"
        f"<td class=num>{esc(units.grams(r.co2e_g))}</td><td class=num>{r.intensity_g_per_kwh:.0f}</td>"
        f"<td class=num>{esc(r.year or '')}</td><td class=num>[{sources.index(r.source) + 1}]</td></tr>"
        for r in report.regions
    )
    notes = "".join(f"<li>{esc(src)}</li>" for src in sources)
    return (
        f"<section><h2>CO2e by region {tag(_source(list(report.entries)))}</h2><p class=note>The same "
        f"{esc(units.joules(report.region_joules))} "
        f"({esc(report.region_note)}) on different grids.</p><div class=\"plot\">{chart}</div>"
        '<div class="scroll"><table><thead><tr><th>region</th><th>name</th><th>CO2e</th><th>g/kWh</th>'
        f"<th>year</th><th>source</th></tr></thead><tbody>{rows}</tbody></table></div>"
        f'<ol class="sources note">{notes}</ol></section>'
    )


def _sci_section(report: Report) -> str:
    """Software Carbon Intensity per functional unit, operational vs embodied, with its inputs and assumptions."""
    from energybench.render.sci import assumptions

    parts = []
    for sci in report.sci:
        rows = "".join(
            f"<tr><td class=name>{esc(r.benchmark)}</td><td>{esc(r.functional_unit)}</td>"
            f"<td class=num>{esc(units.si(r.energy_kwh * 1000, 'Wh'))}</td>"
            f"<td class=num>{esc(units.intensity(r.intensity_g_per_kwh))}</td>"
            f"<td class=num>{esc(units.grams(r.embodied_g) if r.embodied_g is not None else 'not given')}</td>"
            f"<td class=num>{esc(units.count(r.items))}</td>"
            f"<td class=num>{esc(units.grams(r.operational_per_item_g))}</td>"
            f"<td class=num>{esc(units.grams(r.embodied_per_item_g) if r.complete else 'n/a')}</td>"
            f"<td class=num><b>{esc(units.grams(r.sci_g))}</b>"
            f"{'' if r.complete else '<br><small>operational only</small>'}</td></tr>"
            for r in sci.results)
        notes = "".join(f"<li>{esc(a)}</li>" for a in assumptions(sci))
        title = f"<h3>{esc(sci.run)}</h3>" if report.multi_run else ""
        parts.append(
            f'{title}<div class="scroll"><table><thead><tr><th>benchmark</th><th>R</th><th>E</th>'
            "<th>I &times; PUE</th><th>M</th><th>items</th><th>operational<br>per item</th>"
            "<th>embodied<br>per item</th><th>SCI<br>per item</th>"
            f'</tr></thead><tbody>{rows}</tbody></table></div><ul class="warn note">{notes}</ul>')
    if not parts:
        return ""
    return (f"<section><h2>Software Carbon Intensity (SCI = (E \u00d7 I + M) / R) {tag(_source(list(report.entries)))}"
            "</h2>" + "".join(parts) +
            "</section>")


def _gates_section(report: Report) -> str:
    cmp = report.comparison
    if cmp is None or not cmp.rows:
        return ""
    rows = []
    for r in cmp.rows:
        verdict = r.verdict(cmp.alpha)
        detail = "; ".join(gate_message(g) for g in r.gates) or (
            f"median {units.joules(r.base_energy)} -> {units.joules(r.new_energy)} per round, "
            f"p{units.p_is(r.p, 3)}, n={r.n_base}/{r.n_new}")
        change, _, interval = change_with_ci(r).partition(" [")
        rows.append(
            f"<tr><td class=name>{esc(r.key)}</td>"
            f'<td class="verdict-{esc(verdict.lower().replace(" ", "-"))}">{esc(verdict)}</td>'
            f"<td class=num>{esc(change)}<br><small>{esc('[' + interval if interval else '')}</small></td></tr>"
            f'<tr class="detail"><td colspan="3"><small>{esc(detail)}</small></td></tr>'
        )
    title = "Gates" if cmp.gates else "Comparison"
    return (f"<section><h2>{title}: {esc(cmp.base_id)} \u2192 {esc(cmp.new_id)}</h2><div class=scroll><table><thead>"
            "<tr><th>benchmark</th><th>verdict</th><th>change in energy<br>[95% CI]</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div></section>")


def _trend_section(report: Report) -> str:
    """Each benchmark's energy per item over the runs (three or more), with the runs where its level changed."""
    if not report.trends:
        return ""
    charts, notes = [], []
    for i, t in enumerate(report.trends):
        series = [Series("median", [(float(k), p.median) for k, p in enumerate(t.points)], color(i))]
        low, high = min(p.median for p in t.points), max(p.median for p in t.points)
        series += [Series(f"change at {t.points[cp].run}", [(float(cp), low), (float(cp), high)], "#b3261e")
                   for cp in t.change_points]
        drawn = [e for e in report.entries if e.key == t.key]
        charts.append(_figure(t.key, line_chart(series, title=f"Trend: {t.key}", x_label="run (oldest first)",
                                                y_label="energy per item (median)", fmt_y=units.joules), drawn))
        for cp in t.change_points:
            notes.append(f"<li><b>{esc(t.key)}</b>: level changed by {esc(units.change(t.step(cp)))} at run "
                         f"{esc(t.points[cp].run)}</li>")
    found = f'<ul class="warn">{"".join(notes)}</ul>' if notes else '<p class="note">No change point: one level.</p>'
    return (f'<section><h2>Trend over {len(report.runs)} runs</h2><div class="charts">{"".join(charts)}</div>'
            f'{found}<p class="note">Change points: PELT on log run medians (BIC penalty); a run is a point.</p>'
            "</section>")


def _machine(run: Run) -> str:
    m = run.machine
    facts = [("CPU", f"{m.cpu_model or '?'} \u00d7 {m.cpu_count or '?'}"),
             ("memory", f"{m.memory_gb if m.memory_gb is not None else '?'} GB"), ("host", m.hostname or "?"),
             ("platform", m.platform or "?"), ("python", m.python or "?"),
             ("torch", f"{m.torch or '?'}, {m.torch_threads or '?'} threads")]
    for g in m.gpus:
        limit = g.get("power_limit_w")
        facts.append((f"GPU {g.get('index', '?')}", f"{g.get('name', '?')}, driver {g.get('driver', '?')}"
                      + (f", power limit {limit:g} W" if isinstance(limit, int | float) else "")
                      + (", MIG slice" if g.get("mig") else "")))
    c = run.commit
    if c:
        facts.append(("commit", f"{c.get('id', '?')} on {c.get('branch', '?')}" + (" (dirty)" if c.get("dirty")
                                                                                  else "")))
    settings = run.environment.settings.to_dict() if run.environment.settings is not None else {}
    if settings:
        facts.append(("settings", ", ".join(f"{k}={v}" for k, v in settings.items())))
    if run.idle:
        facts.append(("idle power", f"{units.watts(run.idle.power_w)} ({run.idle.source})"))
    if run.carbon:
        cb = run.carbon
        facts.append(("carbon", f"{cb.region} {units.intensity(cb.intensity_g_per_kwh)} ({cb.factor_kind}), "
                      f"PUE {cb.pue:g}, {cb.source}"))
    rows = "".join(f"<tr><th>{esc(k)}</th><td class=name>{esc(v)}</td></tr>" for k, v in facts)
    samplers = "".join(
        f"<tr><td class=name>{esc(s.get('name', '?'))}</td><td>{_tag(str(s.get('source', 'unknown')))}</td>"
        f"<td class=name>{esc(', '.join(map(str, s.get('domains') or [])))}</td>"
        f"<td class=name>{esc(s.get('method', ''))}</td></tr>"
        for s in m.samplers
    ) or '<tr><td colspan="4">no sampler recorded</td></tr>'
    return (f"<h3>{esc(run.label)} \u00b7 {esc(run.created)}</h3><div class=scroll><table>{rows}</table></div>"
            "<div class=scroll><table><thead><tr><th>sampler</th><th>provenance</th><th>domains</th><th>method</th>"
            f"</tr></thead><tbody>{samplers}</tbody></table></div>")


def _partial_lines(report: Report) -> str:
    """A run cut short says so under the title: its figures are of fewer trials than its settings planned."""
    return "".join(f'<p class="partial" data-partial="{esc(r.label)}">run {esc(r.label)}: {esc(note)}</p>'
                   for r in report.runs if (note := stopped_note(r)) is not None)


def _warnings_section(report: Report) -> str:
    if not report.notices:
        return '<section><h2>Warnings</h2><p class="note">None: every benchmark was stable.</p></section>'
    items = "".join(f"<li><b>{esc(n.where)}</b>: {esc(n.text)}</li>" for n in report.notices)
    return f'<section><h2>Warnings ({len(report.notices)})</h2><ul class="warn">{items}</ul></section>'


@printable_output
def render_html(report: Report) -> str:
    """The whole page as one string; write it with any encoding-aware writer as UTF-8."""
    colors = _colors(report)
    runs = ", ".join(r.label for r in report.runs)
    created = ", ".join(r.created for r in report.runs if r.created)
    energy_charts, figures_table = _energy_section(report, colors)
    headline, gates, domains = html_section(report), _gates_section(report), _domains_section(report)
    if report.kind == "pytest":  # sessions of a test suite: a comparison per test, not a compression table
        from energybench.render import report_pytest as sessions

        headline, gates, figures_table = sessions.html_section(report), "", ""
        energy_charts, domains = sessions.html_charts(report), sessions.html_domains(report)
    body = "".join([
        headline,
        gates,
        _trend_section(report),
        energy_charts,
        _pareto_section(report, colors),
        domains,
        hardware_section(report.hardware, report.multi_run),
        layers_section(report.layers, report.multi_run),
        '<div class="grid">', _timeline_section(report), _regions_section(report), "</div>",
        _sci_section(report),
        figures_table,
        "<section><h2>Machine and samplers</h2>" + "".join(_machine(r) for r in report.runs) + "</section>",
        _warnings_section(report),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>energybench report: {esc(runs)}</title><style>{CSS}{LAYERS_CSS}</style></head><body>"
        f"<header><h1>energybench report</h1><p>{esc(runs)}{DOT + esc(created) if created else ''}</p>"
        f"{_partial_lines(report)}</header><main>{body}</main></body></html>\n"
    )
