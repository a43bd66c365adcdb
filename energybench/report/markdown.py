"""A compact Markdown report for a pull-request comment or ``$GITHUB_STEP_SUMMARY``.

``md_escape`` and ``markdown_table`` are public so ``energybench compare --markdown`` renders its tables the
same way: names come from result files, and a ``|`` or ``<script>`` in a benchmark name must neither break
the table nor become markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from energybench.report import formatting as f
from energybench.report.model import Report

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_escape(text: object) -> str:
    """Text safe inside a Markdown table cell: HTML entities, Markdown specials backslashed, one line."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A GitHub-flavoured table; ``align`` is one letter per column (``l``/``r``/``c``), left by default.

    Cells are escaped here, so callers pass raw names and figures.
    """
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    spec = [marks.get(align[i] if i < len(align) else "l", "---") for i in range(len(headers))]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "| " + " | ".join(spec) + " |"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: Report) -> str:
    """Headline table (energy per item, ratio, quality, provenance), CO2e by region, gates, warnings."""
    out = [f"### energybench report: {md_escape(', '.join(r.run_id for r in report.runs))}", ""]
    rows = []
    for (run, bench, phase), entries in report.groups():
        for e in entries:
            star = " \u2605" if e.on_front else ""
            rows.append([
                *([run] if report.multi_run else []), bench, phase, e.subject + star,
                f.per_item(e), f.ratio(e), f.verdict(e), f.quality(e), e.source,
            ])
    headers = [*(["run"] if report.multi_run else []), "benchmark", "phase", "subject",
               "energy per item [95% CI]", f"vs {report.baseline}", "verdict", "quality", "source"]
    align = ("l" if report.multi_run else "") + "lllrrlll"
    out += [markdown_table(headers, rows, align), ""]
    if any(e.on_front for e in report.entries):
        out += ["\u2605 on the energy/quality Pareto front (no other subject uses less energy at better quality).",
                ""]
    if report.regions:
        parts = [f"{md_escape(r.name)} {f.format_grams(r.co2e_g)} ({r.intensity_g_per_kwh:.0f} g/kWh)"
                 for r in report.regions]
        out += [f"**CO2e of {f.format_joules(report.region_joules)}** "
                f"({md_escape(report.region_note)}): " + ", ".join(parts), ""]
    if report.gates:
        out += ["**Gates**", "", markdown_table(["benchmark", "verdict", "change [95% CI]", "detail"],
                                                 [[g.benchmark, g.verdict, g.change, g.detail]
                                                  for g in report.gates], "llrl"), ""]
    if report.notices:
        out += [f"<details><summary>{len(report.notices)} warning(s)</summary>", ""]
        out += [f"- {md_escape(n.where)}: {md_escape(n.text)}" for n in report.notices]
        out += ["", "</details>", ""]
    return "\n".join(out)
