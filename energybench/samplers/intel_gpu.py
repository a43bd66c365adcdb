"""Intel GPU energy through the Linux hwmon counters of the i915 and xe drivers (``energy*_input``, microjoules).

Discrete Intel GPUs (Arc, Data Center GPU Flex/Max, Battlemage) expose cumulative energy under
``/sys/class/drm/cardN/device/hwmon/hwmonM/energyK_input``. The register behind it is 32 bits wide; the driver
widens it to 64 bits in software and catches one wrap between two reads (``sysfs-driver-intel-i915-hwmon``,
``sysfs-driver-intel-xe-hwmon``), so the file itself never wraps and going backwards means a reset (driver
reload, device reset). This sampler is a ``kind="counter"`` sampler like RAPL, and it tells the meter how often
to read (``wrap_period_s_at_max_power``) so that the driver never misses a wrap of the register.

Counters and the domains they become (``cardN`` is the DRM card):

- the device counter (label ``card``, or an unlabelled ``energy1`` of i915) -> ``gpu:cardN``, counted;
- ``pkg`` (xe: the GPU package inside the card) -> ``gpu:cardN:pkg``, counted only when there is no card one;
- per-tile counters (hwmon named ``i915_gtK``) -> ``gpu:cardN:gtK``, reported, not counted (inside the card);
- any other label -> ``gpu:cardN:<label>``, reported, not counted (unknown meaning).

The root is ``options["drm_root"]``, else ``$ENERGYBENCH_DRM_ROOT``, else ``/sys/class/drm`` (tests lay a fake
tree; containers mount the host's sysfs elsewhere). Other drivers' hwmon directories (amdgpu, nouveau) are left
to their own samplers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energybench.errors import SamplerError
from energybench.samplers import SamplerFactory
from energybench.samplers.base import Availability, BaseSampler, Domain, Kind, Sampler
from energybench.samplers.torch_sync import synchronize_xpu

NAME = "intel-gpu"
METHOD = "hwmon-energy"
DEFAULT_ROOT = "/sys/class/drm"
ROOT_ENV = "ENERGYBENCH_DRM_ROOT"
DRIVERS = ("i915", "xe")
#: The 32-bit energy register at the usual unit of 2**-14 J (61 uJ): what the driver must not miss twice.
HW_WRAP_J = 2**32 * 2**-14
#: The firmware updates the energy register about every millisecond; reads are cheap sysfs reads.
RESOLUTION_S = 0.001
POWER_HEADROOM = 2.0
PHYSICAL_MAX_W = 1000.0
_CARD_RE = re.compile(r"^card\d+$")
_GT_RE = re.compile(r"^(?:i915|xe)_gt(\d+)$")
_ENERGY_RE = re.compile(r"^energy(\d+)_input$")


@dataclass(frozen=True)
class EnergyCounter:
    """One ``energyK_input`` file and the domain it is reported as."""

    key: str
    path: Path
    card: str
    driver: str
    label: str
    counted: bool
    role: str
    max_power_w: float


def resolve_root(options: Mapping[str, Any] | None = None) -> Path:
    options = options or {}
    return Path(options.get("drm_root") or os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _bound_w(hwmon: Path) -> float:
    """Twice the largest rated/limit power the hwmon states (microwatts), else the physical bound."""
    rated = []
    for pattern in ("power*_rated_max", "power*_max", "power*_crit"):
        for path in hwmon.glob(pattern):
            text = _text(path)
            if text and text.isdigit() and int(text) > 0:
                rated.append(int(text) / 1e6)
    return max(rated) * POWER_HEADROOM if rated else PHYSICAL_MAX_W


def _card_counters(card: Path) -> list[tuple[str, str, Path, float]]:
    """(driver, label, path, bound) of every energy counter of one DRM card's Intel hwmon directories."""
    found = []
    for hwmon in sorted((card / "device" / "hwmon").glob("hwmon*")):
        driver = _text(hwmon / "name") or ""
        gt = _GT_RE.match(driver)
        if driver not in DRIVERS and not gt:
            continue
        bound = _bound_w(hwmon)
        for path in sorted(hwmon.glob("energy*_input")):
            match = _ENERGY_RE.match(path.name)
            if not match:
                continue
            channel = int(match.group(1))
            label = (_text(hwmon / f"energy{channel}_label") or ("card" if channel == 1 else f"energy{channel}"))
            found.append((driver, f"gt{gt.group(1)}" if gt else label.lower(), path, bound))
    return found


def discover(root: Path) -> list[EnergyCounter]:
    """Every i915/xe energy counter under ``root``, cards in order, the counted one first."""
    try:
        cards = sorted((p for p in root.iterdir() if _CARD_RE.match(p.name)), key=lambda p: int(p.name[4:]))
    except OSError:
        return []
    counters: list[EnergyCounter] = []
    for card in cards:
        raw = _card_counters(card)
        labels = {label for _, label, _, _ in raw}
        main = "card" if "card" in labels else "pkg" if "pkg" in labels else None
        for driver, label, path, bound in raw:
            if label == main:
                key, counted, role = f"gpu:{card.name}", True, f"{label} (the device's total)"
            elif label.startswith("gt"):
                key, counted, role = f"gpu:{card.name}:{label}", False, f"tile {label[2:]} (inside the card: not added)"
            elif label == "pkg":
                key, counted, role = f"gpu:{card.name}:pkg", False, "GPU package (inside the card: not added)"
            else:
                key, counted, role = f"gpu:{card.name}:{label}", False, "unknown counter (reported, not added)"
            counters.append(EnergyCounter(key, path, card.name, driver, label, counted, role, bound))
    return counters


def permission_message(path: Path, root: Path) -> str:
    return (f"permission denied on {path}: run as root or grant read access (sudo chmod a+r "
            f"{root}/card*/device/hwmon/hwmon*/energy*_input, or a udev rule that does so at boot)")


def read_energy_uj(path: Path, root: Path) -> int:
    """One counter in microjoules; every failure is a ``SamplerError`` whose message says the fix."""
    try:
        text = path.read_text().strip()
    except PermissionError:
        raise SamplerError(permission_message(path, root)) from None
    except FileNotFoundError:
        raise SamplerError(f"{path} vanished: the Intel GPU was unbound, reset or unplugged; check `dmesg` "
                           "(other devices' figures are kept)") from None
    except OSError as exc:
        raise SamplerError(f"cannot read Intel GPU counter {path}: {exc.strerror or exc}; check `dmesg`") from None
    try:
        return int(text)
    except ValueError:
        raise SamplerError(f"Intel GPU counter {path} holds {text[:40]!r}, not microjoules; is this a hwmon "
                           "energy file?") from None


class IntelGpuSampler(BaseSampler):
    """Cumulative joules of every i915/xe energy counter under one DRM root."""

    name = NAME
    kind: Kind = "counter"
    resolution_s = RESOLUTION_S

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.counters = discover(self.root)
        if not self.counters:
            raise SamplerError(f"no i915/xe hwmon energy counter under {self.root}: set {ROOT_ENV} to the host's "
                               "/sys/class/drm")
        self._last: dict[str, float] = {}
        self._notes: list[str] = []
        self._reported = 0

    def domains(self) -> list[Domain]:
        return [
            Domain(key=c.key, source="measured", method=METHOD, max_value=None, counted=c.counted,
                   max_power_w=c.max_power_w,
                   details={"path": str(c.path), "driver": c.driver, "label": c.label, "role": c.role,
                            "hw_wrap_j": HW_WRAP_J, "wrap_period_s_at_max_power": HW_WRAP_J / c.max_power_w,
                            "power_bound_w": c.max_power_w, "resolution_s": RESOLUTION_S})
            for c in self.counters
        ]

    def read(self) -> dict[str, float]:
        values = {}
        for c in self.counters:
            joules = read_energy_uj(c.path, self.root) / 1e6
            last = self._last.get(c.key)
            if last is not None and joules < last:
                self._note(f"{c.key}: hwmon energy counter went backwards ({last:.3f} J -> {joules:.3f} J): the "
                           f"{c.driver} driver was reloaded or the GPU reset; energy before it is missing")
            self._last[c.key] = joules
            values[c.key] = joules
        return values

    def on_edge(self) -> None:
        """Queued XPU work finishes before the edge read."""
        synchronize_xpu()

    def take_warnings(self) -> list[str]:
        """Warnings raised since the last call, each once (all of them stay in ``metadata``)."""
        fresh = self._notes[self._reported:]
        self._reported = len(self._notes)
        return fresh

    def metadata(self) -> dict[str, Any]:
        info: dict[str, Any] = {"root": str(self.root), "counters": [
            {"domain": c.key, "path": str(c.path), "driver": c.driver, "label": c.label, "counted": c.counted}
            for c in self.counters]}
        if self._notes:
            info["warnings"] = list(self._notes)
        return info

    def _note(self, message: str) -> None:
        if message not in self._notes:
            self._notes.append(message)


def probe(options: Mapping[str, Any]) -> Availability:
    """Whether an Intel GPU's hwmon energy can be read here; every failure is a stated reason."""
    root = resolve_root(options)
    if not root.is_dir():
        return Availability(name=NAME, available=False, reason=f"no {root}: no DRM devices here")
    counters = discover(root)
    if not counters:
        return Availability(name=NAME, available=False,
                            reason=f"no Intel GPU with hwmon energy counters under {root} (the i915 or xe driver "
                                   "exposes them for discrete GPUs on Linux 6.2+)")
    for c in counters:
        try:
            read_energy_uj(c.path, root)
        except SamplerError as exc:
            return Availability(name=NAME, available=False, reason=str(exc))
    return Availability(name=NAME, available=True, source="measured", domains=tuple(c.key for c in counters),
                        details={"root": str(root), "drivers": sorted({c.driver for c in counters})})


def create(options: Mapping[str, Any]) -> list[Sampler]:
    return [IntelGpuSampler(resolve_root(options))]


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create)
