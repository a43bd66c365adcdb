"""CO2e stated with its provenance, the same way in every output: grams, region, factor, year, source, PUE."""

from __future__ import annotations

from typing import Any

from energybench import units

NO_REGION = "no region given: pass --region, e.g. --region FRA; list: energybench regions"


def basis(carbon: Any, intensity: float | None = None) -> str:
    """``FRA 56 gCO2e/kWh, 2023, codecarbon ..., PUE 1``: where a factor came from (``CarbonInfo`` of a
    measurement or ``CarbonBasis`` of a run; ``intensity`` overrides the stated factor, e.g. the effective one)."""
    year = f", {carbon.year}" if carbon.year else ""
    factor = carbon.intensity_g_per_kwh if intensity is None else intensity
    kind = getattr(carbon, "factor_kind", "average")
    return f"{carbon.region} {units.intensity(factor)} {kind}{year}, {carbon.source}, PUE {carbon.pue:g}"


def carbon_line(carbon: Any, reason: str | None = None) -> str:
    """``230 mg (FRA 56 gCO2e/kWh, 2023, codecarbon ..., PUE 1)`` or why there is no figure."""
    if carbon is None:
        return f"n/a ({reason or NO_REGION})"
    return f"{units.grams(carbon.co2e_g)} ({basis(carbon)})"
