"""From the user's carbon options to one ``IntensityProvider``: the one place that decides between a named
source (a plugin), a time series, a fixed factor and a region's annual average.

Above both ``carbon.providers`` (the kinds of provider) and ``carbon.sources`` (the plugins, which build
providers), so neither imports the other's caller.
"""

from __future__ import annotations

import os

from energybench.carbon.providers import (
    DEFAULT_SOURCE,
    FixedIntensity,
    IntensityProvider,
    TimeSeriesIntensity,
    parse_factor_kind,
    parse_intensity,
    parse_pue,
)
from energybench.carbon.regions import lookup_region
from energybench.carbon.sources import get_source
from energybench.carbon.timeseries import load_intensity_csv
from energybench.errors import ConfigError

__all__ = ["resolve_provider"]


def resolve_provider(
    region: str | None = None,
    intensity: float | str | None = None,
    intensity_csv: str | os.PathLike[str] | None = None,
    pue: float | str = 1.0,
    intensity_kind: str | None = None,
    intensity_provider: str | None = None,
    intensity_api_url: str | None = None,
) -> IntensityProvider | None:
    """The provider for these options, or ``None`` when none is given (then no CO2e is reported).

    ``intensity_kind`` declares what a user's factor or CSV is (``average``, the default, or ``marginal``);
    ``intensity_provider`` names an intensity-source plugin (``codecarbon``, the offline default,
    ``electricitymaps``, ``watttime`` or a third party's; ``energybench.carbon.sources``) that prices
    ``region`` itself. Raises ``UnknownRegionError``, ``ConfigError`` or ``IntensityDataError`` with the fix,
    before anything is measured, so a typo never costs a run.
    """
    pue_value = parse_pue(pue)
    kind = parse_factor_kind(intensity_kind)
    region = region.strip() if isinstance(region, str) and region.strip() else None
    given_intensity = intensity is not None and not (isinstance(intensity, str) and not intensity.strip())
    if given_intensity and intensity_csv is not None:
        raise ConfigError("both --intensity and --intensity-csv were given: pass one (a fixed factor or a time series)")
    source = (intensity_provider or "").strip().lower() or None
    if source is not None and source != DEFAULT_SOURCE:
        if given_intensity or intensity_csv is not None:
            raise ConfigError(f"--intensity-provider {source} fetches its own factors: drop --intensity and "
                              "--intensity-csv, or drop --intensity-provider to use yours")
        return get_source(source).create(region, pue=pue_value, factor_kind=kind, api_url=intensity_api_url)
    if intensity_csv is not None:
        return TimeSeriesIntensity(load_intensity_csv(intensity_csv), region=region, pue=pue_value,
                                   factor_kind=kind or "average")
    if given_intensity:
        assert intensity is not None
        return FixedIntensity(
            parse_intensity(intensity),
            region=region or "custom",
            source="user factor (--intensity)",
            method="fixed",
            pue=pue_value,
            factor_kind=kind or "average",
        )
    if region is not None:
        if kind == "marginal":
            raise ConfigError("codecarbon's region factors are annual averages, not marginal: give a marginal "
                              "series with --intensity-csv, a factor with --intensity, or --intensity-provider "
                              "watttime")
        r = lookup_region(region)
        return FixedIntensity(
            r.intensity_g_per_kwh, region=r.name, source=r.source, year=r.year, method="region", pue=pue_value
        )
    if kind is not None:
        raise ConfigError("--intensity-kind says what a factor is, but no factor was given: add --intensity, "
                          "--intensity-csv or --region")
    return None
