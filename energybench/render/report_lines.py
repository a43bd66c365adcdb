"""Blocks shared by every plain-text report (of compression runs and of pytest sessions): the machine, the
CO2e on several grids, the warnings, and the wrapping they all use."""

from __future__ import annotations

from energybench import units
from energybench.render import tables
from energybench.render.tables import Column, Row, fit_table
from energybench.report.model import Report, stopped_note

__all__ = ["machine_lines", "notice_lines", "regions_lines", "wrap"]


def wrap(line: str, width: int, indent: str = "", more: str = "    ") -> list[str]:
    """``line`` indented by ``indent`` and wrapped to ``width``, later lines ``more`` further in: the reports'
    spelling of ``tables.wrap`` (names are never broken)."""
    return tables.wrap(indent + line.lstrip(" "), width, hang=len(more))


def machine_lines(report: Report, width: int) -> list[str]:
    out = []
    for run in report.runs:
        m = run.machine
        gpus = ", ".join(str(g.get("name", "?")) for g in m.gpus) or "no GPU"
        samplers = ", ".join(f"{s.get('name', '?')} ({s.get('source', '?')})" for s in m.samplers) or "none"
        out += wrap(f"run {run.label}  {run.created}  {m.cpu_model or '?'}, {gpus}; samplers: {samplers}", width)
        if (partial := stopped_note(run)) is not None:  # first thing a reader sees, not only among the warnings
            out += wrap(f"! {partial}", width, "  ")
    return out


def regions_lines(report: Report, width: int) -> list[str]:
    """CO2e of the report's joules on several grids; each factor's source as a numbered footnote."""
    if not report.regions:
        return []
    sources = list(dict.fromkeys(r.source for r in report.regions))
    rows: list[Row] = [[(r.name + (" (yours)" if r.is_user else ""),), (units.grams(r.co2e_g),),
                        (units.intensity(r.intensity_g_per_kwh),), (str(r.year or ""),),
                        (f"[{sources.index(r.source) + 1}]",)] for r in report.regions]
    cols = (Column(("region",)), Column(("CO2e",), right=True), Column(("factor",), right=True), Column(("year",)),
            Column(("source",)))
    out = ["", *wrap(f"CO2e of {units.joules(report.region_joules)} ({report.region_note}):", width)]
    out += fit_table(cols, rows, width, indent="  ").lines
    for i, s in enumerate(sources):
        out += wrap(f"[{i + 1}] {s}", width, "  ")
    return out


def notice_lines(report: Report, width: int) -> list[str]:
    if not report.notices:
        return []
    out = ["", f"warnings ({len(report.notices)}):"]
    return out + [line for n in report.notices for line in wrap(f"! {n.where}: {n.text}", width, "  ")]
