"""One-line renderings shared by the CLI and reports, so CO2e is always stated with its provenance."""

from __future__ import annotations

from energybench.measurement import CarbonInfo, format_grams


def carbon_line(carbon: CarbonInfo | None, reason: str | None = None) -> str:
    """``0.23 g (FRA 56 g/kWh, 2023, codecarbon ..., PUE 1.0)`` or why there is no figure."""
    if carbon is None:
        return f"n/a ({reason or 'no region given: pass --region, e.g. --region FRA; list: energybench regions'})"
    year = f", {carbon.year}" if carbon.year else ""
    return (
        f"{format_grams(carbon.co2e_g)} ({carbon.region} {carbon.intensity_g_per_kwh:.4g} gCO2e/kWh{year}, "
        f"{carbon.source}, PUE {carbon.pue:g})"
    )
