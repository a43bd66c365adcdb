"""The table ``energybench regions`` prints: every grid region with its factor, year and source."""

from __future__ import annotations

from energybench.carbon.regions import RegionFactor
from energybench.render.printable import printable_output
from energybench.render.tables import Column, fit_table, terminal_width, wrap

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
    cols = [Column((h,), right=h == "gCO2e/kWh", shrink=h == "PLACE") for h in HEADER]
    width = terminal_width()
    out = fit_table(cols, [[(c,) for c in row] for row in rows], width).lines + [""]
    out += [part for i, s in enumerate(sources, start=1) for part in wrap(f"[{i}] {s}", width)]
    n = len(regions)
    footer = f"{n} region{'s' if n != 1 else ''}; use a NAME or ALIAS with --region (any case)."
    if any(r.kind == "cn-province" for r in regions):
        footer += " China's factors are CO2 only."
    out += wrap(footer, width)
    return "\n".join(out) + "\n"
