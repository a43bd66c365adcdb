"""A provider backed by a live API: fetch a short series around the work, then price it step by step.

Why a series and not "the latest value": a window's joules should be priced at the intensity of when they
were drawn, as a CSV series does. The first window fetches the recent past once (one request covers a whole
quick run); a window past the fetched span fetches again. A fetch that fails or does not cover the window is
an ``IntensityDataError``: the meter keeps the joules and says why there is no CO2e, never a stale guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from energybench.carbon.providers import IntensityProvider
from energybench.carbon.timeseries import IntensitySeries, Segment, format_time
from energybench.errors import IntensityDataError
from energybench.measurement import CarbonInfo

#: fetch(start unix s, end unix s) -> [(unix s, gCO2e/kWh), ...] sorted by time, and the step in seconds
Fetch = Callable[[float, float], tuple[list[tuple[float, float]], float]]


class RemoteSeriesIntensity(IntensityProvider):
    """Prices windows with a series fetched from an API, refetched when a window runs past it."""

    def __init__(self, fetch: Fetch, *, region: str, source: str, method: str, pue: float, factor_kind: str,
                 lookback_s: float = 3 * 3600.0) -> None:
        self._fetch = fetch
        self.region = region
        self.source = source
        self.method = method
        self.year = None
        self.pue = pue
        self.factor_kind = factor_kind
        self.lookback_s = lookback_s
        self.series: IntensitySeries | None = None
        self.fetches = 0

    def prime(self) -> None:
        """Fetch the recent past once (a bad key or zone fails here, before any work is measured)."""
        now = time.time()
        self._load(now, now)

    def _ensure(self, start: float, end: float) -> IntensitySeries:
        s = self.series
        if s is not None and s.start <= start and end <= s.end:
            return s
        series = self._load(start, end)
        series.check_covers(start, end)
        return series

    def _load(self, start: float, end: float) -> IntensitySeries:
        points, step = self._fetch(start - self.lookback_s, end)
        self.fetches += 1
        points = sorted(p for p in points if p[1] >= 0)
        if not points:
            raise IntensityDataError(f"{self.method} returned no intensity for {self.region} between "
                                     f"{format_time(start - self.lookback_s)} and {format_time(end)}")
        times = tuple(t for t, _ in points)
        values = tuple(v for _, v in points)
        self.series = IntensitySeries(times=times, values=values, end=times[-1] + step,
                                      path=f"{self.method} {self.region}")
        return self.series

    @property
    def nominal_intensity_g_per_kwh(self) -> float:
        s = self.series
        return s.time_weighted_mean(s.start, s.end) if s is not None else float("nan")

    def check_covers(self, start: float, end: float) -> None:
        """Only fetch when nothing was: live data may trail the present by one step, and a window it does not
        cover yet is priced (or reported without CO2e, with the reason) when it ends, not refused up front."""
        if self.series is None:
            self.prime()

    def carbon(self, segments: Sequence[Segment]) -> CarbonInfo:
        if not segments:
            raise IntensityDataError("no segments to price")
        start = min(s for s, _, _ in segments)
        end = max(e for _, e, _ in segments)
        series = self._ensure(start, end)
        grams, kwh = series.grams_per_pue(segments)
        effective = grams / kwh if kwh > 0 else series.time_weighted_mean(start, end)
        return CarbonInfo(co2e_g=grams * self.pue, region=self.region, intensity_g_per_kwh=effective, pue=self.pue,
                          source=self.source, year=None, method=self.method, factor_kind=self.factor_kind)

    def describe(self) -> dict[str, object]:
        if self.series is None:
            self.prime()
        return super().describe()

    def __repr__(self) -> str:
        return f"RemoteSeriesIntensity({self.method}, region={self.region!r}, kind={self.factor_kind})"
