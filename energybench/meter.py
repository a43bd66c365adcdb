"""Measurement windows over a set of samplers.

The meter owns time: it reads counter samplers synchronously at window edges (exact and free), polls
power-only samplers in one background thread, and turns both into a ``Measurement`` per window. Windows are
named and may nest or overlap, because real code measures an epoch inside a run inside a job.

A *window hook* (``WindowHook``) is a step every window's result passes through as it ends: the one built in
aggregates windows across torch.distributed ranks. That code sits above the meter (it reads the meter's carbon
settings), so the meter declares the protocol and imports no implementation: ``Meter(hooks=[...])`` takes them
from the caller, else ``WINDOW_HOOKS`` names factories as ``"module:attribute"`` (like
``samplers.BUILTIN_FACTORIES``), each imported only once the program itself has imported its trigger module
(no process group exists before ``torch.distributed`` is imported). A plain ``measure()`` thus never loads
distributed code, and the factory decides whether it applies (a process group is up), so users set nothing.
"""

from __future__ import annotations

import functools
import importlib
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from energybench.errors import ConfigError, IntensityDataError, SamplerError, WindowError
from energybench.integrate import accumulate_counter, energy_between, thin, trapezoid
from energybench.measurement import CarbonInfo, DomainEnergy, Measurement
from energybench.samplers.base import Domain, Sampler

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_INTERVAL_S = 0.1
DEFAULT_COUNTER_INTERVAL_S = 1.0
_RESOLUTION_FACTOR = 5  # a window shorter than this many counter updates is flagged as unreliable
_BODY_RAISED = "the window's body raised on this rank"

# (trigger module, "module:attribute" of a WindowHookFactory): see the module docstring
WINDOW_HOOKS: tuple[tuple[str, str], ...] = (("torch.distributed", "energybench.distributed.hook:window_hook"),)


class WindowHook(Protocol):
    """A step every window's result passes through as the window ends, e.g. aggregation across ranks."""

    def finalize(self, result: Measurement) -> Measurement:
        """The result of a window that ended normally; may be collective (every rank calls it)."""
        ...

    def finalize_local(self, result: Measurement, reason: str) -> Measurement:
        """The same without communicating, for a window whose body raised here: waiting for peers would
        hold the real exception back."""
        ...


WindowHookFactory = Callable[["Meter", Mapping[str, Any]], "WindowHook | None"]


@dataclass
class _Reading:
    t: float  # monotonic seconds
    values: dict[str, float]


@dataclass
class _Window:
    name: str
    t0: float
    wall0: float
    start: dict[str, _Reading]  # sampler name -> edge reading
    t_pre: float = 0.0  # just before the start edge's reads: samplers' own samples from then on belong here


@dataclass
class _SamplerState:
    sampler: Sampler
    domains: list[Domain]
    readings: list[_Reading] = field(default_factory=list)  # polls and edges, trimmed to open windows
    error: str | None = None


class Meter:
    """Measures named windows over the given (or detected) samplers.

    ``interval`` is the polling period of power-only samplers; ``counter_interval`` is how often counters
    are read in between edges, which catches several wraps in a long window and gives reports a power
    timeline. The polling thread starts with the first window and lives until ``close()``, so a window's
    begin+end never pays for starting a thread; while no window is open it reads nothing. ``hooks``
    replaces the registered window hooks (``[]``: none, even under torch.distributed).
    """

    def __init__(
        self,
        samplers: Sequence[Sampler] | None = None,
        *,
        region: str | None = None,
        intensity: float | str | None = None,
        intensity_csv: str | None = None,
        pue: float | str = 1.0,
        intensity_kind: str | None = None,
        intensity_provider: str | None = None,
        intensity_api_url: str | None = None,
        interval: float = DEFAULT_INTERVAL_S,
        counter_interval: float = DEFAULT_COUNTER_INTERVAL_S,
        options: Mapping[str, Any] | None = None,
        hooks: Sequence[WindowHook] | None = None,
    ) -> None:
        for label, value in (("interval", interval), ("counter interval", counter_interval)):
            if not isinstance(value, int | float) or not value > 0 or math.isinf(value):
                raise ConfigError(f"{label} must be a positive number of seconds, got {value!r} (e.g. 0.1)")
        from energybench.carbon import resolve_provider

        self.provider = resolve_provider(region=region, intensity=intensity, intensity_csv=intensity_csv, pue=pue,
                                         intensity_kind=intensity_kind, intensity_provider=intensity_provider,
                                         intensity_api_url=intensity_api_url)
        if samplers is None:
            from energybench.samplers import detect_samplers

            samplers = detect_samplers(options or {})
        self.interval = float(interval)
        self._states = [_SamplerState(s, list(s.domains())) for s in samplers]
        # poll counters at least 4x per shortest wrap period, so at most one wrap happens between two reads
        wrap_periods = [
            float(d.details["wrap_period_s_at_max_power"])
            for st in self._states
            for d in st.domains
            if d.details.get("wrap_period_s_at_max_power")
        ]
        self.counter_interval = min([float(counter_interval), *(p / 4 for p in wrap_periods)])
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wall_offset = time.time() - time.monotonic()
        self._closed = False
        self.hooks: list[WindowHook] = list(hooks) if hooks is not None else _registered_hooks(self, options or {})

    # -- public API -------------------------------------------------------------------------------------

    @property
    def samplers(self) -> list[Sampler]:
        return [s.sampler for s in self._states]

    def begin(self, name: str = "window") -> None:
        """Open window ``name``: read every counter now."""
        if self._closed:
            raise WindowError("this meter is closed; create a new Meter to measure again")
        with self._lock:
            if name in self._windows:
                raise WindowError(f"window {name!r} is already open; end it first or use another name")
        if self.provider is not None:
            now = time.time()
            self.provider.check_covers(now, now)  # a stale intensity series fails before the work, not after
        t_pre = time.monotonic()
        start = self._edge_read()
        t0 = min((r.t for r in start.values()), default=time.monotonic())
        with self._lock:
            self._windows[name] = _Window(name, t0, t0 + self._wall_offset, start, t_pre)
        self._ensure_thread()

    def end(self, name: str = "window", *, collective: bool = True) -> Measurement:
        """Close window ``name`` and return what it measured.

        ``collective=False`` skips cross-rank aggregation under torch.distributed: used when the window's
        body raised on this rank, so the real exception is not held back waiting for ranks that moved on.
        """
        with self._lock:
            window = self._windows.get(name)
        if window is None:
            open_names = ", ".join(sorted(self._windows)) or "none"
            raise WindowError(
                f"window {name!r} was never begun (open windows: {open_names}); call begin({name!r}) first"
            )
        end = self._edge_read()
        with self._lock:
            del self._windows[name]
            result = self._build(window, end)
            self._trim()
        for hook in self.hooks:
            result = hook.finalize(result) if collective else hook.finalize_local(result, _BODY_RAISED)
        return result

    @contextmanager
    def window(self, name: str = "window") -> Iterator[WindowHandle]:
        """``with meter.window("train") as w: ...`` then ``w.result``; the result is kept on error too."""
        handle = WindowHandle(name)
        self.begin(name)
        try:
            yield handle
        except BaseException:
            handle.result = self.end(name, collective=False)
            raise
        handle.result = self.end(name)

    def close(self) -> None:
        self._stop_thread()
        for state in self._states:
            try:
                state.sampler.close()
            except Exception:  # closing must never mask the measurement
                pass
        self._closed = True

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------------

    def _read(self, state: _SamplerState, edge: bool) -> _Reading | None:
        if state.error:
            return None
        try:
            if edge:
                state.sampler.on_edge()
            values = state.sampler.read()
        except SamplerError as exc:
            state.error = str(exc)
            return None
        return _Reading(time.monotonic(), dict(values))

    def _edge_read(self) -> dict[str, _Reading]:
        readings: dict[str, _Reading] = {}
        for state in self._states:
            reading = self._read(state, edge=True)
            if reading is not None:
                readings[state.sampler.name] = reading
                with self._lock:
                    state.readings.append(reading)
        return readings

    def _needs_thread(self) -> bool:
        return any(not s.error for s in self._states)

    def _ensure_thread(self) -> None:
        if self._thread is not None or not self._needs_thread():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="energybench-poller", daemon=True)
        self._thread.start()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _poll(self) -> None:
        """Background polling: power samplers every ``interval``, counters every ``counter_interval``."""
        has_power = any(s.sampler.kind == "power" for s in self._states)
        tick = min(self.interval, self.counter_interval) if has_power else self.counter_interval
        next_counter = time.monotonic() + self.counter_interval
        while not self._stop.wait(tick):
            if not self._windows:  # the thread outlives windows so begin/end stay cheap; idle, it only ticks
                continue
            now = time.monotonic()
            counters_due = now >= next_counter
            if counters_due:
                next_counter = now + self.counter_interval
            for state in self._states:
                if state.sampler.kind == "power" or counters_due:
                    reading = self._read(state, edge=False)
                    if reading is not None:
                        with self._lock:
                            state.readings.append(reading)

    def _trim(self) -> None:
        """Forget readings older than every open window (keep one before, for interpolation)."""
        if not self._windows:
            for state in self._states:
                state.readings.clear()
            return
        oldest = min(w.t0 for w in self._windows.values())
        for state in self._states:
            keep = [i for i, r in enumerate(state.readings) if r.t >= oldest]
            first = max(0, keep[0] - 1) if keep else len(state.readings)
            del state.readings[:first]

    # -- building results -------------------------------------------------------------------------------

    def _build(self, window: _Window, end: dict[str, _Reading]) -> Measurement:
        t1 = max((r.t for r in end.values()), default=time.monotonic())
        duration = max(t1 - window.t0, 0.0)
        domains: list[DomainEnergy] = []
        warnings: list[str] = []
        grid: set[float] = {window.t0, t1}
        series_by_state: list[tuple[_SamplerState, list[_Reading]]] = []
        for state in self._states:
            name = state.sampler.name
            in_window = [r for r in state.readings if window.t0 <= r.t <= t1]
            start_reading = window.start.get(name)
            if state.sampler.kind == "counter":
                if start_reading is None or name not in end:
                    warnings.append(self._lost_warning(state))
                    continue
                if in_window and in_window[0] is not start_reading:
                    in_window.insert(0, start_reading)
                grid.update(r.t for r in in_window)
            else:
                if not in_window or name not in end:
                    if state.error:
                        warnings.append(self._lost_warning(state))
                        continue
            series_by_state.append((state, in_window))
            notes: dict[str, list[str]] = {}
            for dom in state.domains:
                energy, note = self._domain_energy(state, dom, in_window, window.t0, t1)
                if note:
                    notes.setdefault(note, []).append(dom.key)
                details = dict(dom.details)
                if state.sampler.kind == "power":
                    details.setdefault("interval_s", self.interval)
                domains.append(
                    DomainEnergy(
                        key=dom.key,
                        energy_j=energy,
                        source=dom.source,
                        method=dom.method,
                        sampler=name,
                        counted=dom.counted,
                        details=details,
                    )
                )
            warnings.extend(f"{', '.join(keys)}: {note}" for note, keys in notes.items())
        for state in self._states:
            warnings.extend(f"{state.sampler.name}: {w}" for w in state.sampler.take_warnings())
        if self.provider is None:
            warnings.append("no CO2e: no region given (pass region=/--region, or an intensity factor)")
        timeline, segments = self._timeline(series_by_state, sorted(grid), window.t0)
        carbon = self._carbon(segments, window, duration, domains, warnings)
        metadata = {"samplers": {s.sampler.name: _safe_metadata(s.sampler, window.t_pre, t1) for s in self._states}}
        return Measurement(
            name=window.name,
            start_time=window.wall0,
            duration_s=duration,
            domains=tuple(domains),
            carbon=carbon,
            warnings=tuple(warnings),
            metadata=metadata,
            timeline=tuple(timeline),
        )

    def _domain_energy(
        self, state: _SamplerState, dom: Domain, readings: list[_Reading], t0: float, t1: float
    ) -> tuple[float, str | None]:
        values = [r.values[dom.key] for r in readings if dom.key in r.values]
        if state.sampler.kind == "power":
            times = [r.t for r in readings if dom.key in r.values]
            if len(times) < 2:
                return math.nan, f"fewer than 2 power samples in {t1 - t0:.3g} s; measure longer"
            return trapezoid(times, values, t0, t1), None
        total = accumulate_counter(values, dom.max_value)
        resolution = float(state.sampler.resolution_s or 0.0)
        if resolution > 0 and (t1 - t0) < _RESOLUTION_FACTOR * resolution:
            if total.joules == 0:
                return math.nan, (
                    f"window {t1 - t0:.3g} s is shorter than the counter's update period "
                    f"({resolution:g} s) and read 0 J; measure a longer window or more iterations"
                )
            return total.joules, (
                f"window {t1 - t0:.3g} s spans few counter updates ({resolution:g} s each): "
                "expect up to one update of error; measure longer for a precise figure"
            )
        if total.resets:
            return total.joules, (
                f"counter went backwards {total.resets}x (driver reload?): figure is a lower bound"
            )
        return total.joules, None

    def _lost_warning(self, state: _SamplerState) -> str:
        keys = ", ".join(d.key for d in state.domains)
        return f"{keys}: sampler {state.sampler.name} failed mid-run and is left out: {state.error}"

    def _timeline(
        self, series: list[tuple[_SamplerState, list[_Reading]]], grid: list[float], t0: float
    ) -> tuple[list[tuple[float, dict[str, float]]], list[tuple[float, float, float]]]:
        """Mean power per domain between grid points (counter reads), and joules per segment for carbon.

        Each counted domain's series becomes an ``integrate.energy_between`` curve, cut at the grid. Long,
        finely polled windows are thinned (``integrate.thin``) so results files stay small.
        """
        grid = thin(grid)
        curves: list[tuple[str, Callable[[float, float], float]]] = []
        for state, readings in series:
            for dom in (d for d in state.domains if d.counted):
                pts = [(r.t, r.values[dom.key]) for r in readings if dom.key in r.values]
                if len(pts) >= 2:
                    times, values = [p[0] for p in pts], [p[1] for p in pts]
                    power = state.sampler.kind == "power"
                    curves.append((dom.key, energy_between(times, values, power=power, max_value=dom.max_value)))
        timeline: list[tuple[float, dict[str, float]]] = []
        segments: list[tuple[float, float, float]] = []
        for a, b in zip(grid, grid[1:], strict=False):
            if b <= a:
                continue
            watts_by_key = {key: energy(a, b) / (b - a) for key, energy in curves}
            timeline.append((b - t0, watts_by_key))
            segments.append((a + self._wall_offset, b + self._wall_offset, sum(watts_by_key.values()) * (b - a)))
        return timeline, segments

    def _carbon(
        self,
        segments: list[tuple[float, float, float]],
        window: _Window,
        duration: float,
        domains: list[DomainEnergy],
        warnings: list[str],
    ) -> CarbonInfo | None:
        if self.provider is None:
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
            return self.provider.carbon(segments)
        except IntensityDataError as exc:  # the joules stand without grams; losing them would be worse
            warnings.append(f"no CO2e: {exc}")
            return None


def _registered_hooks(meter: Meter, options: Mapping[str, Any]) -> list[WindowHook]:
    """What ``WINDOW_HOOKS`` gives this meter; a factory's errors (e.g. ranks that never came) propagate."""
    hooks: list[WindowHook | None] = []
    for trigger, spec in WINDOW_HOOKS:
        if trigger in sys.modules:  # a library the program never imported needs no hook
            module, _, attr = spec.partition(":")
            factory: WindowHookFactory = getattr(importlib.import_module(module), attr)
            hooks.append(factory(meter, dict(options)))
    return [hook for hook in hooks if hook is not None]


def _safe_metadata(sampler: Sampler, start: float, end: float) -> dict[str, Any]:
    """Identity, plus activity over exactly this window where the sampler keeps it (GPU utilisation,
    memory): with nested or overlapping windows, "the last window" would be some other window's."""
    try:
        info = dict(sampler.metadata())
        # the protocol's one optional pair: a sampler not derived from BaseSampler may lack it
        window_stats = getattr(sampler, "window_stats", None)
        if window_stats is not None:
            shift = getattr(sampler, "clock", time.monotonic)() - time.monotonic()  # its own time source
            stats = window_stats(start + shift, end + shift)
            if stats is not None:
                info["window"] = stats
        return info
    except Exception as exc:  # identity is nice to have; it must not cost the figures
        return {"error": f"metadata unavailable: {exc}"}


class WindowHandle:
    """What ``with meter.window(...)`` yields; ``result`` is set when the window ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.result: Measurement | None = None


class measure:  # noqa: N801 - used like a function: ``with energybench.measure(...)`` / ``@measure(...)``
    """Measure a block or every call of a function.

    >>> with measure(region="FRA") as m:   # doctest: +SKIP
    ...     work()
    >>> print(m.result)                    # doctest: +SKIP

    As a decorator, each call is its own window; ``fn.results`` keeps them all, ``fn.last_result`` the latest.
    A ``Meter`` can be passed to share samplers (and their detection cost) between many windows.
    """

    def __init__(self, name: str = "measure", *, meter: Meter | None = None, **meter_kwargs: Any) -> None:
        self.name = name
        self._meter = meter
        self._owns_meter = meter is None
        self._meter_kwargs = meter_kwargs
        self.result: Measurement | None = None

    def _get_meter(self) -> Meter:
        if self._meter is None:
            self._meter = Meter(**self._meter_kwargs)
        return self._meter

    def __enter__(self) -> measure:
        self._get_meter().begin(self.name)
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        meter = self._get_meter()
        try:
            self.result = meter.end(self.name, collective=exc_type is None)
        finally:
            if self._owns_meter:
                meter.close()
                self._meter = None

    def __call__(self, fn: F) -> F:
        results: list[Measurement] = []

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            meter = self._get_meter()
            window = fn.__qualname__ if self.name == "measure" else self.name  # the default name says nothing
            handle = WindowHandle(window)
            try:
                with meter.window(window) as handle:  # the one place the collective/local rule lives
                    return fn(*args, **kwargs)
            finally:
                if handle.result is not None:
                    self.result = handle.result
                    results.append(handle.result)
                    wrapper.last_result = handle.result  # type: ignore[attr-defined]

        wrapper.results = results  # type: ignore[attr-defined]
        wrapper.last_result = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]
