"""RAPL energy counters through the Linux powercap sysfs interface (``/sys/class/powercap``).

RAPL exposes cumulative microjoule counters (``energy_uj``) per zone, so this is a ``counter`` sampler: the
meter reads it at window edges (exact, no polling) and now and then in between so that a long window that
wraps the counter at ``max_energy_range_uj`` more than once is still right.

Zones and the domain keys they become (``N`` is the package number from the zone's ``name``; on multi-die
parts the kernel names zones ``package-N-die-D`` and ``N`` is then ``N-die-D``):

- ``intel-rapl:N`` named ``package-N`` -> ``cpu:package-N``, counted (the whole socket).
- subzone ``intel-rapl:N:M`` named ``dram`` -> ``cpu:dram-N``, counted (memory is outside the package).
- subzone named ``core`` / ``uncore`` -> ``cpu:package-N:core`` / ``cpu:package-N:uncore``, not counted
  (inside package-N: ``Domain.counted=False``, reported but never added to the total).
- top-level zone named ``psys`` -> ``cpu:psys``, not counted (*): the platform contains package and dram.
- any other zone -> ``cpu:<its name>``, not counted (unknown meaning: reported, never summed).

(*) psys is counted only when the machine exposes no package zone, so that the total is never empty and
never double-counted. ``amd-rapl:...`` zones are read the same way. ``intel-rapl-mmio:...`` zones are
skipped: they are the same package counter read through MMIO, and adding them would count it twice.

The root directory is ``options["powercap_root"]``, else ``$ENERGYBENCH_POWERCAP_ROOT`` (containers mount the
host's sysfs elsewhere), else ``/sys/class/powercap``.

RAPL measures the whole machine whatever ``cpu_scope`` says; in process scope (benchmarks) the sampler says
so in every window and adds this process's CPU-time share of the package energy above the idle floor as a
separate, uncounted ``cpu:process-share`` domain (``energybench.samplers.rapl_share``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energybench.errors import SamplerError
from energybench.samplers import SamplerFactory
from energybench.samplers.base import Availability, BaseSampler, Domain, Kind, Sampler
from energybench.samplers.cpu_time import ProcessTreeClock
from energybench.samplers.rapl_share import IDLE_ENV, SCOPE_NOTE, ProcessShare, idle_floor_option
from energybench.samplers.rapl_share import KEY as SHARE_KEY
from energybench.samplers.rapl_share import METHOD as SHARE_METHOD

NAME = "powercap"
METHOD = "rapl-powercap"
DEFAULT_ROOT = "/sys/class/powercap"
ROOT_ENV = "ENERGYBENCH_POWERCAP_ROOT"
RESOLUTION_S = 0.001  # RAPL updates its counters about every millisecond (Intel SDM, vol. 3B, 15.10)
#: Headroom over a zone's highest ``constraint_*_max_power_uw``: short-term limits (PL2, PL4) let a package
#: draw above its long-term constraint for a while, never several times over.
POWER_HEADROOM = 1.5
#: The most one RAPL zone can draw when the kernel states no limit: three times the highest package TDP
#: shipping in 2026 (500 W server parts). Only impossible readings are caught by it, so it is generous.
PHYSICAL_MAX_W = 1500.0

# A zone directory: "intel-rapl:0", "intel-rapl:0:1", "amd-rapl:1". The hyphenated "intel-rapl-mmio:0" does
# not match on purpose (see module docstring).
_ZONE_RE = re.compile(r"^(?P<ctl>intel-rapl|amd-rapl):(?P<top>\d+)(?::(?P<sub>\d+))?$")
_CONTROL_TYPES = ("intel-rapl", "amd-rapl")
# "package-0", or "package-0-die-1" on multi-die parts (each die has its own counter and is counted).
_PACKAGE_RE = re.compile(r"^package-(\d+(?:-die-\d+)?)$")


@dataclass(frozen=True)
class Zone:
    """One RAPL zone found under the root, and the domain it is reported as."""

    zone_id: str  # directory name, e.g. "intel-rapl:0:2"
    path: Path
    name: str  # content of the zone's ``name`` file, e.g. "package-0", "dram"
    parent: str | None  # zone id of the package for a subzone
    max_range_uj: int | None
    max_power_w: float | None  # constraint_0 (long-term) max power, the zone's rating

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"

    @property
    def power_bound_w(self) -> tuple[float, str]:
        """The most this zone can draw (``Domain.max_power_w``) and where the figure comes from."""
        limits = []
        for path in sorted(self.path.glob("constraint_*_max_power_uw")):
            value = _optional_int(path)
            if value and value > 0:
                limits.append(value / 1e6)
        if limits:
            return max(limits) * POWER_HEADROOM, f"{POWER_HEADROOM:g} x the highest constraint_*_max_power_uw"
        return PHYSICAL_MAX_W, "physical bound (the zone states no max power)"


def resolve_root(options: Mapping[str, Any] | None = None) -> Path:
    """The powercap root: option, then environment variable, then the standard sysfs path."""
    options = options or {}
    root = options.get("powercap_root") or os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    return Path(root)


def permission_message(path: Path | str, root: Path | str | None = None) -> str:
    """The one line a user sees when the counter is root-only (the default since Linux 5.10)."""
    root = root if root is not None else Path(path).parent.parent
    return (
        f"permission denied on {path}: run as root or grant read access "
        f"(sudo chmod a+r {root}/*/energy_uj; root-only since Linux 5.10)"
    )


def _read_text(path: Path) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


def read_energy_uj(path: Path, root: Path | None = None) -> int:
    """Read one ``energy_uj`` file; every failure becomes a ``SamplerError`` whose message says the fix."""
    try:
        text = _read_text(path)
    except PermissionError:
        raise SamplerError(permission_message(path, root)) from None
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise SamplerError(f"cannot read RAPL counter {path}: {reason}; check the powercap zone still exists") from None
    try:
        return int(text)
    except ValueError:
        raise SamplerError(
            f"RAPL counter {path} holds {text[:40]!r}, not microjoules; is this a powercap tree?"
        ) from None


def _optional_int(path: Path) -> int | None:
    try:
        return int(_read_text(path))
    except (OSError, ValueError):
        return None


def _zone_dirs(root: Path) -> dict[str, Path]:
    """Zone id -> directory, from a flat ``/sys/class/powercap`` listing or a nested devices tree.

    ``/sys/class/powercap`` lists every zone flat (symlinks); ``/sys/devices/virtual/powercap`` nests them
    under their control type and package. Walking both shapes and keeping the first path per zone id makes
    either root work without counting a zone twice.
    """
    found: dict[str, Path] = {}

    def walk(directory: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir():
                continue
            if _ZONE_RE.match(entry.name):
                found.setdefault(entry.name, Path(entry.path))
                if depth < 3:
                    walk(Path(entry.path), depth + 1)
            elif entry.name in _CONTROL_TYPES and depth < 3:
                walk(Path(entry.path), depth + 1)

    walk(root, 0)
    return found


def discover_zones(root: Path) -> list[Zone]:
    """Every RAPL zone under ``root`` that has an ``energy_uj`` file, packages before their subzones."""
    zones: list[Zone] = []
    for zone_id, path in sorted(_zone_dirs(root).items(), key=lambda kv: _sort_key(kv[0])):
        if not (path / "energy_uj").exists():
            continue
        match = _ZONE_RE.match(zone_id)
        assert match is not None  # _zone_dirs only keeps matching names
        parent = f"{match['ctl']}:{match['top']}" if match["sub"] is not None else None
        try:
            name = _read_text(path / "name")
        except OSError:
            name = zone_id
        max_power_uw = _optional_int(path / "constraint_0_max_power_uw")
        zones.append(
            Zone(
                zone_id=zone_id,
                path=path,
                name=name,
                parent=parent,
                max_range_uj=_optional_int(path / "max_energy_range_uj"),
                max_power_w=max_power_uw / 1e6 if max_power_uw else None,
            )
        )
    return zones


def _sort_key(zone_id: str) -> tuple[str, int, int]:
    match = _ZONE_RE.match(zone_id)
    assert match is not None
    return (match["ctl"], int(match["top"]), -1 if match["sub"] is None else int(match["sub"]))


def zone_domains(zones: list[Zone]) -> list[tuple[Zone, Domain]]:
    """Map zones to domain keys and decide which ones add up to the total (see the module table)."""
    by_id = {z.zone_id: z for z in zones}
    has_package = any(_PACKAGE_RE.match(z.name) and z.parent is None for z in zones)
    result: list[tuple[Zone, Domain]] = []
    seen: set[str] = set()
    for zone in zones:
        package = _package_index(zone, by_id)
        key, counted, role = _classify(zone, package, has_package)
        if key in seen:  # same domain exposed by two control types: keep the first
            continue
        seen.add(key)
        details: dict[str, Any] = {"zone": zone.zone_id, "zone_name": zone.name, "role": role}
        bound_w, bound_source = zone.power_bound_w
        details["power_bound_w"] = bound_w
        details["power_bound_source"] = bound_source
        if zone.max_range_uj:
            details["max_energy_range_uj"] = zone.max_range_uj
            # How often the meter must read to catch every wrap even at the most the zone can draw; reads
            # further apart make the figure a lower bound.
            details["wrap_period_s_at_max_power"] = zone.max_range_uj / 1e6 / bound_w
        if zone.max_power_w:
            details["max_power_w"] = zone.max_power_w
        domain = Domain(
            key=key,
            source="measured",
            method=METHOD,
            max_value=zone.max_range_uj / 1e6 if zone.max_range_uj else None,
            counted=counted,
            details=details,
            max_power_w=bound_w,
        )
        result.append((zone, domain))
    return result


def _package_index(zone: Zone, by_id: Mapping[str, Zone]) -> str:
    owner = by_id.get(zone.parent) if zone.parent else zone
    if owner is not None:
        match = _PACKAGE_RE.match(owner.name)
        if match:
            return match.group(1)
    zmatch = _ZONE_RE.match(zone.zone_id)
    assert zmatch is not None
    return zmatch["top"]


def _classify(zone: Zone, package: str, has_package: bool) -> tuple[str, bool, str]:
    """(domain key, counted, role) for one zone."""
    name = zone.name.lower()
    if zone.parent is None and _PACKAGE_RE.match(name):
        return f"cpu:package-{package}", True, "package"
    if name == "dram":
        return f"cpu:dram-{package}", True, "dram (outside the package counter)"
    if name == "psys":
        if has_package:
            return "cpu:psys", False, "platform (contains package and dram; not added to the total)"
        return "cpu:psys", True, "platform (no package zone exposed, so it is the total)"
    if zone.parent is not None and name in ("core", "uncore"):
        return f"cpu:package-{package}:{name}", False, f"{name} (inside package-{package}; not added)"
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", zone.name) or zone.zone_id
    return f"cpu:{safe}", False, "unknown zone (reported, not added to the total)"


class PowercapSampler(BaseSampler):
    """Reads every RAPL zone under one powercap root as cumulative joules."""

    name = NAME
    kind: Kind = "counter"
    resolution_s = RESOLUTION_S

    def __init__(
        self, root: Path | str, *, scope: str = "machine", idle_w: float | None = None, idle_source: str = ""
    ) -> None:
        self.root = Path(root)
        zones = discover_zones(self.root)
        if not zones:
            raise SamplerError(f"no RAPL zones under {self.root}: set {ROOT_ENV} to the host's powercap directory")
        self._pairs = zone_domains(zones)
        self._paths = [(d.key, z.energy_path) for z, d in self._pairs]
        self.scope = scope
        self.share: ProcessShare | None = None
        if scope == "process":
            # the share is of the CPU packages' energy: DRAM draws by memory held, not by CPU time
            basis = [d for _, d in self._pairs if d.counted and d.details.get("role", "").startswith(("package",
                                                                                                        "platform"))]
            self._tree_cpu = ProcessTreeClock()
            self.share = ProcessShare(
                [d.key for d in basis], {d.key: d.max_value for d in basis},
                sum(d.max_power_w or PHYSICAL_MAX_W for d in basis), idle_w=idle_w, idle_source=idle_source,
                process_cpu=self._tree_cpu,
            )

    def domains(self) -> list[Domain]:
        found = [d for _, d in self._pairs]
        if self.share is not None:
            found.append(Domain(key=SHARE_KEY, source="estimated", method=SHARE_METHOD, counted=False,
                                details=self.share.details()))
        return found

    def read(self) -> dict[str, float]:
        values = {key: read_energy_uj(path, self.root) / 1e6 for key, path in self._paths}
        if self.share is not None:
            values[SHARE_KEY] = self.share.advance(values)
        return values

    def on_edge(self) -> None:
        """In process scope, find this process's descendants afresh before an edge read (see
        ``cpu_time.ProcessTreeClock``)."""
        if self.share is not None:
            self._tree_cpu.rescan()

    def take_warnings(self) -> list[str]:
        """In process scope, every window says that RAPL is the machine's (a standing condition)."""
        if self.share is None:
            return []
        if self.share.idle_w is None:
            return [f"{SCOPE_NOTE}; it is n/a here: no idle floor known (set {IDLE_ENV} to the package's idle "
                    "watts, or let `energybench run` measure it)"]
        return [SCOPE_NOTE]

    def set_idle_floor(self, idle: Any) -> None:
        """Take the idle floor of the process share from an idle window's ``Measurement`` (``energybench run``
        measures one before its trials)."""
        if self.share is None or idle is None or not idle.duration_s > 0:
            return
        joules = [d.energy_j for d in idle.domains if d.key in self.share.keys]
        if joules and all(math.isfinite(j) for j in joules):
            self.share.set_idle(sum(joules) / idle.duration_s, f"measured idle window of {idle.duration_s:.3g} s")

    def metadata(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "zones": [
                {
                    "zone": z.zone_id,
                    "name": z.name,
                    "domain": d.key,
                    "counted": d.counted,
                    "max_energy_range_uj": z.max_range_uj,
                    "max_power_w": z.max_power_w,
                }
                for z, d in self._pairs
            ],
        }


def probe(options: Mapping[str, Any]) -> Availability:
    """Whether RAPL can be read here; every failure is a stated reason, never an exception."""
    root = resolve_root(options)
    if not root.is_dir():
        hint = (
            "" if str(root) != DEFAULT_ROOT else " (most VMs and containers expose no RAPL; the CPU estimate is used)"
        )
        return Availability(name=NAME, available=False, reason=f"no {root}{hint}")
    zones = discover_zones(root)
    if not zones:
        return Availability(name=NAME, available=False, reason=f"no RAPL zones under {root}")
    for zone in zones:
        try:
            read_energy_uj(zone.energy_path, root)
        except SamplerError as exc:
            return Availability(name=NAME, available=False, reason=str(exc))
    pairs = zone_domains(zones)
    return Availability(
        name=NAME,
        available=True,
        source="measured",
        domains=tuple(d.key for _, d in pairs),
        details={"root": str(root), "zones": [z.zone_id for z, _ in pairs]},
    )


def create(options: Mapping[str, Any]) -> list[Sampler]:
    from energybench.samplers.cpu_model import resolve_scope

    scope = resolve_scope(options)
    idle_w, idle_source = idle_floor_option(options) if scope == "process" else (None, "")
    return [PowercapSampler(resolve_root(options), scope=scope, idle_w=idle_w, idle_source=idle_source)]


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create)
