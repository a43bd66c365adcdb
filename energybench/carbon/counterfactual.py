"""Counterfactuals: what the same work would emit on other grids, and at the cleanest time of a series.

Both answer "what would moving or shifting this job save?" with the run's own joules, so the only thing that
changes is the factor. Shifting assumes the work's energy is spread evenly over its measured time (the sum of
its rounds' durations) and slides that block over every step of the series; the cleanest start is the one
whose energy-weighted factor is lowest. A factor of another kind (marginal vs average) is never compared
with the run's own figure: the shift is stated against the series' own mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from energybench.carbon.timeseries import IntensitySeries, format_time
from energybench.errors import ConfigError
from energybench.measurement import JOULES_PER_KWH
from energybench.record import Run


@dataclass(frozen=True)
class RegionRow:
    name: str
    label: str
    intensity_g_per_kwh: float
    co2e_g: float
    is_user: bool = False
    change: float | None = None  # relative to the user's own grams


@dataclass(frozen=True)
class Shift:
    """The run's work placed at every start the series allows: the cleanest, the dirtiest and the mean."""

    series: str
    factor_kind: str
    duration_s: float
    best_start: float
    best_intensity_g_per_kwh: float
    best_co2e_g: float
    worst_start: float
    worst_intensity_g_per_kwh: float
    worst_co2e_g: float
    mean_intensity_g_per_kwh: float
    mean_co2e_g: float

    @property
    def best_start_iso(self) -> str:
        return format_time(self.best_start)

    @property
    def worst_start_iso(self) -> str:
        return format_time(self.worst_start)

    @property
    def saving_vs_mean(self) -> float:
        return 1.0 - self.best_co2e_g / self.mean_co2e_g if self.mean_co2e_g > 0 else 0.0


@dataclass(frozen=True)
class Counterfactuals:
    energy_j: float
    pue: float
    regions: tuple[RegionRow, ...]
    shift: Shift | None = None


def in_regions(energy_j: float, pue: float, names: Sequence[str], user: tuple[str, str, float] | None = None,
               lookup: Callable[[str], Any] | None = None) -> list[RegionRow]:
    """The grams of ``energy_j`` (x PUE) on each named grid, the user's own (name, label, factor) first."""
    if lookup is None:
        from energybench.carbon.regions import lookup_region

        lookup = lookup_region
    kwh = energy_j / JOULES_PER_KWH * pue
    rows: list[RegionRow] = []
    own = kwh * user[2] if user is not None else None
    if user is not None:
        rows.append(RegionRow(user[0], user[1], user[2], kwh * user[2], is_user=True, change=0.0))
    for name in names:
        f = lookup(name)
        if user is not None and f.name == user[0]:
            continue
        grams = kwh * float(f.intensity_g_per_kwh)
        rows.append(RegionRow(str(f.name), str(f.label), float(f.intensity_g_per_kwh), grams,
                              change=(grams / own - 1.0) if own else None))
    return rows


def shift_in_time(series: IntensitySeries, energy_j: float, duration_s: float, pue: float,
                  factor_kind: str = "average") -> Shift:
    """Slide ``duration_s`` of evenly drawn ``energy_j`` over every step start of ``series``."""
    if duration_s <= 0 or not math.isfinite(energy_j) or energy_j <= 0:
        raise ConfigError("the run has no measured energy to shift in time")
    span = series.end - series.start
    if duration_s > span:
        raise ConfigError(f"the work lasted {duration_s:.0f} s but the series {series.path} spans only "
                          f"{span:.0f} s: give a longer series")
    options: list[tuple[float, float]] = []  # (start, grams before PUE)
    for t in series.times:
        if t + duration_s > series.end:
            break
        grams, _ = series.grams_per_pue([(t, t + duration_s, energy_j)])
        options.append((t, grams))
    kwh = energy_j / JOULES_PER_KWH
    best = min(options, key=lambda o: o[1])
    worst = max(options, key=lambda o: o[1])
    mean = series.time_weighted_mean(series.start, series.end)
    return Shift(series=series.path, factor_kind=factor_kind, duration_s=duration_s,
                 best_start=best[0], best_intensity_g_per_kwh=best[1] / kwh, best_co2e_g=best[1] * pue,
                 worst_start=worst[0], worst_intensity_g_per_kwh=worst[1] / kwh, worst_co2e_g=worst[1] * pue,
                 mean_intensity_g_per_kwh=mean, mean_co2e_g=kwh * mean * pue)


def _label(region: str) -> str:
    from energybench.carbon.regions import lookup_region
    from energybench.errors import UnknownRegionError

    try:
        return str(lookup_region(region).label)
    except UnknownRegionError:  # a user's own label (--region aws:us-east-1 --intensity 380)
        return region


def run_counterfactuals(run: Run, regions: Sequence[str], series: IntensitySeries | None = None,
                        series_kind: str = "average", lookup: Callable[[str], Any] | None = None) -> Counterfactuals:
    """Both counterfactuals for a whole run: its measured joules and the time its rounds took."""
    pue = run.carbon.pue if run.carbon else 1.0
    energy = run.energy_j
    user = None
    if run.carbon is not None:
        factor = run.effective_intensity_g_per_kwh or run.carbon.intensity_g_per_kwh
        user = (run.carbon.region, _label(run.carbon.region), factor)
    rows = in_regions(energy, pue, regions, user, lookup)
    shift = None
    if series is not None:
        duration = math.fsum(r.duration_s for _, r in run.rounds() if math.isfinite(r.energy_j))
        shift = shift_in_time(series, energy, duration, pue, series_kind)
    return Counterfactuals(energy_j=energy, pue=pue, regions=tuple(rows), shift=shift)
