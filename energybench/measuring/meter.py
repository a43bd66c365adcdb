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
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from energybench.errors import ConfigError, SamplerError, WindowError
from energybench.measurement import Measurement
from energybench.measuring.window import OpenWindow, Reading, SamplerState, build
from energybench.samplers.base import Sampler

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_INTERVAL_S = 0.1
DEFAULT_COUNTER_INTERVAL_S = 1.0
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


class Meter:
    """Measures named windows over the given (or detected) samplers.

    ``interval`` is the polling period of power-only samplers; ``counter_interval`` is how often counters
    are read in between edges, which catches several wraps in a long window and gives reports a power
    timeline. The polling thread starts with the first window and lives until ``close()``, so a window's
    begin+end never pays for starting a thread; while no window is open it reads nothing. ``hooks``
    replaces the registered window hooks (``[]``: none, even under torch.distributed). ``clock`` stamps
    every reading (``time.monotonic``; tests that step time by hand pass their own). ``wall_clock``
    (``time.time`` with the real clock; none with a clock of one's own unless given) is read at both edges
    too: a window over which the two disagree (a suspended machine, a clock step) has no known duration, so
    its time-based figures are n/a and it is flagged (``record.bounds.clock_problem``).
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
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] | None = None,
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
        self._clock = clock
        self._wall = wall_clock if wall_clock is not None else (time.time if clock is time.monotonic else None)
        self._states = [_state_of(s) for s in samplers]
        # poll counters at least 4x per shortest wrap period, so at most one wrap happens between two reads
        wrap_periods = [
            float(d.details["wrap_period_s_at_max_power"])
            for st in self._states
            for d in st.domains
            if d.details.get("wrap_period_s_at_max_power")
        ]
        self.counter_interval = min([float(counter_interval), *(p / 4 for p in wrap_periods)])
        self._windows: dict[str, OpenWindow] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wall_offset = time.time() - clock()
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
        t_pre, wall_pre = self._clock(), self._wall() if self._wall else None
        start = self._edge_read()
        t0 = min((r.t for r in start.values()), default=self._clock())
        with self._lock:
            self._windows[name] = OpenWindow(name, t0, t0 + self._wall_offset, start, t_pre, wall_pre)
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
        clocks = self._clocks_disagree(window)
        with self._lock:
            del self._windows[name]
            result, spans = build(
                self._states, window, end, provider=self.provider, interval=self.interval,
                wall_offset=self._wall_offset, clocks=clocks,
            )
            self._trim()
        samplers = {st.sampler.name: _safe_metadata(st.sampler, a, b, self._clock) for st, a, b in spans}
        result = replace(result, metadata={"samplers": samplers})
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

    def _clocks_disagree(self, window: OpenWindow) -> str | None:
        """Why the window's duration is unknown: its wall-clock and monotonic spans disagree (or ``None``)."""
        if self._wall is None or window.wall_pre is None:
            return None
        from energybench.record.bounds import clock_problem

        return clock_problem(self._clock() - window.t_pre, self._wall() - window.wall_pre)

    # -- reading ----------------------------------------------------------------------------------------

    def _read(self, state: SamplerState) -> Reading | None:
        """One reading, stamped and stored under the sampler's own lock (see ``SamplerState``)."""
        with state.lock:
            if state.error:
                return None
            began = self._clock()
            try:
                values = _sampler_call(state.sampler.read)
            except SamplerError as exc:
                state.error = str(exc)
                return None
            reading = Reading(self._clock(), dict(values), began)
            with self._lock:
                state.readings.append(reading)
        return reading

    def _edge_read(self) -> dict[str, Reading]:
        """Every sampler's edge hook first (e.g. a CUDA sync, which can take long), then every read back to
        back: an edge is then one instant for all samplers, not spread over the syncs."""
        for state in self._states:
            if not state.error:
                try:
                    _sampler_call(state.sampler.on_edge)
                except SamplerError as exc:
                    with state.lock:
                        state.error = str(exc)
        readings: dict[str, Reading] = {}
        for state in self._states:
            reading = self._read(state)
            if reading is not None:
                readings[state.sampler.name] = reading
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
                    self._read(state)

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


def _sampler_call(fn: Callable[[], Any]) -> Any:
    """Sampler code (a plugin's, maybe) behind ``energybench.plugin_boundary``: any failure is a
    ``SamplerError`` naming the code, so the sampler is left out of the windows with a warning that says why
    (``window.build``) and the other samplers' figures are kept."""
    from energybench import plugin_boundary

    return plugin_boundary.call("it", fn, error=SamplerError)  # "... left out: it raised ValueError: x (in ...)"


def _state_of(sampler: Sampler) -> SamplerState:
    """The meter's hold on one sampler; one whose ``domains()`` fails is held as failed (left out, warned)."""
    try:
        return SamplerState(sampler, list(_sampler_call(sampler.domains)))
    except SamplerError as exc:
        return SamplerState(sampler, [], error=str(exc))


def _registered_hooks(meter: Meter, options: Mapping[str, Any]) -> list[WindowHook]:
    """What ``WINDOW_HOOKS`` gives this meter; a factory's errors (e.g. ranks that never came) propagate."""
    hooks: list[WindowHook | None] = []
    for trigger, spec in WINDOW_HOOKS:
        if trigger in sys.modules:  # a library the program never imported needs no hook
            module, _, attr = spec.partition(":")
            factory: WindowHookFactory = getattr(importlib.import_module(module), attr)
            hooks.append(factory(meter, dict(options)))
    return [hook for hook in hooks if hook is not None]


def _safe_metadata(sampler: Sampler, start: float, end: float, clock: Callable[[], float]) -> dict[str, Any]:
    """Identity, plus activity over exactly this window where the sampler keeps it (GPU utilisation,
    memory): with nested or overlapping windows, "the last window" would be some other window's."""
    try:
        info = dict(sampler.metadata())
        # the protocol's one optional pair: a sampler not derived from BaseSampler may lack it
        window_stats = getattr(sampler, "window_stats", None)
        if window_stats is not None:
            shift = getattr(sampler, "clock", time.monotonic)() - clock()  # its own time source
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
