"""The table ``energybench regions`` prints: every grid region with its factor, year and source."""

from __future__ import annotations

from energybench.carbon.regions import RegionFactor
from energybench.render.printable import printable_output
from energybench.render.tables import text_table

HEADER = ["NAME", "ALIAS", "KIND", "gCO2e/kWh", "YEAR", "PLACE", "SOURCE"]


@printable_output
def format_table(regions: list[RegionFactor]) -> str:
    """A fixed-width table; long source strings become numbered footnotes so rows stay one line."""
    sources: list[str] = []
    rows = []
    for r in regions:
        if r.source not in sources:
            sources.append(r.source)
        rows.append([r.name, ", ".join(r.aliases), r.kind, f"{r.intensity_g_per_kwh:.1f}",
                     str(r.year) if r.year is not None else "-", r.label, f"[{sources.index(r.source) + 1}]"])
    out = text_table(HEADER, rows, right={3}) + [""]
    out += [f"[{i}] {s}" for i, s in enumerate(sources, start=1)]
    n = len(regions)
    footer = f"{n} region{'s' if n != 1 else ''}; use a NAME or ALIAS with --region (any case)."
    if any(r.kind == "cn-province" for r in regions):
        footer += " China's factors are CO2 only."
    out.append(footer)
    return "\n".join(out) + "\n"
