"""The plain-text report printed by ``energybench report``: one aligned table per benchmark and phase."""

from __future__ import annotations

from energybench.render import cells, units
from energybench.render.comparison import change_with_ci, gate_message
from energybench.render.printable import printable_output
from energybench.render.tables import text_table
from energybench.report.model import Report


@printable_output
def render_terminal(report: Report) -> str:
    out: list[str] = []
    for run in report.runs:
        m = run.machine
        gpus = ", ".join(str(g.get("name", "?")) for g in m.gpus) or "no GPU"
        samplers = ", ".join(f"{s.get('name', '?')} ({s.get('source', '?')})" for s in m.samplers) or "none"
        out.append(f"run {run.label}  {run.created}  {m.cpu_model or '?'}, {gpus}; samplers: {samplers}")
    for (run_id, bench, phase), entries in report.groups():
        title = f"{bench} ({phase})" + (f"  [{run_id}]" if report.multi_run else "")
        out += ["", title]
        rows = [
            [e.method + (" *" if e.on_front else ""), cells.entry_per_item(e), cells.entry_ratio(e),
             cells.entry_verdict(e), cells.entry_quality(e), e.source, str(e.rounds)]
            for e in entries
        ]
        headers = ["method", "energy per item [95% CI]", f"vs {report.baseline}", "verdict", "quality",
                   "source", "rounds"]
        out += ["  " + line for line in text_table(headers, rows, right=(1, 2, 6))]
    if any(e.on_front for e in report.entries):
        out += ["", "* on the energy/quality Pareto front"]
    if report.regions:
        out += ["", f"CO2e of {units.joules(report.region_joules)} ({report.region_note}):"]
        rows = [[r.name + (" (yours)" if r.is_user else ""), units.grams(r.co2e_g),
                 units.intensity(r.intensity_g_per_kwh), str(r.year or ""), r.source] for r in report.regions]
        out += ["  " + line for line in text_table(["region", "CO2e", "factor", "year", "source"], rows,
                                                   right=(1, 2))]
    cmp = report.comparison
    if cmp is not None and cmp.rows:
        out += ["", "gates:" if cmp.gates else "comparison:"]
        rows = [[r.key, r.verdict(cmp.alpha), change_with_ci(r)] for r in cmp.rows]
        out += ["  " + line for line in text_table(["benchmark", "verdict", "change in energy [95% CI]"], rows)]
        out += [f"  {gate_message(g)}" for r in cmp.rows for g in r.gates]
    if report.notices:
        out += ["", f"warnings ({len(report.notices)}):"]
        out += [f"  ! {n.where}: {n.text}" for n in report.notices]
    return "\n".join(out) + "\n"
