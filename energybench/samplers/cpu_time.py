"""CPU time as the CPU model and the command attribution count it: whose, and on how many CPUs.

* ``busy_cpu_seconds``: the machine's work since boot (``/proc/stat``), guest time not counted twice;
  ``cpus_busy_seconds`` the same over a set of CPUs (the ones this process may run on).
* ``process_tree_cpu_seconds``: this process, its **live** descendants and every child reaped so far. A
  child's CPU time reaches ``RUSAGE_CHILDREN`` only once it is reaped, so counting reaped children alone
  charges a DataLoader worker's or a pool's work to whichever window reaps it (a clean-up window), not
  the one in which it ran. Live descendants are read from ``/proc/<pid>/stat`` (their own time plus what
  they reaped), so the sum carries on smoothly when a child is reaped.
* ``cpu_share``: how many CPUs this process may use (affinity, the cgroup's cpuset, cgroup v1/v2 CPU quota)
  and why: the model's idle floor is that many CPUs, not the host's logical count (a small container on a
  192-thread host would otherwise carry ~142 W of idle floor), and machine-wide busy time is read over the
  same CPUs. The cpuset is what a Slurm job (``ConstrainCores``) or a pinned container is given; it is read
  from the cgroup tree as well as through the affinity, so a job's CPUs are known from its cgroup alone.

The cgroup tree is read under ``/sys/fs/cgroup``, or ``$ENERGYBENCH_CGROUP_ROOT`` (containers that mount the
host's tree elsewhere; tests that lay a fake one).
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")  # guest time is already inside user/nice
try:
    CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):
    CLOCK_TICKS = 100

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_ROOT_ENV = "ENERGYBENCH_CGROUP_ROOT"


# ------------------------------------------------------------------------------------------ machine
def busy_cpu_seconds() -> float:
    """Machine-wide CPU seconds spent working since boot, summed over all logical CPUs.

    Busy = user + nice + system + irq + softirq. Idle and iowait are waiting; steal is time the hypervisor
    gave to other guests (not ours to pay for); guest time is already counted in user/nice on Linux.
    """
    try:  # Linux fast path: the meter may poll this every 10 ms, and psutil's parser costs ~10 us
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()
        if fields[0] == b"cpu":  # user nice system idle iowait irq softirq ...
            return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        pass
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in BUSY_FIELDS)


def cpus_busy_seconds(cpus: Iterable[int], stat: Path = PROC / "stat") -> float:
    """Busy CPU seconds since boot of the given logical CPUs only (their ``cpuN`` lines of /proc/stat)."""
    wanted = {f"cpu{c}".encode() for c in cpus}
    total = 0
    with open(stat, "rb") as fh:
        for line in fh:
            fields = line.split()
            if fields and fields[0] in wanted:
                total += sum(int(fields[i]) for i in (1, 2, 3, 6, 7))
    return total / CLOCK_TICKS


# ------------------------------------------------------------------------------------------ process tree
def _stat(pid: int, proc: Path = PROC) -> tuple[float, int] | None:
    """(utime + stime + cutime + cstime in seconds, start time in ticks) of one process; None when gone."""
    try:
        with open(proc / str(pid) / "stat", "rb") as fh:
            text = fh.read()
        fields = text[text.rindex(b")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
        return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS, int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _stat_times(pid: int, proc: Path = PROC) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 when it is gone)."""
    found = _stat(pid, proc)
    return found[0] if found else 0.0


def live_descendants(pid: int | None = None) -> list[int]:
    """Every live (or not yet reaped) descendant of ``pid`` (default: this process)."""
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def process_tree_cpu_seconds() -> float:
    """CPU seconds of this process (all threads, nanosecond clock), its live descendants, and its reaped
    children: the "process" scope's busy time (see the module docstring)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time() + children.ru_utime + children.ru_stime
    return own + sum(_stat_times(pid) for pid in live_descendants())


class ProcessTreeClock:
    """``process_tree_cpu_seconds`` for a sampler read every 100 ms: finding the descendants scans every
    process on the machine (~1 ms), so the list is refreshed at every window edge (``rescan``, which the
    CPU model's edge hook calls) and at most every ``rescan_s`` in between; reading the known ones' times
    costs microseconds. Edge readings are therefore exact; a child born between edges joins the count at the
    next scan with all of its CPU time, so the count never goes backwards. A pid is trusted only with the
    start time it was found with (a reaped child's pid may be reused by a stranger)."""

    def __init__(self, rescan_s: float = 1.0) -> None:
        self.rescan_s = rescan_s
        self._known: list[tuple[int, int]] = []
        self._scanned = -math.inf

    def rescan(self) -> None:
        known = []
        for pid in live_descendants():
            found = _stat(pid)
            if found is not None:
                known.append((pid, found[1]))
        self._known, self._scanned = known, time.monotonic()

    def __call__(self) -> float:
        if time.monotonic() - self._scanned > self.rescan_s:
            self.rescan()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = time.process_time() + children.ru_utime + children.ru_stime
        for pid, started in self._known:
            found = _stat(pid)
            if found is not None and found[1] == started:
                total += found[0]
        return total


# ------------------------------------------------------------------------------------------ CPU share
@dataclass(frozen=True)
class CpuShare:
    """How many CPUs this process may use, and why (recorded with every CPU-model result)."""

    cpus: float  # min(affinity, cgroup quota)
    logical_cpus: int  # the host's
    affinity: tuple[int, ...]
    quota_cpus: float | None = None  # the tightest cgroup CPU quota, in CPUs
    cgroup: str | None = None  # the directory of the cgroup whose quota binds
    cgroup_version: int | None = None
    basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["affinity"] = list(self.affinity)
        return d


def cpu_share(
    *,
    proc_self: Path = PROC / "self",
    cgroup_root: Path = CGROUP_ROOT,
    affinity: Iterable[int] | None = None,
    logical_cpus: int | None = None,
) -> CpuShare:
    """The CPUs this process may run on (``sched_getaffinity``) capped by the tightest CPU quota of its
    cgroups (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``, up the hierarchy)."""
    logical = logical_cpus or psutil.cpu_count(logical=True) or 1
    if cgroup_root == CGROUP_ROOT and os.environ.get(CGROUP_ROOT_ENV):
        cgroup_root = Path(os.environ[CGROUP_ROOT_ENV])
    if affinity is None:
        try:
            affinity = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            affinity = range(logical)
    allowed = tuple(sorted(affinity)) or tuple(range(logical))
    basis = f"CPU affinity: {len(allowed)} of {logical} logical CPUs"
    cpuset, cpuset_dir, cpuset_version = cgroup_cpuset(proc_self, cgroup_root)
    narrowed = tuple(c for c in allowed if c in set(cpuset or ()))
    if narrowed and len(narrowed) < len(allowed):
        allowed = narrowed
        basis = f"cgroup v{cpuset_version} cpuset: CPUs {cpu_list(allowed)}, {len(allowed)} of {logical} ({cpuset_dir})"
    quota, where, version = _cgroup_quota(proc_self, cgroup_root)
    cpus = float(len(allowed))
    if len(allowed) >= logical:
        basis = f"all {logical} logical CPUs (no affinity or quota limit)"
    if quota is not None and quota < cpus:
        cpus = quota
        basis = f"cgroup v{version} CPU quota of {quota:g} CPUs ({where})"
    return CpuShare(cpus, logical, allowed, quota, where, version, basis)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_lines(proc_self: Path) -> list[tuple[str, list[str], str]]:
    text = _read(proc_self / "cgroup") or ""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[0], [c for c in parts[1].split(",") if c], parts[2]))
    return out


def _walk_up(root: Path, path: str) -> list[Path]:
    """``root/path`` and each parent up to ``root``; if the process's path is not visible under ``root`` (a
    container shows the host's path), just ``root``: it is the container's own cgroup then."""
    here = root / path.lstrip("/")
    if not here.is_dir():
        return [root]
    dirs = [here]
    while here != root and root in here.parents:
        here = here.parent
        dirs.append(here)
    return dirs


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """``0-3,8,10-11`` (the kernel's CPU list format) as sorted CPU numbers; ``()`` for an empty or bad list."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            cpus.update(range(int(first), int(last or first) + 1))
        except ValueError:
            return ()
    return tuple(sorted(cpus))


def cgroup_cpuset(proc_self: Path = PROC / "self", root: Path = CGROUP_ROOT) -> tuple[tuple[int, ...] | None,
                                                                                  str | None, int | None]:
    """The CPUs this process's cgroup may run on (v2 ``cpuset.cpus.effective``, v1 ``cpuset.cpus``, the
    deepest cgroup that states one), its directory and the cgroup version; ``(None, None, None)`` when none."""
    for hierarchy, controllers, path in _cgroup_lines(proc_self):
        if hierarchy == "0" and not controllers:
            dirs, name, version = _walk_up(root, path), "cpuset.cpus.effective", 2
        elif "cpuset" in controllers and (root / "cpuset").is_dir():
            dirs, name, version = _walk_up(root / "cpuset", path), "cpuset.cpus", 1
        else:
            continue
        for directory in dirs:
            cpus = parse_cpu_list(_read(directory / name) or "")
            if cpus:
                return cpus, str(directory), version
    return None, None, None


def _cgroup_quota(proc_self: Path, root: Path) -> tuple[float | None, str | None, int | None]:
    """The tightest CPU quota over this process's cgroups, in CPUs, with its directory and cgroup version."""
    best: tuple[float | None, str | None, int | None] = (None, None, None)

    def consider(cpus: float, where: Path, version: int) -> None:
        nonlocal best
        if cpus > 0 and math.isfinite(cpus) and (best[0] is None or cpus < best[0]):
            best = (cpus, str(where), version)

    for hierarchy, controllers, path in _cgroup_lines(proc_self):
        if hierarchy == "0" and not controllers:  # cgroup v2: cpu.max is "max 100000" or "QUOTA PERIOD"
            for directory in _walk_up(root, path):
                fields = (_read(directory / "cpu.max") or "").split()
                if len(fields) == 2 and fields[0] != "max":
                    try:
                        consider(int(fields[0]) / int(fields[1]), directory, 2)
                    except (ValueError, ZeroDivisionError):
                        continue
        elif "cpu" in controllers:  # cgroup v1: quota -1 means none
            for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
                base = root / mount
                if not base.is_dir():
                    continue
                for directory in _walk_up(base, path):
                    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
                    try:
                        if quota is not None and period is not None and int(quota) > 0:
                            consider(int(quota) / int(period), directory, 1)
                    except (ValueError, ZeroDivisionError):
                        continue
                break
    return best


def machine_busy_reader(share: CpuShare) -> tuple[Callable[[], float], str]:
    """The machine scope's busy-time reader over the same CPUs as the floor, and what it reads.

    With a binding cgroup quota, the cgroup's own CPU usage (the container is "the machine" it may use);
    with an affinity narrower than the host, the busy time of those CPUs; otherwise the whole machine's.
    """
    if share.cgroup is not None and share.quota_cpus is not None and share.quota_cpus == share.cpus:
        reader = _cgroup_usage_reader(Path(share.cgroup), share.cgroup_version)
        if reader is not None:
            return reader, f"CPU usage of cgroup {share.cgroup}"
    if len(share.affinity) < share.logical_cpus:
        cpus = share.affinity
        try:
            cpus_busy_seconds(cpus)
            return (lambda: cpus_busy_seconds(cpus)), f"busy time of CPUs {cpu_list(cpus)} (/proc/stat)"
        except (OSError, ValueError, IndexError):
            pass
    return busy_cpu_seconds, "busy time of every CPU (/proc/stat)"


def _cgroup_usage_reader(directory: Path, version: int | None) -> Callable[[], float] | None:
    """The cgroup's CPU usage in seconds: v2 ``cpu.stat`` ``usage_usec``; v1 ``cpuacct.usage`` (ns), where
    cpuacct is mounted with cpu (``cpu,cpuacct``, as Docker and Kubernetes do). ``None`` when unreadable."""
    if version == 2:
        def reader() -> float:
            for line in (_read(directory / "cpu.stat") or "").splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            raise OSError(f"no usage_usec in {directory / 'cpu.stat'}")
    else:
        def reader() -> float:
            text = _read(directory / "cpuacct.usage")
            if text is None:
                raise OSError(f"cannot read {directory / 'cpuacct.usage'}")
            return int(text) / 1e9
    try:
        reader()
    except (OSError, ValueError):
        return None
    return reader


def cpu_list(cpus: Iterable[int]) -> str:
    """``0-3,8`` from 0, 1, 2, 3, 8 (the kernel's CPU list format)."""
    out: list[str] = []
    for c in sorted(cpus):
        if out and "-" in out[-1] and int(out[-1].split("-")[1]) == c - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{c}"
        elif out and "-" not in out[-1] and int(out[-1]) == c - 1:
            out[-1] = f"{out[-1]}-{c}"
        else:
            out.append(str(c))
    return ",".join(out)
