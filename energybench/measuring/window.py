"""Turning one window's readings into its ``Measurement``: joules per domain, sanity, timeline, carbon.

The meter (``energybench.measuring.meter``) owns time and reading; this module is the arithmetic done once a window
ends, split off so neither grows past one screenful of concerns. Every figure here is either a number the
readings support or says why not: a counted domain with no plausible figure is n/a and listed in
``Measurement.missing``; one that misses energy it could not count (a reset, a step no device could draw,
a gap long enough to hide a wrap) is flagged ``lower_bound`` with the reason in the warnings.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from energybench.errors import IntensityDataError
from energybench.integrate import CounterDelta, accumulate_counter, energy_between, thin, trapezoid, valid_reading
from energybench.measurement import CarbonInfo, DomainEnergy, Measurement
from energybench.samplers.base import Domain, Sampler

#: a window shorter than this many counter updates is flagged as unreliable
RESOLUTION_FACTOR = 5
#: the least time slack a counter step is judged with: a register can lag its update period and a busy
#: machine's timers jitter by milliseconds; only steps that even this cannot explain are impossible
MIN_STEP_SLACK_S = 0.01


@dataclass
class Reading:
    t: float  # seconds of the meter's clock (monotonic) when the read returned
    values: dict[str, float]
    t_start: float | None = None  # when the read began: the value was taken somewhere in [t_start, t]

    @property
    def began(self) -> float:
        return self.t if self.t_start is None else self.t_start


@dataclass
class OpenWindow:
    name: str
    t0: float
    wall0: float
    start: dict[str, Reading]  # sampler name -> its own start-edge reading
    t_pre: float = 0.0  # just before the start edge's reads: samplers' own samples from then on belong here
    wall_pre: float | None = None  # the wall clock at ``t_pre``, to tell a clock jump (``record.bounds``)


@dataclass
class SamplerState:
    """One sampler as the meter holds it: its readings in time order, and why it stopped, if it did.

    ``lock`` serialises this sampler's reads: the value and its timestamp are taken, and the reading
    appended, under it, so readings from the edge and from the poller can never be out of time order.
    """

    sampler: Sampler
    domains: list[Domain]
    readings: list[Reading] = field(default_factory=list)
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def build(
    states: list[SamplerState],
    window: OpenWindow,
    end: Mapping[str, Reading],
    *,
    provider: Any,
    interval: float,
    wall_offset: float,
    clocks: str | None = None,
) -> tuple[Measurement, list[tuple[SamplerState, float, float]]]:
    """The window's ``Measurement``, and (state, start, end) per sampler for its activity metadata. ``clocks``
    says why the window's duration is unknown (``record.bounds.clock_problem``): its time-based figures are then
    n/a and the window flagged."""
    t1 = max((r.t for r in end.values()), default=window.t0)
    duration = max(t1 - window.t0, 0.0)
    domains: list[DomainEnergy] = []
    warnings: list[str] = []
    missing: list[str] = []
    grid: set[float] = {window.t0, t1}
    series_by_state: list[tuple[SamplerState, list[Reading]]] = []
    for state in states:
        readings = _window_readings(state, window, end, t1)
        if readings is None:  # the sampler was lost: its counted domains are missing from the total
            warnings.append(_lost_warning(state))
            missing += [d.key for d in state.domains if d.counted]
            continue
        grid.update(r.t for r in readings)
        series_by_state.append((state, readings))
        found, notes = _sampler_domains(state, readings, window.t0, t1, interval)
        if clocks:
            found = _untimed(state, found, notes)
        domains += found
        missing += [d.key for d in found if d.counted and math.isnan(d.energy_j)]
        warnings.extend(f"{', '.join(keys)}: {note}" for note, keys in notes.items())
    for state in states:
        warnings.extend(f"{state.sampler.name}: {w}" for w in state.sampler.take_warnings())
    if provider is None:
        warnings.append("no CO2e: no region given (pass region=/--region, or an intensity factor)")
    warnings += [clocks] if clocks else []
    timeline, segments = _timeline(series_by_state, sorted(grid), window.t0, wall_offset)
    carbon = _carbon(provider, segments, window, duration, domains, warnings)
    spans = [(s, window.t_pre, t1) for s in states]
    result = Measurement(
        name=window.name,
        start_time=window.wall0,
        duration_s=duration,
        domains=tuple(domains),
        carbon=carbon,
        warnings=tuple(warnings),
        metadata={},
        timeline=tuple(timeline),
        missing=tuple(dict.fromkeys(missing)),
        flags=("clocks disagree",) if clocks else (),
    )
    return result, spans


def _window_readings(state: SamplerState, window: OpenWindow, end: Mapping[str, Reading],
                     t1: float) -> list[Reading] | None:
    """The sampler's readings that belong to the window; ``None`` when the sampler was lost."""
    name = state.sampler.name
    if state.sampler.kind == "counter":
        start_reading, end_reading = window.start.get(name), end.get(name)
        return (_between_own_edges(state.readings, start_reading, end_reading)
                if start_reading is not None and end_reading is not None else None)
    readings = [r for r in state.readings if window.t0 <= r.t <= t1]
    return None if (not readings or name not in end) and state.error else readings


def _sampler_domains(state: SamplerState, readings: list[Reading], t0: float, t1: float,
                     interval: float) -> tuple[list[DomainEnergy], dict[str, list[str]]]:
    """One sampler's domains over the window, and each note with the domains it is about."""
    from energybench.record import bounds  # here, not at import: a plain measure() never loads the record

    domains: list[DomainEnergy] = []
    notes: dict[str, list[str]] = {}
    for dom in state.domains:
        energy, dom_notes, lower = _domain_energy(state, dom, readings, t0, t1)
        if why := bounds.domain_problem(dom.key, energy, max(t1 - t0, 0.0)):  # what a results file refuses
            energy, lower, dom_notes = math.nan, False, [*dom_notes, f"{why}: no figure (n/a)"]
        for note in dom_notes:
            notes.setdefault(note, []).append(dom.key)
        details = dict(dom.details)
        if state.sampler.kind == "power":
            details.setdefault("interval_s", interval)
        domains.append(DomainEnergy(key=dom.key, energy_j=energy, source=dom.source, method=dom.method,
                                    sampler=state.sampler.name, counted=dom.counted, details=details,
                                    lower_bound=lower and not math.isnan(energy)))
    return domains, notes


def _between_own_edges(readings: list[Reading], start: Reading, end: Reading) -> list[Reading]:
    """This sampler's readings from its own start-edge reading to its own end-edge reading, in time order.

    A reading another thread took while an earlier sampler was synchronising can be older than this
    sampler's start reading though it falls inside the window's span: it belongs before the window, and
    counting it would turn the counter's normal rise into a decrease (a reset or a wrap of the whole range).
    """
    ordered = sorted(readings, key=lambda r: r.t)
    inside = [r for r in ordered if start.t <= r.t <= end.t and r is not start and r is not end]
    return [start, *inside, end] if end is not start else [start]


def _domain_energy(
    state: SamplerState, dom: Domain, readings: list[Reading], t0: float, t1: float
) -> tuple[float, list[str], bool]:
    """(joules, notes, lower bound) for one domain over the window."""
    rows = [(r.t, r.began, r.values[dom.key]) for r in readings if dom.key in r.values]
    times, began, values = [t for t, _, _ in rows], [b for _, b, _ in rows], [float(v) for _, _, v in rows]
    resolution = float(state.sampler.resolution_s or 0.0)
    if state.sampler.kind == "power":
        return _power_energy(dom, times, values, t0, t1, resolution)
    if values and all(math.isnan(v) for v in values):
        return math.nan, ["the sampler gave no figure in this window (its warnings say why): n/a"], False
    total = accumulate_counter(
        values, dom.max_value, times=times, started=began, max_power_w=_limit_w(dom),
        slack_s=max(resolution, MIN_STEP_SLACK_S), wrap_power_w=dom.max_power_w,
    )
    notes = _counter_notes(dom, total, len(values))
    if total.steps == 0 and len(values) >= 2:
        return math.nan, notes, False
    if resolution > 0 and (t1 - t0) < RESOLUTION_FACTOR * resolution:
        if total.joules == 0 or ((t1 - t0) < resolution and dom.source == "measured"):
            # 0 J, or a hardware counter's whole update landing in a window shorter than one (a GPU's 0.1 s of
            # energy in a 2 ms window): neither is this window's energy. An estimate's error stays stated below.
            return math.nan, [
                f"window {t1 - t0:.3g} s is shorter than the counter's update period ({resolution:g} s) and "
                f"read {'0 J' if total.joules == 0 else 'a whole update or none'}: no figure; measure a longer "
                "window or more iterations"
            ], False
        notes.append(
            f"window {t1 - t0:.3g} s spans few counter updates ({resolution:g} s each): "
            "expect up to one update of error; measure longer for a precise figure"
        )
    return total.joules, notes, total.lower_bound


def _counter_notes(dom: Domain, total: CounterDelta, n_readings: int) -> list[str]:
    notes: list[str] = []
    if total.bad_readings:
        top = f"{dom.max_value:.6g} J" if dom.max_value is not None else "no limit"
        notes.append(
            f"{total.bad_readings} of {n_readings} counter readings outside the possible range [0, {top}] "
            "(a sysfs or driver fault) were ignored" + ("; the window's edge was lost" if total.edge_lost else "")
        )
    if total.rejected:
        notes.append(
            f"{total.rejected} counter step(s) impossible for this device ({total.reasons[0]}) were left out"
        )
    if total.resets:
        notes.append(f"counter went backwards {total.resets}x (driver reload?)")
    if total.gaps:
        period = (dom.max_value or 0.0) / (dom.max_power_w or math.inf)
        notes.append(
            f"reads {total.longest_gap_s:.3g} s apart, longer than the counter's wrap period at maximum power "
            f"({period:.3g} s): a whole wrap may be missing"
        )
    if total.steps == 0 and n_readings >= 2:
        notes.append("no plausible counter step in this window: no figure (n/a)")
    elif total.lower_bound:
        notes.append("the figure is a lower bound")
    return notes


def _power_energy(
    dom: Domain, times: list[float], values: list[float], t0: float, t1: float, resolution: float
) -> tuple[float, list[str], bool]:
    """Trapezoid over the plausible power samples; a window shorter than the reading's averaging period
    is warned about, because each reading then mostly describes time before the window."""
    top = _limit_w(dom)
    keep = [i for i, v in enumerate(values) if valid_reading(v, None) and v <= top]
    notes: list[str] = []
    if len(keep) < len(values):
        notes.append(
            f"{len(values) - len(keep)} power reading(s) below 0 or above {top:g} W (a driver fault) were "
            "ignored; the figure interpolates across them"
        )
    times, values = [times[i] for i in keep], [values[i] for i in keep]
    if len(times) < 2:
        return math.nan, [*notes, f"fewer than 2 power samples in {t1 - t0:.3g} s; measure longer"], False
    if resolution > 0 and (t1 - t0) < resolution:
        notes.append(
            f"window {t1 - t0:.3g} s is shorter than the power reading's averaging period ({resolution:g} s): "
            "the figure mixes in power drawn before the window; measure longer for a precise figure"
        )
    return trapezoid(times, values, t0, t1), notes, False


def _limit_w(dom: Domain) -> float:
    """The most ``dom`` can draw: its sampler's bound, within its device kind's physical limit
    (``record.bounds``), so no plugin's step or reading beyond any hardware is integrated."""
    from energybench.record import bounds

    return bounds.power_limit_w(dom.key, dom.max_power_w)


def _untimed(state: SamplerState, found: list[DomainEnergy], notes: dict[str, list[str]]) -> list[DomainEnergy]:
    """A window of unknown duration: figures that come from time (power x seconds: polled power, a model's
    estimate) are n/a; a hardware counter's joules stand."""
    timed = state.sampler.kind == "power"
    out = []
    for d in found:
        if (timed or d.source != "measured") and d.has_figure:
            notes.setdefault("time-based figure: n/a (see the clocks warning)", []).append(d.key)
            d = replace(d, energy_j=math.nan, lower_bound=False)
        out.append(d)
    return out


def _lost_warning(state: SamplerState) -> str:
    keys = ", ".join(d.key for d in state.domains) or state.sampler.name  # no domains: they failed to list
    return f"{keys}: sampler {state.sampler.name} failed mid-run and is left out: {state.error}"


def _timeline(
    series: list[tuple[SamplerState, list[Reading]]], grid: list[float], t0: float, wall_offset: float
) -> tuple[list[tuple[float, dict[str, float]]], list[tuple[float, float, float]]]:
    """Mean power per domain between grid points (every reading's time), and joules per segment for carbon.

    Each counted domain's series becomes an ``integrate.energy_between`` curve, cut at the grid. The grid
    holds power samples as well as counter reads, so a window measured only by polled power still prices
    each stretch of energy at the intensity of its own time. Long, finely polled windows are thinned
    (``integrate.thin``) so results files stay small.
    """
    grid = thin(grid)
    curves: list[tuple[str, Callable[[float, float], float]]] = []
    for state, readings in series:
        for dom in (d for d in state.domains if d.counted):
            pts = [(r.t, r.began, float(r.values[dom.key])) for r in readings if dom.key in r.values]
            power = state.sampler.kind == "power"
            if power:
                top = _limit_w(dom)
                pts = [(t, b, v) for t, b, v in pts if valid_reading(v, None) and v <= top]
            if len(pts) >= 2:
                times, began, values = [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]
                curves.append((dom.key, energy_between(
                    times, values, power=power, max_value=dom.max_value, max_power_w=_limit_w(dom),
                    slack_s=max(float(state.sampler.resolution_s or 0.0), MIN_STEP_SLACK_S), started=began,
                    wrap_power_w=dom.max_power_w,
                )))
    timeline: list[tuple[float, dict[str, float]]] = []
    segments: list[tuple[float, float, float]] = []
    for a, b in zip(grid, grid[1:], strict=False):
        if b <= a:
            continue
        watts_by_key = {key: energy(a, b) / (b - a) for key, energy in curves}
        timeline.append((b - t0, watts_by_key))
        segments.append((a + wall_offset, b + wall_offset, sum(watts_by_key.values()) * (b - a)))
    return timeline, segments


def _carbon(
    provider: Any,
    segments: list[tuple[float, float, float]],
    window: OpenWindow,
    duration: float,
    domains: list[DomainEnergy],
    warnings: list[str],
) -> CarbonInfo | None:
    if provider is None:
        return None
    figures = [d.energy_j for d in domains if d.counted and not math.isnan(d.energy_j)]
    if not figures:
        warnings.append("no CO2e: no energy figure in this window")
        return None
    total = sum(figures)
    seg_total = sum(s[2] for s in segments)
    if seg_total > 0:
        # the timeline carries the shape; scale it so grams always match the reported joules exactly
        scale = total / seg_total
        segments = [(a, b, j * scale) for a, b, j in segments]
    else:
        segments = [(window.wall0, window.wall0 + duration, total)]
    try:
        return provider.carbon(segments)
    except IntensityDataError as exc:  # the joules stand without grams; losing them would be worse
        warnings.append(f"no CO2e: {exc}")
        return None
