"""Pure arithmetic that turns raw readings into joules.

Kept free of I/O and clocks so every edge case (wraps, resets, windows that start between samples) is unit
tested on plain numbers.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CounterDelta:
    """Joules between readings of a cumulative counter, with what happened on the way."""

    joules: float
    wraps: int = 0
    resets: int = 0


def counter_delta(start: float, end: float, max_value: float | None) -> CounterDelta:
    """Delta between two readings of a counter that wraps at ``max_value`` (``None``: never wraps).

    A decrease on a wrapping counter is one wrap (the caller must read often enough that at most one wrap
    happens between two readings). On a non-wrapping counter a decrease is a reset (e.g. NVML after a
    driver reload): the energy since the reset is the best lower bound, so that is what is returned.
    """
    if end >= start:
        return CounterDelta(end - start)
    if max_value is not None and max_value > 0:
        return CounterDelta(end + max_value - start, wraps=1)
    return CounterDelta(max(end, 0.0), resets=1)


def accumulate_counter(readings: Sequence[float], max_value: float | None) -> CounterDelta:
    """Total over a sequence of readings (window edges plus polls in between): one wrap per step at most."""
    joules = 0.0
    wraps = resets = 0
    for a, b in zip(readings, readings[1:], strict=False):
        d = counter_delta(a, b, max_value)
        joules += d.joules
        wraps += d.wraps
        resets += d.resets
    return CounterDelta(joules, wraps, resets)


def interpolate(times: Sequence[float], values: Sequence[float], t: float) -> float:
    """Piecewise-linear value at ``t``; held constant beyond the first and last sample."""
    if not times:
        raise ValueError("no samples")
    if t <= times[0]:
        return values[0]
    if t >= times[-1]:
        return values[-1]
    i = bisect.bisect_right(times, t)
    t0, t1 = times[i - 1], times[i]
    if t1 == t0:
        return values[i]
    return values[i - 1] + (values[i] - values[i - 1]) * (t - t0) / (t1 - t0)


def trapezoid(times: Sequence[float], watts: Sequence[float], t0: float, t1: float) -> float:
    """Joules from power samples over ``[t0, t1]`` by the trapezoid rule.

    The window edges rarely coincide with samples: the power there is interpolated, so a window that starts
    between two polls is charged only for its own part of that interval.
    """
    if t1 <= t0 or not times:
        return 0.0
    inner = [(t, w) for t, w in zip(times, watts, strict=True) if t0 < t < t1]
    points = [(t0, interpolate(times, watts, t0)), *inner, (t1, interpolate(times, watts, t1))]
    return sum((b[0] - a[0]) * (a[1] + b[1]) / 2.0 for a, b in zip(points, points[1:], strict=False))


def energy_between(
    times: Sequence[float], values: Sequence[float], *, power: bool, max_value: float | None = None
) -> Callable[[float, float], float]:
    """Joules between any two instants of one series, for cutting a window into timeline segments.

    A power series (watts) is integrated per segment with the trapezoid rule. A counter series (cumulative
    joules, wrapping at ``max_value``) is unwrapped once into a cumulative curve, so each segment is a
    difference of two interpolated values instead of a fresh walk over the readings.
    """
    times = list(times)
    if power:
        return functools.partial(trapezoid, times, list(values))
    cumulative = [0.0]
    for a, b in zip(values, values[1:], strict=False):
        cumulative.append(cumulative[-1] + counter_delta(a, b, max_value).joules)
    return lambda a, b: interpolate(times, cumulative, b) - interpolate(times, cumulative, a)


MAX_TIMELINE_POINTS = 400


def thin(points: Sequence[float], limit: int = MAX_TIMELINE_POINTS) -> list[float]:
    """Every k-th point (and always the last) so at most about ``limit`` remain: a long, finely polled window
    keeps its shape in a results file without thousands of rows."""
    points = list(points)
    if len(points) <= limit:
        return points
    step = math.ceil(len(points) / limit)
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


def energy_above_idle(energy_j: float, idle_power_w: float, duration_s: float) -> float:
    """Energy beyond what the machine draws doing nothing for the same time; never negative."""
    return max(0.0, energy_j - idle_power_w * duration_s)
