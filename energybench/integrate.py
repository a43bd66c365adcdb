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
    """Joules between readings of a cumulative counter, with what happened on the way.

    ``lower_bound`` says the figure misses energy it could not count: a reset (the energy before it is
    gone), an edge reading that was unusable or an outlier, or reads further apart than the counter's wrap
    period at maximum power (a whole wrap may hide in the gap). Outliers in between cost nothing: the next
    accepted reading carries the cumulative count on.
    ``steps == 0`` with two or more readings means no plausible step at all: there is no figure.
    """

    joules: float
    wraps: int = 0
    resets: int = 0
    rejected: int = 0
    bad_readings: int = 0
    gaps: int = 0
    steps: int = 0
    edge_lost: bool = False
    reasons: tuple[str, ...] = ()
    longest_gap_s: float = 0.0

    @property
    def lower_bound(self) -> bool:
        # a rejected outlier costs nothing once a later reading is accepted (the counter is cumulative); one
        # at the end loses the window's edge, which ``edge_lost`` says
        return bool(self.resets or self.gaps or self.edge_lost)


def counter_delta(start: float, end: float, max_value: float | None) -> CounterDelta:
    """Delta between two readings of a counter that wraps at ``max_value`` (``None``: never wraps).

    A decrease on a wrapping counter is one wrap (the caller must read often enough that at most one wrap
    happens between two readings). On a non-wrapping counter a decrease back towards zero is a reset (e.g.
    NVML after a driver reload): the energy since the reset is the best lower bound, so that is what is
    returned; one that stays above half the old value went backwards without a reset (``is_reset``): no
    step is plausible, the window's edge is lost (0 J, a lower bound).
    """
    if end >= start:
        return CounterDelta(end - start, steps=1)
    if max_value is not None and max_value > 0:
        return CounterDelta(end + max_value - start, wraps=1, steps=1)
    if not is_reset(start, end):
        return CounterDelta(0.0, rejected=1, edge_lost=True, reasons=(_backwards(start, end),))
    return CounterDelta(max(end, 0.0), resets=1, steps=1)


def is_reset(before: float, after: float) -> bool:
    """Whether a non-wrapping counter that fell from ``before`` to ``after`` was reset (restarted near zero).

    A reset restarts the count, so what it shows next is only the energy since: far below what it showed
    before. A counter that fell by less than half went *backwards* (a sensor or driver fault, a plugin's
    bug): taking its value as "energy since a reset" would count nearly the whole counter again (a
    plugin's 10 MJ counter stepping back 10 kJ read as 10 MW), so such a reading is an outlier: rejected,
    the count carried on from the last accepted reading (``counter_steps``).
    """
    return after <= before / 2


def _backwards(before: float, after: float) -> str:
    return f"went back from {before:.6g} J to {after:.6g} J without a reset to zero"


@dataclass(frozen=True)
class CounterStep:
    """One step between two usable readings: its joules (0 when ``kind == "rejected"``) and what it was."""

    t0: float
    t1: float
    joules: float
    kind: str  # "ok" | "wrap" | "reset" | "rejected"
    gap: bool = False  # longer than the wrap period at maximum power: a whole wrap may be missing
    reason: str = ""
    span_s: float = 0.0  # the longest the step can have lasted (see ``counter_steps``)


def valid_reading(value: float, max_value: float | None) -> bool:
    """A counter reading the hardware can show: a finite number in ``[0, max_value]``."""
    return math.isfinite(value) and value >= 0 and (max_value is None or value <= max_value)


def counter_steps(
    values: Sequence[float],
    max_value: float | None,
    *,
    times: Sequence[float] | None = None,
    max_power_w: float | None = None,
    slack_s: float = 0.0,
    started: Sequence[float] | None = None,
    wrap_power_w: float | None = None,
) -> tuple[list[CounterStep], list[int]]:
    """Classify every step from the last accepted reading to the next; also return unusable readings' indices.

    Without ``times`` and ``max_power_w`` this is the plain wrap/reset arithmetic of ``counter_delta``. With
    them, a step is *rejected* (0 J, with the reason) when the energy it implies could not have been drawn in
    the time it took, at ``max_power_w`` over ``dt + slack_s`` (``slack_s`` is the counter's update period:
    two reads microseconds apart may straddle one update). That catches a decrease that would be a wrap or a
    reset only at an impossible power (e.g. a reading taken before the window's own start) and absurd jumps.
    A rejected reading is an outlier: the next step is taken from the last accepted reading, so a glitch
    that comes and goes costs nothing, and so is a non-wrapping counter's fall without a reset (``is_reset``).
    A wrapping step longer than ``max_value / wrap_power_w`` is a *gap*: the counter could have wrapped once
    more unseen (``wrap_power_w``: the device's own bound, as ``max_power_w`` may be a loose physical limit).

    ``times`` are when each read returned; ``started`` (optional) when it began. The value was taken
    somewhere in between, so both checks use the longest time a step can have lasted (from the previous
    read's start to this one's end): a step is impossible only if even that cannot explain it, and a wrap
    may hide in it as soon as that exceeds the wrap period. A thread descheduled in the middle of a read
    then gives neither a false "impossible" nor a missed wrap taken as exact.
    """
    begun = started if started is not None else times
    bad = [i for i, v in enumerate(values) if not valid_reading(float(v), max_value)]
    unusable = set(bad)
    checked = times is not None and max_power_w is not None and max_power_w > 0
    wrap_w = max_power_w if wrap_power_w is None else wrap_power_w
    wrap_period = max_value / wrap_w if checked and max_value and wrap_w and wrap_w > 0 else None
    steps: list[CounterStep] = []
    prev: int | None = None
    for j in range(len(values)):
        if j in unusable:
            continue
        if prev is None:
            prev = j
            continue
        a, b = float(values[prev]), float(values[j])
        t0, t1 = (float(times[prev]), float(times[j])) if times is not None else (float(prev), float(j))
        dt = max(t1 - t0, 0.0)
        longest = max(t1 - float(begun[prev]), 0.0) if begun is not None else dt
        allowed = max_power_w * (longest + slack_s) if checked and max_power_w else math.inf
        gap = wrap_period is not None and longest > wrap_period
        joules, kind, what = _step(a, b, max_value)
        if kind == "backwards" or joules > allowed:
            reason = what if kind == "backwards" else f"{what} in {dt:.3g} s, more than {max_power_w:g} W could draw"
            steps.append(CounterStep(t0, t1, 0.0, "rejected", False, reason, longest))
            continue  # an outlier: the next step starts from the last accepted reading again
        if kind != "ok" and checked and _undone(values, begun, times, unusable, prev, j, max_power_w or 0.0, slack_s):
            reason = f"{what} and came straight back: a glitch, not a {kind}"
            steps.append(CounterStep(t0, t1, 0.0, "rejected", False, reason, longest))
            continue
        steps.append(CounterStep(t0, t1, joules, kind, gap, "", longest))
        prev = j
    return steps, bad


def _step(a: float, b: float, max_value: float | None) -> tuple[float, str, str]:
    """The energy of a counter going from ``a`` to ``b``: a rise, a wrap (with a known maximum) or a reset."""
    if b >= a:
        return b - a, "ok", f"rose by {b - a:.6g} J"
    if max_value is not None and max_value > 0:
        joules = b + max_value - a
        return joules, "wrap", f"went from {a:.6g} J to {b:.6g} J, a wrap of {joules:.6g} J"
    if not is_reset(a, b):
        return 0.0, "backwards", _backwards(a, b)
    return b, "reset", f"went back from {a:.6g} J to {b:.6g} J, {b:.6g} J since a reset"


def _undone(
    values: Sequence[float], begun: Sequence[float] | None, times: Sequence[float] | None, unusable: set[int],
    prev: int, j: int, max_power_w: float, slack_s: float,
) -> bool:
    """Whether a decrease at ``j`` is undone by the next reading that differs from it: a real reset or wrap
    carries on from its new value, a glitch returns to where the counter was (plausibly, from ``prev``)."""
    assert times is not None and begun is not None
    for k in range(j + 1, len(values)):
        if k in unusable or values[k] == values[j]:
            continue
        rise_from_j = float(values[k]) - float(values[j])
        rise_from_prev = float(values[k]) - float(values[prev])
        budget = max_power_w * (max(float(times[k]) - float(begun[j]), 0.0) + slack_s)
        budget_prev = max_power_w * (max(float(times[k]) - float(begun[prev]), 0.0) + slack_s)
        return rise_from_j > budget and 0 <= rise_from_prev <= budget_prev
    return False


def accumulate_counter(
    readings: Sequence[float],
    max_value: float | None,
    *,
    times: Sequence[float] | None = None,
    max_power_w: float | None = None,
    slack_s: float = 0.0,
    started: Sequence[float] | None = None,
    wrap_power_w: float | None = None,
) -> CounterDelta:
    """Total over a sequence of readings (window edges plus polls in between): one wrap per step at most.

    Unusable readings (``valid_reading``) are skipped; impossible steps and gaps are counted and make the
    total a lower bound (see ``counter_steps``). Losing the first or last reading loses the window's edge,
    which also makes it a lower bound.
    """
    steps, bad = counter_steps(
        readings, max_value, times=times, max_power_w=max_power_w, slack_s=slack_s, started=started,
        wrap_power_w=wrap_power_w,
    )
    counted = [s for s in steps if s.kind != "rejected"]
    # the window's own edge readings are unusable (or the last one was an outlier): energy next to them is lost
    last_rejected = bool(steps) and steps[-1].kind == "rejected"
    edge_lost = (bool(bad) and (0 in bad or len(readings) - 1 in bad)) or last_rejected
    gaps = [s for s in steps if s.gap]
    return CounterDelta(
        joules=math.fsum(s.joules for s in counted),
        wraps=sum(s.kind == "wrap" for s in steps),
        resets=sum(s.kind == "reset" for s in steps),
        rejected=sum(s.kind == "rejected" for s in steps),
        bad_readings=len(bad),
        gaps=len(gaps),
        steps=len(counted),
        edge_lost=edge_lost,
        reasons=tuple(s.reason for s in steps if s.reason),
        longest_gap_s=max((s.span_s for s in gaps), default=0.0),
    )


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
    times: Sequence[float],
    values: Sequence[float],
    *,
    power: bool,
    max_value: float | None = None,
    max_power_w: float | None = None,
    slack_s: float = 0.0,
    started: Sequence[float] | None = None,
    wrap_power_w: float | None = None,
) -> Callable[[float, float], float]:
    """Joules between any two instants of one series, for cutting a window into timeline segments.

    A power series (watts) is integrated per segment with the trapezoid rule. A counter series (cumulative
    joules, wrapping at ``max_value``) is unwrapped once into a cumulative curve, so each segment is a
    difference of two interpolated values instead of a fresh walk over the readings; unusable readings and
    impossible steps add nothing, exactly as in ``accumulate_counter``.
    """
    times = list(times)
    if power:
        return functools.partial(trapezoid, times, list(values))
    steps, _bad = counter_steps(
        values, max_value, times=times, max_power_w=max_power_w, slack_s=slack_s, started=started,
        wrap_power_w=wrap_power_w,
    )
    steps = [s for s in steps if s.kind != "rejected"]
    if not steps:
        return lambda a, b: 0.0
    points = [steps[0].t0, *(s.t1 for s in steps)]
    cumulative = [0.0]
    for s in steps:
        cumulative.append(cumulative[-1] + s.joules)
    return lambda a, b: interpolate(points, cumulative, b) - interpolate(points, cumulative, a)


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
