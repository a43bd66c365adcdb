"""Grid carbon intensity: which factor applies to a window's joules, and where it comes from.

``resolve_provider`` turns ``--region`` / ``--intensity`` / ``--intensity-csv`` / ``--pue`` into an
``IntensityProvider`` whose ``carbon(segments)`` gives a ``CarbonInfo``. Region factors come from the data
files that ship with ``codecarbon`` (see ``energybench.carbon.regions`` for the naming scheme). Only the
standard library is imported here: no pandas, no codecarbon import.
"""

from __future__ import annotations

from energybench.carbon.providers import (
    FixedIntensity,
    IntensityProvider,
    TimeSeriesIntensity,
    parse_intensity,
    parse_pue,
)
from energybench.carbon.regions import RegionFactor, closest_names, list_regions, lookup_region
from energybench.carbon.resolve import resolve_provider
from energybench.carbon.timeseries import IntensitySeries, load_intensity_csv, parse_intensity_series
from energybench.errors import IntensityDataError, UnknownRegionError

__all__ = [
    "FixedIntensity",
    "IntensityDataError",
    "IntensityProvider",
    "IntensitySeries",
    "RegionFactor",
    "TimeSeriesIntensity",
    "UnknownRegionError",
    "closest_names",
    "list_regions",
    "load_intensity_csv",
    "lookup_region",
    "parse_intensity",
    "parse_intensity_series",
    "parse_pue",
    "resolve_provider",
]
