"""What else the machine did during a round: other processes' CPU time, CPU pressure, steal and throttling.

Why: a gate that fires on unchanged code on a busy machine gets switched off. A round taken while
neighbours kept every CPU busy is slower and (with any model that charges the machine's idle floor by
elapsed time) costs more for reasons that have nothing to do with the code. So every measured round records
the machine's load around it, a round taken on a saturated machine is flagged, and comparisons leave flagged
rounds out when enough clean ones remain (``energybench.verdicts.baseline``, ``energybench.verdicts.compare``).

All of it comes from the kernel, read twice per round (microseconds): ``/proc/stat`` (busy and steal ticks),
``/proc/pressure/cpu`` (PSI: the share of time some runnable task waited for a CPU, i.e. demand above the
CPUs), this process's CPU clock, and the thermal-throttle counters where sysfs has them.
"""

from __future__ import annotations

import glob
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass

#: A round is "saturated" when tasks waited for a CPU at least this share of the time (PSI "some"), or, where
#: the kernel has no PSI, when the machine's CPUs were at least this busy...
PRESSURE_LIMIT = 0.10
BUSY_LIMIT = 0.95
#: ...and other processes used at least this many CPUs on average: a neighbour, not our own threads.
NEIGHBOUR_CPUS = 0.25
#: Steal above this share of the CPUs' time means the hypervisor gave our CPUs to other guests.
STEAL_LIMIT = 0.05

try:
    _TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):
    _TICKS = 100


def cpus_available() -> int:
    """CPUs this process may run on (its affinity), not the host's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Snapshot:
    t: float
    busy_s: float | None  # machine-wide busy CPU-seconds (user+nice+system+irq+softirq)
    steal_s: float | None
    own_s: float  # this process and its reaped children
    pressure_us: float | None  # PSI cpu "some" total, microseconds
    throttles: int | None


def _proc_stat() -> tuple[float | None, float | None]:
    try:
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()
        ticks = [int(x) for x in fields[1:9]]
    except (OSError, ValueError, IndexError):
        return None, None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq) / _TICKS, steal / _TICKS


def _pressure_us(path: str = "/proc/pressure/cpu") -> float | None:
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("some"):
                    return float(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


_THROTTLE_FILES = glob.glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle/*_throttle_count")


def _throttles() -> int | None:
    if not _THROTTLE_FILES:
        return None
    total = 0
    for path in _THROTTLE_FILES:
        try:
            with open(path, encoding="ascii") as fh:
                total += int(fh.read().strip() or 0)
        except (OSError, ValueError):
            continue
    return total


def snapshot() -> Snapshot:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, steal = _proc_stat()
    return Snapshot(time.monotonic(), busy, steal, time.process_time() + children.ru_utime + children.ru_stime,
                    _pressure_us(), _throttles())


def window_load(start: Snapshot, end: Snapshot, cpus: int | None = None) -> dict[str, float]:
    """The machine's load between two snapshots, per second of window (CPUs, fractions, counts)."""
    cpus = cpus or cpus_available()
    elapsed = max(end.t - start.t, 1e-9)
    own = max(0.0, end.own_s - start.own_s) / elapsed
    load: dict[str, float] = {"cpus": float(cpus), "own_cpus": own}
    if start.busy_s is not None and end.busy_s is not None:
        busy = max(0.0, end.busy_s - start.busy_s) / elapsed
        load["busy_fraction"] = min(1.0, busy / cpus)
        load["other_cpus"] = max(0.0, busy - own)
    if start.steal_s is not None and end.steal_s is not None:
        load["steal_fraction"] = max(0.0, end.steal_s - start.steal_s) / elapsed / cpus
    if start.pressure_us is not None and end.pressure_us is not None:
        load["cpu_pressure"] = min(1.0, max(0.0, end.pressure_us - start.pressure_us) / 1e6 / elapsed)
    if start.throttles is not None and end.throttles is not None:
        load["throttle_events"] = float(max(0, end.throttles - start.throttles))
    return load


def flags(load: Mapping[str, float]) -> tuple[str, ...]:
    """Why a round taken under this load should not stand in a comparison (empty when it may)."""
    out = []
    others = load.get("other_cpus", 0.0)
    if others >= NEIGHBOUR_CPUS:
        pressure = load.get("cpu_pressure")
        busy = load.get("busy_fraction", 0.0)
        if (pressure is not None and pressure >= PRESSURE_LIMIT) or (pressure is None and busy >= BUSY_LIMIT):
            what = f"tasks waited for a CPU {pressure:.0%} of the time" if pressure is not None else \
                f"the CPUs were {busy:.0%} busy"
            out.append(f"saturated: {what} while other processes used {others:.2g} CPUs")
    if load.get("steal_fraction", 0.0) >= STEAL_LIMIT:
        out.append(f"steal: the hypervisor took {load['steal_fraction']:.0%} of the CPUs' time")
    if load.get("throttle_events", 0.0) > 0:
        out.append(f"throttled: {load['throttle_events']:.0f} thermal throttling event(s)")
    return tuple(out)


class Probe:
    """Brackets one round: ``start()`` before its window, ``stop()`` after; returns (load, flags)."""

    def __init__(self) -> None:
        self._cpus = cpus_available()
        self._start: Snapshot | None = None

    def start(self) -> None:
        self._start = snapshot()

    def stop(self) -> tuple[dict[str, float], tuple[str, ...]]:
        if self._start is None:
            return {}, ()
        load = window_load(self._start, snapshot(), self._cpus)
        self._start = None
        return load, flags(load)
