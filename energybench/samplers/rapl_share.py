"""This process's share of RAPL energy: the figure ``cpu_scope=process`` can offer on a RAPL machine.

RAPL measures a whole package: every process on the machine. A benchmark asking for process scope would
otherwise silently get the machine's figure, so the powercap sampler in process scope keeps that figure
as it is (it is what the hardware measured) and adds a separate, labelled, uncounted domain
``cpu:process-share``: this process tree's CPU-time share of the package energy above the idle floor,

    share = sum over reads of max(0, dE - floor x dt + carry) x min(1, d(process tree CPU-s) / d(machine busy CPU-s))

where ``carry`` is what the reads before fell short of the floor (<= 0). Why carry it: a counter that updates
late, or a read whose clock is taken late, shows one interval below the floor and the next above it; clamping
each read at zero would keep the excess and drop the shortfall, billing the process for energy the package
never drew above its floor.

This is an attribution (``estimated``), not a measurement. The idle floor is the package's draw with the
machine idle: ``rapl_idle_w`` / ``$ENERGYBENCH_RAPL_IDLE_W``, or measured by ``energybench run``'s idle
window (``set_idle_floor``). Without one the figure is n/a and says why: charging the floor to whichever
process happens to run would bill it for the machine being on.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from energybench.errors import ConfigError
from energybench.integrate import counter_delta
from energybench.samplers.cpu_time import busy_cpu_seconds, process_tree_cpu_seconds

KEY = "cpu:process-share"
METHOD = "rapl-cpu-time-share"
IDLE_ENV = "ENERGYBENCH_RAPL_IDLE_W"
SCOPE_NOTE = (
    "cpu_scope=process does not narrow RAPL: the cpu:package/cpu:dram figures are the whole machine's "
    "(every process); this process tree's CPU-time share of the package energy above the idle floor is the "
    f"separate, uncounted figure {KEY}"
)


def idle_floor_option(options: Mapping[str, Any]) -> tuple[float | None, str]:
    """The RAPL idle floor in watts from ``rapl_idle_w`` or ``$ENERGYBENCH_RAPL_IDLE_W`` (None: not given)."""
    raw, label = options.get("rapl_idle_w"), "option rapl_idle_w"
    if raw is None and os.environ.get(IDLE_ENV, "").strip():
        raw, label = os.environ[IDLE_ENV].strip(), f"${IDLE_ENV}"
    if raw is None:
        return None, ""
    try:
        watts = float(raw)
    except (TypeError, ValueError):
        watts = math.nan
    if not math.isfinite(watts) or watts < 0:
        raise ConfigError(f"{label}={raw!r} must be watts >= 0: the package's draw with the machine idle, e.g. 12")
    return watts, label


class ProcessShare:
    """The running share (see the module docstring), advanced at every read of the package counters."""

    def __init__(
        self,
        keys: list[str],
        max_values: Mapping[str, float | None],
        bound_w: float,
        *,
        idle_w: float | None = None,
        idle_source: str = "",
        clock: Callable[[], float] = time.monotonic,
        process_cpu: Callable[[], float] = process_tree_cpu_seconds,
        machine_busy: Callable[[], float] = busy_cpu_seconds,
    ) -> None:
        self.keys, self.max_values, self.bound_w = keys, dict(max_values), bound_w
        self.idle_w, self.idle_source = idle_w, idle_source
        self._clock, self._process_cpu, self._machine_busy = clock, process_cpu, machine_busy
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, float], float, float] | None = None
        self._joules = 0.0
        self._shortfall = 0.0  # joules the reads so far fell below the floor, not yet made up (<= 0)

    def set_idle(self, watts: float, source: str) -> None:
        with self._lock:
            self.idle_w, self.idle_source = watts, source

    def details(self) -> dict[str, Any]:
        return {
            "basis": f"CPU time of this process tree / busy CPU time of the machine, times the energy of "
                     f"{', '.join(self.keys)} above the idle floor",
            "idle_floor_w": self.idle_w,
            "idle_floor_source": self.idle_source or "none: the figure is n/a",
            "scope": "process",
        }

    def advance(self, counters: Mapping[str, float]) -> float:
        """Cumulative joules after this read (NaN while no idle floor is known)."""
        now, proc, busy = self._clock(), self._process_cpu(), self._machine_busy()
        with self._lock:
            if self._last is not None:
                t0, before, proc0, busy0 = self._last
                dt = max(now - t0, 0.0)
                energy = sum(counter_delta(before[k], counters[k], self.max_values.get(k)).joules
                             for k in self.keys if k in before and k in counters)
                plausible = energy <= self.bound_w * (dt + 0.01)
                d_busy, d_proc = busy - busy0, proc - proc0
                if self.idle_w is not None and plausible and d_busy > 0 and d_proc > 0:
                    above = energy - self.idle_w * dt + self._shortfall
                    self._shortfall = min(0.0, above)
                    self._joules += max(0.0, above) * min(1.0, d_proc / d_busy)
            self._last = (now, dict(counters), proc, busy)
            return self._joules if self.idle_w is not None else math.nan
