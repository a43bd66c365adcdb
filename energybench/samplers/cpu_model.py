"""Estimated CPU and RAM energy for machines without an energy counter (most VMs and containers).

CPU: a linear per-vCPU power model in the style of Cloud Carbon Footprint (CCF),
``P = n_cpu x idle_w + (max_w - idle_w) x busy_cpus``, where ``busy_cpus`` is how many logical CPUs are
busy at that instant. Its time integral is exact from the kernel's cumulative CPU-time counters:

    energy(t) = idle_w x n_cpu x elapsed(t) + (max_w - idle_w) x busy_cpu_seconds(t)

so this is a ``counter`` sampler: read at window edges, no polling thread, no overhead, no sampling error.
``n_cpu`` is the CPUs this process may use (affinity, cgroup CPU quota: ``cpu_time.cpu_share``), not the
host's logical count, and the machine scope's busy time is read over the same CPUs; the process scope
counts this process's live process tree and reaped children (``cpu_time.process_tree_cpu_seconds``).

RAM: ``P = w_per_gb x used_gb`` (used = total - available), integrated with the trapezoid rule between
successive ``read()`` calls inside the sampler, so it too behaves as a counter.

Defaults, all overridable (options beat environment variables; per-vCPU watts beat a TDP):

- ``cpu_idle_w_per_cpu`` / ``$ENERGYBENCH_CPU_IDLE_W``: idle watts per vCPU, default 0.74 (CCF, AWS
  average of SPECpower minimum watts per vCPU).
- ``cpu_max_w_per_cpu`` / ``$ENERGYBENCH_CPU_MAX_W``: fully busy watts per vCPU, default 3.5 (CCF, AWS
  average maximum).
- ``cpu_tdp_w`` / ``$ENERGYBENCH_CPU_TDP_W``: TDP of one package instead; then
  ``max_w = TDP x packages / n_cpu`` and ``idle_w = idle_fraction x max_w``.
- ``cpu_packages`` / ``$ENERGYBENCH_CPU_PACKAGES``: packages the TDP applies to, default: distinct
  ``physical_package_id`` in sysfs, else 1.
- ``cpu_idle_fraction`` / ``$ENERGYBENCH_CPU_IDLE_FRACTION``: idle power over TDP, default 0.1.
- ``dram_w_per_gb`` / ``$ENERGYBENCH_DRAM_W_PER_GB``: watts per GB of used memory, default 0.392 (CCF).

CCF's figures come from SPECpower results (https://www.cloudcarbonfootprint.org/docs/methodology/). The
memory figure is CCF's average of Crucial's "3 W per 8 GB of DDR3/DDR4" (0.375 W/GB, also codecarbon's
pre-3.0 rule) and Micron's DDR4 power note (0.408 W/GB). The 0.1 idle fraction is the zero-load term of
codecarbon's ``TDP x (0.1 + 0.9 x load^3)``; the model here stays linear in load. Every figure this
sampler returns is ``estimated`` and its domains say so, with the constants in their details.

What the CPU figure covers decides its name and whether RAM is added. CCF's per-vCPU watts come from
SPECpower, which measures the whole server at the wall (CPUs, memory, disks, fans, power supply): the figure is
a share of the server, ``cpu:server-share``, and ``cpu:dram`` is reported but not added (memory is already
in it). A TDP describes the packages alone: the figure is ``cpu:package`` and ``cpu:dram`` is added. Files
written before this keep their ``cpu:package`` from per-vCPU watts, with RAM added: read them as such.
"""

from __future__ import annotations

import glob
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from energybench.errors import ConfigError
from energybench.samplers import SamplerFactory
from energybench.samplers.base import Availability, BaseSampler, Domain, Kind, Sampler
from energybench.samplers.cpu_time import (
    BUSY_FIELDS,
    CLOCK_TICKS,
    CpuShare,
    ProcessTreeClock,
    busy_cpu_seconds,
    cpu_share,
    machine_busy_reader,
    process_tree_cpu_seconds,
)

__all__ = ["busy_cpu_seconds", "process_busy_cpu_seconds"]

NAME = "cpu-model"
SERVER_KEY = "cpu:server-share"  # per-vCPU whole-server watts (CCF): memory included
PACKAGE_KEY = "cpu:package"  # from a TDP: the packages alone, memory added
CPU_KEY = SERVER_KEY  # the key of the default constants
DRAM_KEY = "cpu:dram"
CPU_METHOD = "linear-cpu-time-model"
DRAM_METHOD = "used-memory-linear-model"

CCF_IDLE_W_PER_CPU = 0.74
CCF_MAX_W_PER_CPU = 3.5
CCF_DRAM_W_PER_GB = 0.392
DEFAULT_IDLE_FRACTION = 0.1
CCF_SOURCE = "Cloud Carbon Footprint, AWS average of SPECpower min/max watts per vCPU (0.74 W / 3.5 W)"
DRAM_SOURCE = "Cloud Carbon Footprint memory coefficient 0.392 W/GB (mean of Crucial 0.375 and Micron 0.408)"
GB = 1e9

_BUSY_FIELDS = BUSY_FIELDS
_CLOCK_TICKS = CLOCK_TICKS
#: the process scope's busy time (kept under its old name: it now includes live child processes)
process_busy_cpu_seconds = process_tree_cpu_seconds


def process_memory_reader() -> Callable[[], float]:
    """Resident memory of this process, in GB: the "process" scope's share of RAM.

    Returns a reader bound to one ``psutil.Process`` made here: building one costs more than the read
    itself, and the reader runs on every poll."""
    process = psutil.Process()
    return lambda: process.memory_info().rss / GB


def used_memory_gb() -> float:
    """Memory in use machine-wide (total - available), in GB (1e9 bytes): page cache is not counted."""
    try:  # Linux fast path: psutil.virtual_memory() parses all of /proc/meminfo (~27 us a call)
        with open("/proc/meminfo", "rb") as fh:
            head = fh.read(512)
        found = {}
        for line in head.split(b"\n")[:8]:
            key, _, rest = line.partition(b":")
            if key in (b"MemTotal", b"MemAvailable"):
                found[key] = int(rest.split()[0]) * 1024
        if len(found) == 2:
            return (found[b"MemTotal"] - found[b"MemAvailable"]) / GB
    except (OSError, IndexError, ValueError):
        pass
    vm = psutil.virtual_memory()
    return (vm.total - vm.available) / GB


# scope -> (busy CPU-seconds reader, factory of a used-memory reader); the machine scope's busy reader is
# narrowed to the CPUs this process may use by ``create`` (``cpu_time.machine_busy_reader``)
SCOPES: dict[str, tuple[Callable[[], float], Callable[[], Callable[[], float]]]] = {
    "machine": (busy_cpu_seconds, lambda: used_memory_gb),
    "process": (process_tree_cpu_seconds, process_memory_reader),
}


def resolve_scope(options: Mapping[str, Any]) -> str:
    """``machine`` (default: everything the box does) or ``process`` (only this process's CPU time and RSS
    over the machine's idle floor: what benchmarks compare, unmoved by other jobs on a shared machine)."""
    scope = str(options.get("cpu_scope") or os.environ.get("ENERGYBENCH_CPU_SCOPE") or "machine").lower()
    if scope not in SCOPES:
        raise ConfigError(f"CPU model scope {scope!r} is unknown: use 'machine' or 'process' (ENERGYBENCH_CPU_SCOPE)")
    return scope


def cpu_energy_j(
    idle_w_per_cpu: float, max_w_per_cpu: float, n_cpu: float, elapsed_s: float, busy_cpu_s: float
) -> float:
    """Joules of the linear per-vCPU model over ``elapsed_s`` with ``busy_cpu_s`` CPU-seconds of work."""
    return idle_w_per_cpu * n_cpu * elapsed_s + (max_w_per_cpu - idle_w_per_cpu) * busy_cpu_s


def attribute_by_cpu_time(
    machine_energy_j: float, idle_energy_j: float, machine_busy_cpu_s: float, tree_cpu_s: float
) -> float:
    """Joules to charge a process tree for its share of the machine's work over one window.

    The machine's energy splits into an idle floor (drawn whatever runs: ``idle_energy_j``, e.g.
    idle_w x n_cpu x duration) and the dynamic rest, caused by whatever kept CPUs busy. The tree is charged
    the dynamic part in proportion to its CPU time: ``(machine - idle) x tree_cpu_s / machine_busy_cpu_s``.
    That is the energy the machine would not have drawn without the command; the idle floor is not charged,
    because it is paid with or without it (report it next to the attribution, not inside it).

    The share is clamped to [0, 1] (the kernel's tick-based busy counter can lag a child's own accounting
    by a tick), and a window with no busy time or less energy than the floor attributes nothing.
    """
    dynamic = machine_energy_j - idle_energy_j
    if machine_busy_cpu_s <= 0 or dynamic <= 0 or tree_cpu_s <= 0:
        return 0.0
    share = min(1.0, tree_cpu_s / machine_busy_cpu_s)
    return dynamic * share


@dataclass(frozen=True)
class ModelConstants:
    """The model's constants and where each came from (recorded with every result)."""

    idle_w_per_cpu: float
    max_w_per_cpu: float
    n_cpu: float  # the CPUs this process may use (the idle floor is this many): see cpu_time.cpu_share
    dram_w_per_gb: float
    source: str
    dram_source: str
    logical_cpus: int = 0  # the host's, over which a TDP is spread
    cpu_share: dict[str, Any] = field(default_factory=dict)
    whole_server: bool = True  # per-vCPU watts of the whole server (CCF); False: the max came from a TDP

    @property
    def cpu_key(self) -> str:
        """What the CPU figure covers: a share of the whole server, or the packages (see the module docstring)."""
        return SERVER_KEY if self.whole_server else PACKAGE_KEY

    @property
    def idle_power_w(self) -> float:
        """Machine-wide power of the model with every CPU idle."""
        return self.idle_w_per_cpu * self.n_cpu


def _number(options: Mapping[str, Any], key: str, env: str) -> tuple[float | None, str]:
    """A float from options (first) or the environment; (None, "") when neither is set."""
    if options.get(key) is not None:
        raw, label = options[key], f"option {key}"
    elif os.environ.get(env, "").strip():
        raw, label = os.environ[env].strip(), f"${env}"
    else:
        return None, ""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{label}={raw!r} is not a number: give watts as a plain number, e.g. 3.5") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{label}={raw!r} must be a finite number >= 0")
    return value, label


def _packages_from_sysfs() -> int:
    ids = set()
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology/physical_package_id"):
        try:
            with open(path) as fh:
                ids.add(fh.read().strip())
        except OSError:
            continue
    return max(1, len(ids))


def share_for(options: Mapping[str, Any] | None = None) -> CpuShare:
    """This process's CPU share; ``proc_self`` and ``cgroup_root`` options point elsewhere (tests)."""
    options = options or {}
    return cpu_share(
        proc_self=Path(options.get("proc_self") or "/proc/self"),
        cgroup_root=Path(options.get("cgroup_root") or "/sys/fs/cgroup"),
    )


def resolve_constants(
    options: Mapping[str, Any] | None = None, n_cpu: int | None = None, share: CpuShare | None = None
) -> ModelConstants:
    """Constants from options, environment and defaults; a bad value is a ``ConfigError`` naming the fix.

    ``n_cpu`` (tests) stands for a machine of that many CPUs, all usable; otherwise ``share`` (default:
    ``share_for(options)``) says how many CPUs this process may use and the host's logical count.
    """
    options = options or {}
    if share is None:
        share = (CpuShare(float(n_cpu), n_cpu, tuple(range(n_cpu)), basis=f"{n_cpu} CPUs (given)") if n_cpu
                 else share_for(options))
    logical = share.logical_cpus
    idle, idle_label = _number(options, "cpu_idle_w_per_cpu", "ENERGYBENCH_CPU_IDLE_W")
    max_w, max_label = _number(options, "cpu_max_w_per_cpu", "ENERGYBENCH_CPU_MAX_W")
    tdp, tdp_label = _number(options, "cpu_tdp_w", "ENERGYBENCH_CPU_TDP_W")
    sources: list[str] = []
    if tdp is not None and (idle is None or max_w is None):
        if tdp <= 0:
            raise ConfigError(f"{tdp_label} must be > 0 watts (the package TDP, e.g. 125)")
        packages, pkg_label = _number(options, "cpu_packages", "ENERGYBENCH_CPU_PACKAGES")
        if packages is not None and (packages < 1 or packages != int(packages)):
            raise ConfigError(f"{pkg_label}={packages!r} must be a whole number of CPU packages >= 1")
        n_packages = int(packages) if packages is not None else _packages_from_sysfs()
        fraction, frac_label = _number(options, "cpu_idle_fraction", "ENERGYBENCH_CPU_IDLE_FRACTION")
        if fraction is not None and fraction > 1:
            raise ConfigError(f"{frac_label}={fraction!r} must be between 0 and 1 (idle power / TDP, e.g. 0.1)")
        fraction = DEFAULT_IDLE_FRACTION if fraction is None else fraction
        tdp_max = tdp * n_packages / logical
        if max_w is None:
            max_w, max_label = tdp_max, f"TDP {tdp:g} W x {n_packages} package(s) / {logical} CPUs ({tdp_label})"
        if idle is None:
            idle, idle_label = fraction * max_w, f"idle fraction {fraction:g} of max"
    if idle is None:
        idle, idle_label = CCF_IDLE_W_PER_CPU, ""
    if max_w is None:
        max_w, max_label = CCF_MAX_W_PER_CPU, ""
    if max_w <= 0 or max_w < idle:
        raise ConfigError(
            f"CPU model: max {max_w:g} W per CPU must be > 0 and >= idle {idle:g} W per CPU; "
            "fix ENERGYBENCH_CPU_MAX_W / ENERGYBENCH_CPU_IDLE_W (or the cpu_*_w_per_cpu options)"
        )
    if idle_label:
        sources.append(f"idle from {idle_label}")
    if max_label:
        sources.append(f"max from {max_label}")
    if not idle_label or not max_label:
        sources.append(CCF_SOURCE)
    dram, dram_label = _number(options, "dram_w_per_gb", "ENERGYBENCH_DRAM_W_PER_GB")
    return ModelConstants(
        idle_w_per_cpu=idle,
        max_w_per_cpu=max_w,
        n_cpu=share.cpus,
        dram_w_per_gb=CCF_DRAM_W_PER_GB if dram is None else dram,
        source="; ".join(sources),
        dram_source=f"from {dram_label}" if dram_label else DRAM_SOURCE,
        logical_cpus=logical,
        cpu_share=share.to_dict(),
        whole_server=not max_label.startswith("TDP"),
    )


class CpuModelSampler(BaseSampler):
    """Machine-wide estimated CPU and RAM energy as cumulative joules since the sampler was created.

    ``clock``, ``busy`` and ``memory`` default to the real monotonic clock and psutil; tests of the pure
    arithmetic may pass their own.
    """

    name = NAME
    kind: Kind = "counter"

    def __init__(
        self,
        constants: ModelConstants,
        *,
        clock: Callable[[], float] = time.monotonic,
        busy: Callable[[], float] = busy_cpu_seconds,
        memory: Callable[[], float] = used_memory_gb,
        scope: str = "machine",
        busy_basis: str = "",
    ) -> None:
        self.constants = constants
        self.scope = scope
        self._clock, self._busy, self._memory = clock, busy, memory
        self.resolution_s = 1.0 / CLOCK_TICKS if scope == "machine" else 1e-6
        self._lock = threading.Lock()
        self._t0 = self._t_last = clock()
        self._busy0 = busy()
        self._mem_last = memory()
        self._dram_j = 0.0
        c = constants
        self._domains = [
            Domain(
                key=c.cpu_key,
                source="estimated",
                method=CPU_METHOD,
                details={
                    "idle_w_per_cpu": c.idle_w_per_cpu,
                    "max_w_per_cpu": c.max_w_per_cpu,
                    "n_cpu": c.n_cpu,
                    "n_cpu_basis": c.cpu_share.get("basis") or f"{c.n_cpu:g} CPUs",
                    "logical_cpus": c.logical_cpus,
                    "idle_power_w": c.idle_power_w,
                    "formula": "idle_w*n_cpu*elapsed + (max_w-idle_w)*busy_cpu_seconds",
                    "busy_basis": busy_basis or ("this process, its live child processes and its reaped children"
                                                 if scope == "process" else "busy time of every CPU"),
                    "scope": scope,
                    # in process scope every process is charged the machine's idle floor: aggregation
                    # across ranks of one host must count it once
                    **({"host_floor_w": c.idle_power_w} if scope == "process" else {}),
                    "constants_source": c.source,
                    "covers": "a share of the whole server (SPECpower watts per vCPU: memory included)"
                    if c.whole_server else "the CPU packages (from a TDP)",
                },
            ),
            _dram_domain(c, scope),
        ]

    def domains(self) -> list[Domain]:
        return list(self._domains)

    def busy_cpu_seconds(self) -> float:
        """The busy CPU-seconds this sampler's scope counts (the same reader its estimate uses)."""
        return self._busy()

    def on_edge(self) -> None:
        """Before an edge read: find this process's descendants afresh (process scope), so window edges
        count every child, however recently born."""
        rescan = getattr(self._busy, "rescan", None)
        if rescan is not None:
            rescan()

    def read(self) -> dict[str, float]:
        """Cumulative estimated joules; also advances the RAM integral (safe from several threads)."""
        with self._lock:
            now, busy, mem = self._clock(), self._busy(), self._memory()
            dt = max(0.0, now - self._t_last)
            self._dram_j += self.constants.dram_w_per_gb * 0.5 * (mem + self._mem_last) * dt
            self._t_last, self._mem_last = now, mem
            c = self.constants
            cpu_j = cpu_energy_j(c.idle_w_per_cpu, c.max_w_per_cpu, c.n_cpu, now - self._t0, busy - self._busy0)
            return {c.cpu_key: cpu_j, DRAM_KEY: self._dram_j}

    def metadata(self) -> dict[str, Any]:
        return {
            "model": CPU_METHOD,
            "dram_model": DRAM_METHOD,
            "estimated": True,
            "scope": self.scope,
            **asdict(self.constants),
        }


def _dram_domain(c: ModelConstants, scope: str) -> Domain:
    """RAM as watts per GB used: added beside a TDP's packages, reported but not added beside whole-server
    per-vCPU watts, which hold the memory already (see the module docstring)."""
    return Domain(
        key=DRAM_KEY,
        source="estimated",
        method=DRAM_METHOD,
        counted=not c.whole_server,
        details={
            "role": f"inside {SERVER_KEY} (whole-server constants): reported, not added"
            if c.whole_server else "outside the packages: added",
            "w_per_gb": c.dram_w_per_gb,
            "basis": "used memory (total - available), trapezoid between reads"
            if scope == "machine"
            else "resident memory of this process, trapezoid between reads",
            "total_gb": psutil.virtual_memory().total / GB,
            "scope": scope,
            "constants_source": c.dram_source,
        },
    )


def probe(options: Mapping[str, Any]) -> Availability:
    """Available wherever psutil reads CPU times and memory.

    Bad constants are the user's input, not the machine's: the probe still says the model can run here (and
    names the problem in ``details["config_error"]``) so that ``create`` raises the ``ConfigError`` and the
    CLI stops with that one line, instead of the estimate silently disappearing from every result.
    """
    try:
        busy_cpu_seconds()
        used_memory_gb()
    except (OSError, RuntimeError, NotImplementedError) as exc:
        return Availability(name=NAME, available=False, reason=f"psutil cannot read CPU times here: {exc}")
    key = CPU_KEY
    try:
        constants = resolve_constants(options)
        details: dict[str, Any] = {"model": CPU_METHOD, **asdict(constants)}
        key = constants.cpu_key
    except ConfigError as exc:
        details = {"model": CPU_METHOD, "config_error": str(exc)}
    return Availability(name=NAME, available=True, source="estimated", domains=(key, DRAM_KEY), details=details)


def create(options: Mapping[str, Any]) -> list[Sampler]:
    """One sampler (machine or process scope); raises ``ConfigError`` (one line, with the fix) on bad input.

    The idle floor covers the CPUs this process may use; in machine scope the busy time is read over the
    same CPUs (or the cgroup's usage when its quota binds), so floor and work describe one machine.
    """
    scope = resolve_scope(options)
    busy, memory_reader = SCOPES[scope]
    share = share_for(options)
    basis = ""
    if scope == "machine":
        busy, basis = machine_busy_reader(share)
    else:
        busy = ProcessTreeClock()  # rescanned at every edge (on_edge), cheap in between
    constants = resolve_constants(options, share=share)
    return [CpuModelSampler(constants, busy=busy, memory=memory_reader(), scope=scope, busy_basis=basis)]


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create, fallback_for="cpu")
