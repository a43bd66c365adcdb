"""What else the machine did during a round, and whether the two rounds of a trial pair saw the same.

Why pairs, not rounds: a busy machine is the normal case (a CI runner shared with other jobs, a laptop with
a browser open). Trials are interleaved, so a baseline trial and a method trial taken seconds apart share the
load of that moment, and their ratio cancels it. What breaks a pair is load that *changes between its two
sides*: a neighbour that starts or stops, a burst of steal, a throttling event on one side. So a round records
the load around it, and a pair is set aside only when its sides differ (``pair_flags``); a steady neighbour is
a condition of the run, stated with its figures (``describe_condition``), never a reason for silence.

Scope, as ``samplers.cpu_time`` counts the CPU model's time: busy and steal time are read from the
``cpuN`` lines of ``/proc/stat`` for the CPUs this process may run on (affinity narrowed by the cgroup's
cpuset), so twenty busy CPUs elsewhere on a 64-CPU host are not our neighbours; this process's own time
includes its live descendants (DataLoader workers are ours, not neighbours); PSI (``/proc/pressure/cpu``)
says how long some task waited for a CPU; thermal-throttle counters come from sysfs where they exist.
Each read costs microseconds to a millisecond (finding live descendants).
"""

from __future__ import annotations

import glob
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from energybench.samplers.cpu_time import CLOCK_TICKS, ProcessTreeClock, cpu_share

#: A pair's two sides differ materially when the CPUs busy elsewhere differ by this many CPUs, or by this share
#: of the CPUs we may use (whichever is larger: half a CPU matters on 2 CPUs, not on 64)...
PAIR_CPUS = 0.5
PAIR_CPU_SHARE = 0.1
#: ...or when the share of time tasks waited for a CPU (PSI) differs by this much while a neighbour was there
#: (at least ``NEIGHBOUR_CPUS`` on one side: PSI also counts this process's own threads waiting for each other),
PAIR_PRESSURE = 0.10
NEIGHBOUR_CPUS = 0.25
#: or the hypervisor's steal differs by this share of our CPUs' time, or only one side was throttled.
PAIR_STEAL = 0.05
#: When more than this share of a run's trial pairs are set aside, the run says so while it runs.
WARN_SET_ASIDE = 0.25
#: /proc/stat counts whole clock ticks, so a window's busy and steal rates are only known to within a tick at
#: each end of it: a difference between two sides smaller than this many ticks per second of the shorter
#: window is below what was measured (a 20 ms window resolves 1 CPU, not 0.5), and cannot set a pair aside.
RESOLUTION_TICKS = 2.0

PROC_STAT = Path("/proc/stat")
PRESSURE = Path("/proc/pressure/cpu")
_THROTTLE_GLOB = "/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle/*_throttle_count"


@dataclass(frozen=True)
class Snapshot:
    t: float
    busy_s: float | None  # busy CPU-seconds of our CPUs since boot (user+nice+system+irq+softirq)
    steal_s: float | None
    own_s: float  # this process, its live descendants and its reaped children
    pressure_us: float | None  # PSI cpu "some" total, microseconds
    throttles: int | None


def cpus_available() -> int:
    """CPUs this process may run on: its affinity, narrowed by its cgroup's cpuset."""
    return len(cpu_share().affinity) or 1


def cpu_ticks(cpus: Sequence[int], stat: Path = PROC_STAT) -> tuple[float | None, float | None]:
    """(busy, steal) CPU-seconds since boot of the given CPUs, from their ``cpuN`` lines of /proc/stat."""
    wanted = {f"cpu{c}".encode() for c in cpus}
    busy = steal = 0
    found = False
    try:
        with open(stat, "rb") as fh:
            for line in fh:
                fields = line.split()
                if fields and fields[0] in wanted:
                    busy += sum(int(fields[i]) for i in (1, 2, 3, 6, 7))
                    steal += int(fields[8]) if len(fields) > 8 else 0
                    found = True
    except (OSError, ValueError, IndexError):
        return None, None
    return (busy / CLOCK_TICKS, steal / CLOCK_TICKS) if found else (None, None)


def _pressure_us(path: Path) -> float | None:
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("some"):
                    return float(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _throttles(files: Sequence[str]) -> int | None:
    if not files:
        return None
    total = 0
    for path in files:
        try:
            with open(path, encoding="ascii") as fh:
                total += int(fh.read().strip() or 0)
        except (OSError, ValueError):
            continue
    return total


def window_load(start: Snapshot, end: Snapshot, cpus: float) -> dict[str, float]:
    """The load between two snapshots, per second of window: CPUs (ours, other processes'), the busy and steal
    share of our CPUs, PSI, throttling events."""
    elapsed = max(end.t - start.t, 1e-9)
    own = max(0.0, end.own_s - start.own_s) / elapsed
    load: dict[str, float] = {"cpus": float(cpus), "own_cpus": own, "window_s": elapsed}
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


def pair_flags(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[str, ...]:
    """Why the two sides of a trial pair did not see the same machine (empty when they did, or when either
    side's load was not recorded)."""
    out = []
    cpus = max(a.get("cpus", 1.0), b.get("cpus", 1.0))
    tick = _resolution(a, b)  # CPUs; 0 for loads saved before windows recorded their length
    if "other_cpus" in a and "other_cpus" in b:
        step = max(PAIR_CPUS, PAIR_CPU_SHARE * cpus, tick)
        if abs(a["other_cpus"] - b["other_cpus"]) >= step:
            out.append(f"load differs: {a['other_cpus']:.2g} vs {b['other_cpus']:.2g} CPUs busy elsewhere")
    neighbours = max(a.get("other_cpus", 0.0), b.get("other_cpus", 0.0)) >= NEIGHBOUR_CPUS
    if neighbours and "cpu_pressure" in a and "cpu_pressure" in b and \
            abs(a["cpu_pressure"] - b["cpu_pressure"]) >= PAIR_PRESSURE:
        out.append(f"CPU pressure differs: tasks waited {a['cpu_pressure']:.0%} vs {b['cpu_pressure']:.0%} of "
                   "the time")
    if abs(a.get("steal_fraction", 0.0) - b.get("steal_fraction", 0.0)) >= max(PAIR_STEAL, tick / cpus):
        out.append(f"steal differs: {a.get('steal_fraction', 0.0):.0%} vs {b.get('steal_fraction', 0.0):.0%}")
    if (a.get("throttle_events", 0.0) > 0) != (b.get("throttle_events", 0.0) > 0):
        out.append("thermal throttling on one side only")
    return tuple(out)


def _resolution(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """The smallest difference in CPUs busy elsewhere that the shorter of two windows can resolve
    (``RESOLUTION_TICKS``)."""
    windows = [x["window_s"] for x in (a, b) if x.get("window_s", 0.0) > 0]
    return RESOLUTION_TICKS / CLOCK_TICKS / min(windows) if windows else 0.0


def describe_condition(loads: Sequence[Mapping[str, float]]) -> str | None:
    """The load a run was measured under, in words ("about 1 CPU busy elsewhere (of 2)"), from the median over
    its rounds; ``None`` when no round recorded it."""
    others = sorted(x["other_cpus"] for x in loads if "other_cpus" in x)
    if not others:
        return None
    median = others[len(others) // 2]
    cpus = next((x["cpus"] for x in loads if "cpus" in x), None)
    of = f" (of the {cpus:g} this process may use)" if cpus else ""
    if median < 0.25:
        return f"a quiet machine: under a quarter of a CPU busy elsewhere{of}"
    return f"about {median:.1f} CPU{'s' if round(median, 1) != 1 else ''} busy elsewhere{of}"


class Probe:
    """Brackets one round: ``start()`` before its window, ``stop()`` after; returns (load, flags). The flags
    are empty: whether a round can stand in a comparison depends on its pair (``pair_flags``)."""

    def __init__(self, stat: Path = PROC_STAT, pressure: Path = PRESSURE,
                 affinity: Sequence[int] | None = None) -> None:
        share = cpu_share(affinity=affinity) if affinity is not None else cpu_share()
        self.cpus = share.affinity
        self.count = float(len(self.cpus))
        self.stat, self.pressure = stat, pressure
        self.clock = ProcessTreeClock()
        self.throttle_files = glob.glob(_THROTTLE_GLOB) if stat == PROC_STAT else []
        self._start: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        busy, steal = cpu_ticks(self.cpus, self.stat)
        self.clock.rescan()
        return Snapshot(time.monotonic(), busy, steal, self.clock(), _pressure_us(self.pressure),
                        _throttles(self.throttle_files))

    def start(self) -> None:
        self._start = self.snapshot()

    def stop(self) -> tuple[dict[str, float], tuple[str, ...]]:
        if self._start is None:
            return {}, ()
        load = window_load(self._start, self.snapshot(), self.count)
        self._start = None
        return load, ()
