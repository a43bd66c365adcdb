"""Intensity providers: turn a window's joules into grams of CO2e, and say where the factor came from.

Three kinds, chosen by ``resolve_provider``:

* ``region``: a fixed factor from codecarbon's data for a named place (``FRA``, ``USA/california``...);
* ``fixed``: a factor the user gives (``--intensity 250``, gCO2e/kWh);
* ``timeseries``: a CSV of (timestamp, gCO2e/kWh) applied interval by interval over the window.

Precedence, when several are given: a factor or a CSV the user supplies is more specific than an annual
average, so it wins, and the region name (if any) is kept only as the label of the result; in that case the
name is not looked up, so a place codecarbon lacks (``aws:us-east-1``) can still be labelled. A fixed factor
and a CSV together are ambiguous and rejected. With none of them there is no provider (``None``): the meter
reports no CO2e and says to pass ``--region``, rather than silently using a world average.

Every provider multiplies by the PUE (power usage effectiveness, default 1.0, always stated in the result):
``co2e_g = joules / 3.6e6 * factor * pue``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

from energybench.carbon.timeseries import IntensitySeries, Segment
from energybench.errors import ConfigError
from energybench.measurement import JOULES_PER_KWH, CarbonInfo

FACTOR_KINDS = ("average", "marginal")
DEFAULT_SOURCE = "codecarbon"  # the offline default: codecarbon's shipped annual averages


class IntensityProvider(ABC):
    """Prices a window's energy. ``segments`` are (start unix s, end unix s, joules) covering the window."""

    region: str
    source: str
    year: int | None
    method: str
    pue: float
    factor_kind: str = "average"  # "average" or "marginal" (see CarbonInfo.factor_kind)

    @property
    @abstractmethod
    def nominal_intensity_g_per_kwh(self) -> float:
        """The factor to show before any energy is measured (a series shows its mean)."""

    @abstractmethod
    def carbon(self, segments: Sequence[Segment]) -> CarbonInfo:
        """Grams of CO2e for ``segments`` with the effective (energy-weighted) factor, PUE and provenance."""

    def check_covers(self, start: float, end: float) -> None:
        """Raise ``IntensityDataError`` if this provider cannot price ``[start, end]`` (unix s).

        Always fine for a fixed factor; a time series must cover the span. A meter calls it with the
        current time before running anything, so a stale CSV fails before a long run, not after it.
        """
        return None  # a single factor prices any time

    def describe(self) -> dict[str, object]:
        """The carbon settings for a results file header (``docs/results-schema.md``)."""
        return {
            "region": self.region,
            "intensity_g_per_kwh": self.nominal_intensity_g_per_kwh,
            "year": self.year,
            "source": self.source,
            "pue": self.pue,
            "method": self.method,
            "factor_kind": self.factor_kind,
        }


class FixedIntensity(IntensityProvider):
    """One factor for the whole window: a region's annual average or a user's number."""

    def __init__(
        self,
        factor_g_per_kwh: float,
        *,
        region: str,
        source: str,
        year: int | None = None,
        method: str = "fixed",
        pue: float = 1.0,
        factor_kind: str = "average",
    ) -> None:
        self.factor = factor_g_per_kwh
        self.factor_kind = factor_kind
        self.region = region
        self.source = source
        self.year = year
        self.method = method
        self.pue = pue

    @property
    def nominal_intensity_g_per_kwh(self) -> float:
        return self.factor

    def carbon(self, segments: Sequence[Segment]) -> CarbonInfo:
        joules = math.fsum(j for _, _, j in segments)
        return CarbonInfo(
            co2e_g=joules / JOULES_PER_KWH * self.factor * self.pue,
            region=self.region,
            intensity_g_per_kwh=self.factor,
            pue=self.pue,
            source=self.source,
            year=self.year,
            method=self.method,
            factor_kind=self.factor_kind,
        )

    def __repr__(self) -> str:
        return (
            f"FixedIntensity({self.factor:g} g/kWh, region={self.region!r}, method={self.method!r}, pue={self.pue:g})"
        )


class TimeSeriesIntensity(IntensityProvider):
    """A step-wise series: each segment's joules are split over the steps it overlaps."""

    method = "timeseries"

    def __init__(self, series: IntensitySeries, *, region: str | None = None, pue: float = 1.0,
                 factor_kind: str = "average") -> None:
        self.series = series
        self.factor_kind = factor_kind
        self.region = region or "custom"
        self.source = f"CSV {series.path} ({len(series.times)} rows, step-wise)"
        self.year = None
        self.pue = pue

    @property
    def nominal_intensity_g_per_kwh(self) -> float:
        return self.series.time_weighted_mean(self.series.start, self.series.end)

    def check_covers(self, start: float, end: float) -> None:
        self.series.check_covers(start, end)

    def carbon(self, segments: Sequence[Segment]) -> CarbonInfo:
        if segments:
            start = min(s for s, _, _ in segments)
            end = max(e for _, e, _ in segments)
            self.series.check_covers(start, end)
            grams, kwh = self.series.grams_per_pue(segments)
            effective = grams / kwh if kwh > 0 else self.series.time_weighted_mean(start, end)
        else:
            grams, effective = 0.0, self.nominal_intensity_g_per_kwh
        return CarbonInfo(
            co2e_g=grams * self.pue,
            region=self.region,
            intensity_g_per_kwh=effective,
            pue=self.pue,
            source=self.source,
            year=None,
            method=self.method,
            factor_kind=self.factor_kind,
        )

    def __repr__(self) -> str:
        return f"TimeSeriesIntensity({self.series.path!r}, region={self.region!r}, pue={self.pue:g})"


def _parse_positive(text: float | str, what: str, fix: str, *, allow_zero: bool = False) -> float:
    if isinstance(text, bool):
        raise ConfigError(f"{what} {text!r} is not a number: {fix}")
    if isinstance(text, int | float):
        try:
            value = float(text)
        except OverflowError:  # an integer beyond any float (from a TOML config)
            raise ConfigError(f"{what} {str(text)[:20]}... is too large: {fix}") from None
    else:
        s = str(text).strip()
        try:
            value = float(s)
        except ValueError:
            raise ConfigError(f"{what} {text!r} is not a number: {fix}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{what} {text!r} must be a finite number {'>= 0' if allow_zero else '> 0'}: {fix}")
    return value or 0.0  # -0.0 reads as 0


def parse_intensity(text: float | str) -> float:
    """A user's grid factor in gCO2e/kWh (``"250"``, optionally ``"250 g/kWh"``); ``ConfigError`` if bad.

    0 is a factor like any other (a contract for zero-carbon power, like a CSV row of 0): it prices every
    joule at 0 g and still says which factor was used, unlike giving no factor at all."""
    fix = "give gCO2e per kWh (0 or more), e.g. --intensity 250"
    if isinstance(text, str):
        stripped = text.strip()
        for unit in ("gco2e/kwh", "gco2/kwh", "g/kwh"):
            if stripped.lower().endswith(unit):
                stripped = stripped[: -len(unit)].strip()
                break
        value = _parse_positive(stripped or text, "intensity", fix, allow_zero=True)
    else:
        value = _parse_positive(text, "intensity", fix, allow_zero=True)
    return value


def parse_pue(text: float | str) -> float:
    """A power usage effectiveness (facility / IT energy), >= 1.0; ``ConfigError`` if bad."""
    fix = "give the data centre's power usage effectiveness, >= 1.0 (e.g. --pue 1.2; 1.0 = none)"
    value = _parse_positive(text, "PUE", fix)
    if value < 1.0:
        raise ConfigError(f"PUE {text!r} is below 1.0, which is impossible: {fix}")
    return value


def parse_factor_kind(text: str | None) -> str | None:
    """``average`` or ``marginal`` (``None`` stays ``None``: the source's own kind); ``ConfigError`` if bad."""
    if text is None or not str(text).strip():
        return None
    kind = str(text).strip().lower()
    if kind not in FACTOR_KINDS:
        raise ConfigError(f"intensity kind {text!r} is neither 'average' nor 'marginal': pass --intensity-kind "
                          "marginal for a marginal series (e.g. WattTime MOER), else leave it out")
    return kind
