"""A process's counted windows as a meter: rounds of calls priced with one profile, as ``Measurement``s.

The pytest plugin's ``--energy-meter counted`` needs what a sampled meter gives a fixture (a ``Measurement`` per
round, with CO2e) from a process already running under the counted runner. Two things differ from a sampled
meter, and both are decided here so the fixture stays a loop:

* **The calls run inside the meter's window** (``count_round``), not the fixture's: the window must hold the
  calls and nothing else of the harness, and its toggles' cost is taken out by the no-op twin
  (``window.CountedSession.count``).
* **How many calls a window holds is decided by counting, not timing** (``calibrate``): under the simulator
  wall time means nothing, and an iteration count that followed it would differ between runs, moving the
  per-call figure (each window starts with cold caches). The count is the smallest of 1, 2, 5, 10, 20, ...
  whose window holds ``MIN_WINDOW_INSTRUCTIONS``: a coarse grid, so a tiny change of work keeps the same count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from energybench.counted.errors import CountedError
from energybench.counted.profile import Profile
from energybench.counted.result import CountedResult
from energybench.counted.valgrind import RAW_EVENTS, CacheGeometry, find_valgrind, valgrind_version
from energybench.counted.window import CountedSession, WindowHandle

#: A window holds at least this many instructions when the iteration count is calibrated: smaller windows
#: are moved by the harness's allocator noise (docs: "Counted energy", determinism).
MIN_WINDOW_INSTRUCTIONS = 1_000_000
#: The most calls a calibrated window holds (an empty function would otherwise ask for millions).
MAX_CALIBRATED_ITERATIONS = 1000


class CountedMeter:
    """Counted rounds of this process (``CountedSession``), priced with ``profile``; CO2e from ``provider``."""

    samplers: tuple[Any, ...] = ()  # it reads no sampler: a run's machine record lists none

    def __init__(self, session: CountedSession, profile: Profile, provider: Any = None) -> None:
        self.session = session
        self.profile = profile
        self.provider = provider
        path = find_valgrind()
        self.valgrind = valgrind_version(path) if path else "unknown"
        self._open: dict[str, tuple[ExitStack, WindowHandle]] = {}

    @classmethod
    def attach(cls, profile: Profile, provider: Any = None) -> CountedMeter:
        """The meter of this process, or ``CountedError`` saying how to start it under the counted runner."""
        return cls(CountedSession.attach(), profile, provider)

    def calibrate(self, fn: Callable[[], Any], name: str) -> int:
        """Calls per window: one counted call of ``fn`` says how many make ``MIN_WINDOW_INSTRUCTIONS``."""
        probe, _ = self.session.count(fn, 1, name=f"{name} (calibration)", profile=self.profile)
        return calls_for(probe.counts.get("Ir", 0))

    def count_round(self, fn: Callable[[], Any], iterations: int, name: str,
                    warm: Callable[[], Any] | None = None) -> tuple[CountedResult, Any, Any]:
        """Count one round of ``iterations`` calls: its result (counts and joules), its ``Measurement`` and the
        last call's return value."""
        result, value = self.session.count(fn, iterations, name=name, profile=self.profile, warm=warm)
        return result, self.measurement(result), value

    def measurement(self, result: CountedResult) -> Any:
        """The ``Measurement`` of a counted result, with the CO2e of its modeled joules when a region is set."""
        carbon = None
        if self.provider is not None:
            carbon = self.provider.carbon([(result.start_time, result.start_time + result.wall_s, result.energy_j)])
        return result.to_measurement(carbon)

    def begin(self, name: str) -> None:
        """Open a window around whatever runs until ``end(name)`` (pytest-benchmark's rounds with ``--energy``):
        nothing is subtracted, the caller's own loop is counted with the calls."""
        if name in self._open:
            raise CountedError(f"counted window {name!r} is already open: end it before opening it again")
        stack = ExitStack()
        handle = stack.enter_context(self.session.window(name))
        self._open[name] = (stack, handle)

    def end(self, name: str, calls: int = 1) -> CountedResult:
        """Close the window ``begin(name)`` opened; ``calls`` is how many calls it held."""
        if name not in self._open:
            raise CountedError(f"counted window {name!r} was never opened")
        stack, handle = self._open.pop(name)
        stack.close()
        dump = handle.dump
        cache = dump.cache if dump is not None and dump.cache is not None else CacheGeometry()
        counts = {e: int(handle.counts.get(e, 0)) for e in RAW_EVENTS}
        return CountedResult(name, counts, max(1, calls), self.profile, cache, handle.wall_s,
                             start_time=time.time() - handle.wall_s,
                             details={"valgrind": self.valgrind, "tool": "callgrind", "harness_included": True})

    def describe(self) -> dict[str, Any]:
        """What a run file keeps beside the counts, so that they can be re-priced: the whole profile."""
        return {"tool": "callgrind", "valgrind": self.valgrind, "profile": self.profile.to_dict(),
                "min_window_instructions": MIN_WINDOW_INSTRUCTIONS}

    def close(self) -> None:
        for name in list(self._open):  # a window left open by a failed test: close it, drop its counts
            stack, _ = self._open.pop(name)
            stack.close()


def calls_for(instructions_per_call: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... calls whose window holds ``MIN_WINDOW_INSTRUCTIONS``, at most
    ``MAX_CALIBRATED_ITERATIONS``."""
    wanted = MIN_WINDOW_INSTRUCTIONS / max(1, instructions_per_call)
    if wanted <= 1:
        return 1
    decade = 10 ** math.floor(math.log10(wanted))
    for step in (1, 2, 5, 10):
        if decade * step >= wanted:
            return min(MAX_CALIBRATED_ITERATIONS, int(decade * step))
    return MAX_CALIBRATED_ITERATIONS  # pragma: no cover - the loop always returns


def round_record(result: CountedResult) -> dict[str, Any]:
    """The per-event counts a round keeps in the run file (the window's, toggles taken out) next to its
    modeled joules: enough to re-price it with ``energybench.counted.reprice`` and another profile."""
    return {"counts": dict(result.counts), "iterations": result.iterations, "profile": result.profile.name}

