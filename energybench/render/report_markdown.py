"""A compact Markdown report for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

from energybench import units
from energybench.render import cells
from energybench.render.comparison import change_with_ci, gate_message
from energybench.render.headlines import text_lines
from energybench.render.printable import printable_output
from energybench.render.tables import markdown_table, md_escape
from energybench.report.model import Report


@printable_output
def render_markdown(report: Report) -> str:
    """Headline table (energy per item, ratio, quality, provenance), CO2e by region, gates, warnings."""
    out = [f"### energybench report: {md_escape(', '.join(r.label for r in report.runs))}", ""]
    if report.kind == "pytest":
        from energybench.render.report_pytest import render_pytest_markdown

        return "\n".join(out + render_pytest_markdown(report) + _tail(report))
    heads = text_lines(report)
    if heads:
        out += [f"- {md_escape(h)}" for h in heads] + [""]
    rows = []
    for (run, bench, phase), entries in report.groups():
        for e in entries:
            star = " \u2605" if e.on_front else ""
            rows.append([
                *([run] if report.multi_run else []), bench, phase, e.method + star,
                cells.entry_per_item(e), cells.entry_ratio(e), cells.entry_verdict(e), cells.entry_quality(e),
                e.source,
            ])
    headers = [*(["run"] if report.multi_run else []), "benchmark", "phase", "method",
               "energy per item [95% CI]", f"vs {report.baseline}", "verdict", "quality", "source"]
    align = ("l" if report.multi_run else "") + "lllrrlll"
    out += [markdown_table(headers, rows, align), ""]
    if any(e.on_front for e in report.entries):
        out += ["\u2605 on the energy/quality Pareto front (no other method uses less energy at better quality).",
                ""]
    if note := cells.borderline_note(report.entries):
        out += [md_escape(note), ""]
    return "\n".join(out + _tail(report))


def _tail(report: Report) -> list[str]:
    """CO2e by region, the comparison's gates (suite runs) and the warnings."""
    out: list[str] = []
    if report.regions:
        parts = [f"{md_escape(r.name)} {units.grams(r.co2e_g)} ({units.intensity(r.intensity_g_per_kwh)})"
                 for r in report.regions]
        out += [f"**CO2e of {units.joules(report.region_joules)}** "
                f"({md_escape(report.region_note)}): " + ", ".join(parts), ""]
    cmp = report.comparison
    if cmp is not None and cmp.rows and report.kind != "pytest":
        rows = [[r.key, r.verdict(cmp.alpha), change_with_ci(r),
                 "; ".join(gate_message(g) for g in r.gates) or f"p{units.p_is(r.p, 3)}, n={r.n_base}/{r.n_new}"]
                for r in cmp.rows]
        out += ["**Gates**" if cmp.gates else "**Comparison**", "",
                markdown_table(["benchmark", "verdict", "change [95% CI]", "detail"], rows, "llrl"), ""]
    if report.notices:
        out += [f"<details><summary>{len(report.notices)} warning(s)</summary>", ""]
        out += [f"- {md_escape(n.where)}: {md_escape(n.text)}" for n in report.notices]
        out += ["", "</details>", ""]
    return out
