"""The plain-text report printed by ``energybench report``: one aligned table per benchmark and phase."""

from __future__ import annotations

from energybench.report import formatting as f
from energybench.report.model import Report
from energybench.tables import text_table


def render_terminal(report: Report) -> str:
    out: list[str] = []
    for run in report.runs:
        m = run.machine
        gpus = ", ".join(str(g.get("name", "?")) for g in m.get("gpus") or []) or "no GPU"
        samplers = ", ".join(f"{s.get('name', '?')} ({s.get('source', '?')})" for s in run.samplers) or "none"
        out.append(f"run {run.run_id}  {run.created}  {m.get('cpu_model', '?')}, {gpus}; samplers: {samplers}")
    for (run, bench, phase), entries in report.groups():
        title = f"{bench} ({phase})" + (f"  [{run}]" if report.multi_run else "")
        out += ["", title]
        rows = [
            [e.subject + (" *" if e.on_front else ""), f.per_item(e), f.ratio(e), f.verdict(e), f.quality(e),
             e.source, str(e.rounds)]
            for e in entries
        ]
        headers = ["subject", "energy per item [95% CI]", f"vs {report.baseline}", "verdict", "quality",
                   "source", "rounds"]
        out += ["  " + line for line in text_table(headers, rows, right=(1, 2, 6))]
    if any(e.on_front for e in report.entries):
        out += ["", "* on the energy/quality Pareto front"]
    if report.regions:
        out += ["", f"CO2e of {f.format_joules(report.region_joules)} ({report.region_note}):"]
        rows = [[r.name + (" (yours)" if r.is_user else ""), f.format_grams(r.co2e_g),
                 f"{r.intensity_g_per_kwh:.0f} g/kWh", str(r.year or ""), r.source] for r in report.regions]
        out += ["  " + line for line in text_table(["region", "CO2e", "factor", "year", "source"], rows,
                                                   right=(1, 2))]
    if report.gates:
        out += ["", "gates:"]
        rows = [[g.benchmark, g.verdict, g.change] for g in report.gates]
        out += ["  " + line for line in text_table(["benchmark", "verdict", "change in energy [95% CI]"], rows)]
        out += [f"  {g.detail}" for g in report.gates if g.detail.startswith(("PASS", "FAIL"))]
    if report.notices:
        out += ["", f"warnings ({len(report.notices)}):"]
        out += [f"  ! {n.where}: {n.text}" for n in report.notices]
    return "\n".join(out) + "\n"
