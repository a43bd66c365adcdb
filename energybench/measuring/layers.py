"""Energy per layer: one window's joules attributed to the modules of a torch model, from ``torch.profiler``.

How: every module of the model gets a forward pre-hook and hook that open and close a profiler range named
after it, the work runs once inside a meter window under ``torch.profiler``, and the window's time is then
cut into pieces, each owned by exactly one part:

* on the host, the innermost module running at that instant (its children's time is theirs); backward
  ops belong to the module whose forward op created them (the autograd sequence number links the two);
  ``torch.optim``'s step is ``(optimizer step)``; time in no module is ``(outside the model)``;
* on a GPU, the module whose op launched the kernel running at that instant; GPU time with no kernel
  running is ``(outside the model)``.

Each energy domain's joules are then spread over the pieces by its power timeline (the meter's mean power
per segment: the CPU domains over the host pieces, ``gpu:*`` domains over the kernel pieces when there are
kernels), and scaled so that the parts add up exactly to the domain's measured or estimated total. A module
whose calls are shorter than the power figure's resolution (the sampler's update period, or the timeline's
segment length when that is coarser) is flagged ``below_resolution``: its joules are its share of time at
the power around it, not a power the sensor saw it draw.

Profiling slows the work down (every op and every module call is recorded), so an attribution pass is never
a measured trial: ``energybench run`` makes it once per benchmark after the trials, and its shares, not its
total, are what the report puts next to the trials' figures. Host time is wall time on the calling thread,
with torch's intra-op threads running inside the op that started them.
"""

from __future__ import annotations

import heapq
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from energybench.errors import ConfigError
from energybench.record.layers import OPTIMIZER, OUTSIDE, LayerEnergy, LayerProfile

if TYPE_CHECKING:
    from energybench.measurement import Measurement
    from energybench.measuring.meter import Meter

__all__ = ["MARK", "OPTIMIZER", "OUTSIDE", "ROOT", "Interval", "attribute", "energy_by_layer", "host_intervals",
           "kernel_intervals", "module_ranges", "partition", "profiled_events"]

#: The part that holds the model's own forward code (what its top-level ``forward`` does outside children).
ROOT = "<root>"
_PREFIX = "energybench.layer::"
#: The profiler range around the attributed work: its start is the time origin of the intervals.
MARK = "energybench.measuring.layers::window"
_BACKWARD = "autograd::engine::evaluate_function: "
_OPTIMIZER_PREFIXES = ("Optimizer.step#", "Optimizer.zero_grad#")
_METHOD_HOST = "host time per module (torch.profiler) x power timeline"
_METHOD_KERNELS = "GPU kernel time per module (torch.profiler) x power timeline; host domains by host time"


@dataclass(frozen=True)
class Interval:
    """A stretch of the window (seconds from its start) owned by ``owner``; ``call`` marks a module call
    (counted), as opposed to a backward op or kernel billed to the module."""

    start: float
    end: float
    owner: str
    call: bool = False


# ------------------------------------------------------------------------------------------ pure arithmetic


def partition(intervals: Iterable[Interval], duration: float) -> list[tuple[float, float, str]]:
    """Cut ``[0, duration]`` into pieces, each owned by the innermost interval covering it.

    Innermost is the covering interval that started last (ties: the shorter one, i.e. the child); what no
    interval covers is ``OUTSIDE``. The pieces tile the window exactly, which is why the parts add up.
    """
    spans = sorted(
        ((max(0.0, i.start), min(duration, i.end), i.owner) for i in intervals if i.end > i.start),
        key=lambda s: (s[0], -s[1]),
    )
    spans = [s for s in spans if s[1] > s[0]]
    cuts = sorted({0.0, duration, *(s[0] for s in spans), *(s[1] for s in spans)})
    pieces: list[tuple[float, float, str]] = []
    active: list[tuple[float, int, float, str]] = []  # (-start, -order, end, owner): innermost on top
    nxt = 0
    for a, b in zip(cuts, cuts[1:], strict=False):
        while nxt < len(spans) and spans[nxt][0] <= a:
            s, e, owner = spans[nxt]
            heapq.heappush(active, (-s, -nxt, e, owner))
            nxt += 1
        while active and active[0][2] <= a:
            heapq.heappop(active)
        owner = active[0][3] if active else OUTSIDE
        if pieces and pieces[-1][2] == owner and pieces[-1][1] == a:
            pieces[-1] = (pieces[-1][0], b, owner)
        else:
            pieces.append((a, b, owner))
    return pieces


def _power_curve(timeline: Sequence[tuple[float, Mapping[str, float]]], key: str) -> list[tuple[float, float, float]]:
    """``(start, end, watts)`` segments of one domain from the meter's timeline (mean power per segment)."""
    out = []
    prev = 0.0
    for t, watts in timeline:
        w = watts.get(key)
        if w is not None and math.isfinite(w) and t > prev:
            out.append((prev, t, max(0.0, float(w))))
        prev = max(prev, t)
    return out


def _energy_of(pieces: Sequence[tuple[float, float, str]], curve: Sequence[tuple[float, float, float]]) -> dict[
        str, float]:
    """Joules per owner: each piece times the power of the segments it overlaps (a two-pointer walk)."""
    out: dict[str, float] = {}
    j = 0
    for a, b, owner in pieces:
        total = 0.0
        while j < len(curve) and curve[j][1] <= a:
            j += 1
        k = j
        while k < len(curve) and curve[k][0] < b:
            lo, hi = max(a, curve[k][0]), min(b, curve[k][1])
            if hi > lo:
                total += (hi - lo) * curve[k][2]
            k += 1
        out[owner] = out.get(owner, 0.0) + total
    return out


def _spread(total_j: float, pieces: Sequence[tuple[float, float, str]],
            curve: Sequence[tuple[float, float, float]]) -> dict[str, float]:
    """``total_j`` split over the owners in proportion to the power timeline under their pieces (by time
    alone where there is no usable timeline), so the owners' joules add up to ``total_j`` exactly."""
    weights = _energy_of(pieces, curve) if curve else {}
    whole = math.fsum(weights.values())
    if not whole > 0:
        weights = {}
        for a, b, owner in pieces:
            weights[owner] = weights.get(owner, 0.0) + (b - a)
        whole = math.fsum(weights.values())
    if not whole > 0:
        return {OUTSIDE: total_j}
    shares = {owner: total_j * w / whole for owner, w in weights.items()}
    # put the last rounding crumb on the largest part, so the sum is the total to the last bit we can
    biggest = max(shares, key=lambda o: shares[o])
    shares[biggest] += total_j - math.fsum(shares.values())
    return shares


def attribute(
    measurement: Measurement,
    host: Sequence[Interval],
    kernels: Sequence[Interval] = (),
    *,
    items: float = 1.0,
    resolution_s: float = 0.0,
) -> LayerProfile:
    """A ``LayerProfile`` from a window's ``Measurement`` and the intervals its modules ran in.

    ``host`` intervals carve up the CPU domains (and every domain when there are no ``kernels``);
    ``kernels`` carve up the ``gpu:*`` domains. Times are seconds from the window's start.
    """
    duration = measurement.duration_s
    host_pieces = partition(host, duration)
    kernel_pieces = partition(kernels, duration) if kernels else None
    energy: dict[str, float] = {}
    counted = [d for d in measurement.domains if d.counted and math.isfinite(d.energy_j)]
    for dom in counted:
        pieces = kernel_pieces if kernel_pieces is not None and dom.device == "gpu" else host_pieces
        for owner, joules in _spread(dom.energy_j, pieces, _power_curve(measurement.timeline, dom.key)).items():
            energy[owner] = energy.get(owner, 0.0) + joules
    seconds: dict[str, float] = {}
    for a, b, owner in host_pieces:
        seconds[owner] = seconds.get(owner, 0.0) + (b - a)
    calls: dict[str, int] = {}
    for i in host:
        if i.call:
            calls[i.owner] = calls.get(i.owner, 0) + 1
    segments = [b - a for a, b, _ in _power_curve(measurement.timeline, counted[0].key)] if counted else []
    resolution = max(resolution_s, statistics.median(segments) if segments else duration)
    names = list(dict.fromkeys([*(i.owner for i in host if i.call), *seconds, *energy]))
    parts = []
    for name in names:
        n = calls.get(name, 0)
        t = seconds.get(name, 0.0)
        fast = n > 0 and t / n < resolution
        parts.append(LayerEnergy(name=name, energy_j=energy.get(name, 0.0) if counted else math.nan, time_s=t,
                                 calls=n, below_resolution=fast))
    warnings = list(measurement.warnings)
    if not counted:
        warnings.append("no energy figure in the profiled window: parts have time but no joules")
    return LayerProfile(
        energy_j=measurement.energy_j, duration_s=duration, items=float(items), resolution_s=resolution,
        source=measurement.source, method=_METHOD_KERNELS if kernels else _METHOD_HOST,
        layers=tuple(sorted(parts, key=lambda p: -p.energy_j if math.isfinite(p.energy_j) else -p.time_s)),
        warnings=tuple(warnings),
    )


# ------------------------------------------------------------------------------------- reading the profile


@dataclass(slots=True)
class _Span:
    start: float
    end: float


@dataclass(slots=True)
class ProfiledEvent:
    """One profiler event with just what the attribution reads, in the shape of torch's ``FunctionEvent``
    (``name``, ``time_range`` in microseconds, ``cpu_parent``...), so both feed ``host_intervals``."""

    name: str
    time_range: _Span
    thread: int
    sequence_nr: int
    device_type: Any  # torch's DeviceType enum: ``.name`` is "CPU", "CUDA"...
    id: int
    linked_correlation_id: int
    cpu_parent: ProfiledEvent | None = None


def profiled_events(prof: Any) -> list[ProfiledEvent]:
    """The events of a finished ``torch.profiler.profile`` (or the ``torch.autograd.profiler.profile`` it wraps)
    with their CPU parents, read straight from its kineto results.

    Why not ``prof.events()``: torch builds a full ``FunctionEvent`` per op there (memory records, shapes,
    stack, demangled names), which took ~1.4 s per profiled benchmark on the 2-core machine, 85 % of the
    attribution pass; this keeps the same parent rule (per thread, an event is the child of the innermost
    synchronous CPU event whose ``[start, end)`` holds it) at a fraction of the cost.
    """
    result = getattr(getattr(prof, "profiler", prof), "kineto_results", None)  # torch.profiler's or autograd's
    if result is None:
        raise ValueError("the profile holds no kineto results: was it stopped?")
    skip = {"[memory]", "[OutOfMemory]", "profiler::_record_function_enter", "profiler::_record_function_enter_new",
            "profiler::_record_function_exit"}
    t0 = result.trace_start_ns()  # integer nanoseconds first: epoch microseconds as floats lose ~0.25 us
    out: list[ProfiledEvent] = []
    by_thread: dict[int, list[ProfiledEvent]] = {}
    for k in result.events():
        name = k.name()
        if name in skip:
            continue
        span = _Span((k.start_ns() - t0) / 1e3, (k.end_ns() - t0) / 1e3)
        e = ProfiledEvent(name, span, k.start_thread_id(), k.sequence_nr(), k.device_type(), k.correlation_id(),
                          k.linked_correlation_id())
        out.append(e)
        if e.device_type.name == "CPU" and not k.is_async() and k.start_thread_id() == k.end_thread_id():
            by_thread.setdefault(e.thread, []).append(e)
    for events in by_thread.values():
        events.sort(key=lambda e: (e.time_range.start, -e.time_range.end))
        stack: list[ProfiledEvent] = []
        for e in events:
            while stack and (e.time_range.start >= stack[-1].time_range.end
                             or e.time_range.end > stack[-1].time_range.end):
                stack.pop()
            e.cpu_parent = stack[-1] if stack else None
            stack.append(e)
    return out


def _owner_of(event: Any, backward_owner: Mapping[int, str]) -> str | None:
    """The module (or backward op's module) an event ran under, walking up the profiler's op tree."""
    e = event
    while e is not None:
        name = e.name
        if name.startswith(_PREFIX):
            return str(name[len(_PREFIX):])
        if name.startswith(_BACKWARD):
            return backward_owner.get(e.sequence_nr)
        if name.startswith(_OPTIMIZER_PREFIXES):
            return OPTIMIZER
        e = e.cpu_parent
    return None


def host_intervals(events: Sequence[Any]) -> tuple[list[Interval], float]:
    """Module calls, backward ops and optimiser steps from ``profile.events()``, in seconds from the
    attribution marker's start; also returns that marker's start in microseconds (the time origin)."""
    mark = next((e for e in events if e.name == MARK), None)
    if mark is None:
        raise ValueError(f"no {MARK!r} range in the profile: was the work run inside energy_by_layer?")
    origin = mark.time_range.start
    forward_owner: dict[int, str] = {}
    for e in events:
        if e.sequence_nr >= 0 and not e.name.startswith(_BACKWARD) and e.device_type.name == "CPU":
            owner = _owner_of(e.cpu_parent, {})
            if owner is not None:
                forward_owner.setdefault(e.sequence_nr, owner)
    out = []
    for e in events:
        name = e.name
        if name.startswith(_PREFIX):
            owner, call = name[len(_PREFIX):], True
        elif name.startswith(_BACKWARD):
            found = forward_owner.get(e.sequence_nr)
            if found is None:
                continue
            owner, call = found, False
        elif name.startswith(_OPTIMIZER_PREFIXES):
            owner, call = OPTIMIZER, False
        else:
            continue
        out.append(Interval((e.time_range.start - origin) / 1e6, (e.time_range.end - origin) / 1e6, owner, call))
    return out, origin


def kernel_intervals(events: Sequence[Any], origin_us: float) -> list[Interval]:
    """GPU kernels, each billed to the module whose op launched it (``linked_correlation_id`` names the op)."""
    host = [e for e in events if e.device_type.name == "CPU"]
    by_id = {e.id: e for e in host if e.id}
    forward_owner: dict[int, str] = {}
    for e in host:
        if e.sequence_nr >= 0 and not e.name.startswith(_BACKWARD):
            owner = _owner_of(e.cpu_parent, {})
            if owner is not None:
                forward_owner.setdefault(e.sequence_nr, owner)
    out = []
    for e in events:
        if e.device_type.name not in ("CUDA", "PrivateUse1", "XPU"):
            continue
        launcher = by_id.get(e.linked_correlation_id) if e.linked_correlation_id else None  # 0: unlinked
        owner = _owner_of(launcher, forward_owner) if launcher is not None else None
        out.append(Interval((e.time_range.start - origin_us) / 1e6, (e.time_range.end - origin_us) / 1e6,
                            owner or OUTSIDE))
    return out


# ---------------------------------------------------------------------------------------------- hooks


@contextmanager
def module_ranges(module: Any) -> Iterator[None]:
    """Forward pre-hooks and hooks that open and close a profiler range per module call, named after the
    module's path in the model (``encoder.layers.0.linear1``; the model itself is ``ROOT``). Deep copies
    made while they are attached (a training workload copies its model in ``setup``) carry them too."""
    import torch

    open_ranges: list[tuple[Any, Any]] = []

    def pre(name: str) -> Callable[..., None]:
        def hook(mod: Any, args: Any) -> None:
            handle = torch.ops.profiler._record_function_enter_new(_PREFIX + name, None)
            open_ranges.append((mod, handle))
        return hook

    def post(mod: Any, args: Any, output: Any) -> None:
        # pop up to and including this module's own range (a child that raised never closed its own)
        while open_ranges:
            owner, handle = open_ranges.pop()
            torch.ops.profiler._record_function_exit._RecordFunction(handle)
            if owner is mod:
                break

    handles = []
    for name, sub in module.named_modules():
        handles.append(sub.register_forward_pre_hook(pre(name or ROOT)))
        handles.append(sub.register_forward_hook(post, always_call=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        while open_ranges:
            torch.ops.profiler._record_function_exit._RecordFunction(open_ranges.pop()[1])


def _resolution(meter: Any) -> float:
    """The coarsest update period among the meter's samplers (how finely power can be told apart)."""
    periods = [float(getattr(s, "resolution_s", 0.0) or 0.0) for s in getattr(meter, "samplers", [])]
    return max(periods, default=0.0)


def _profiled_window(module: Any, work: Callable[[], Any], m: Meter, setup: Callable[[], Any] | None, cuda: bool,
                     repeats: int) -> tuple[Any, list[Any], list[Interval], list[Interval]]:
    """``repeats`` runs of ``work`` in one meter window under ``torch.profiler``: the window's measurement,
    what each run returned, and the host and kernel intervals of each module, on the window's clock."""
    import torch
    from torch.autograd.profiler import profile, record_function

    window = f"layers:{id(module)}:{time.monotonic_ns()}"
    with module_ranges(module):
        if setup is not None:
            setup()
        # torch.autograd.profiler.profile is the kineto profiler that torch.profiler.profile wraps; the wrapper's
        # start asks hasattr(torch, "_inductor"), which imports inductor and dynamo (1.4 s a process on the
        # 2-core machine, more than the profiled window itself) only to read a CUDA-graphs setting
        with profile(use_cpu=True, use_device="cuda" if cuda else None) as prof:
            if cuda:
                torch.cuda.synchronize()
            m.begin(window)
            try:
                wall = time.time()
                with record_function(MARK):
                    done = [work() for _ in range(repeats)]
                    if cuda:
                        torch.cuda.synchronize()
            finally:
                result = m.end(window)
    events = profiled_events(prof)
    host, origin = host_intervals(events)
    shift = wall - result.start_time  # the marker opened this long after the window did
    host = [Interval(i.start + shift, i.end + shift, i.owner, i.call) for i in host]
    kernels = [Interval(i.start + shift, i.end + shift, i.owner) for i in kernel_intervals(events, origin)]
    return result, done, host, kernels


def energy_by_layer(
    module: Any,
    work: Callable[[], Any],
    *,
    meter: Meter | None = None,
    items: float | None = None,
    setup: Callable[[], Any] | None = None,
    device: str | None = None,
    repeats: int = 1,
    **meter_kwargs: Any,
) -> LayerProfile:
    """Run ``work()`` under ``torch.profiler`` in one meter window and attribute the window's energy to the
    modules of ``module``.

    ``work`` is any code that calls the model (a batch of inference, a training step); what it returns is
    its item count when it is a number (or pass ``items``, the count of one call). ``setup`` runs after the
    hooks are attached and before the window, for work that copies the model first. ``meter`` is reused
    when given (the runner passes its own), else one is made with ``meter_kwargs`` and closed. ``device``
    ``"cuda"`` also records GPU kernels and synchronises before the window ends. ``repeats`` runs ``work``
    that many times in the one window (items add up), which steadies the split of short work. The parts
    of the result add up to its ``energy_j``, the window's total.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"energy_by_layer needs a torch.nn.Module, got {type(module).__name__}")
    if repeats < 1:
        raise ConfigError(f"energy_by_layer: repeats must be at least 1, got {repeats}")
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # kineto's start/stop lines would land in the user's output
    from energybench.measuring.meter import Meter

    own = meter is None
    m = meter if meter is not None else Meter(**meter_kwargs)
    try:
        result, done, host, kernels = _profiled_window(module, work, m, setup, (device or "").startswith("cuda"),
                                                       repeats)
    finally:
        if own:
            m.close()
    counted = [float(d) for d in done if isinstance(d, int | float) and d > 0]
    count = items * repeats if items is not None else (sum(counted) if len(counted) == repeats else float(repeats))
    return attribute(result, host, kernels, items=count, resolution_s=_resolution(m))
