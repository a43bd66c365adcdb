"""A fake ``/sys/class/drm`` tree with i915/xe hwmon energy counters, for tests of the Intel GPU sampler.

Real Intel GPUs cannot exist in CI, so this writes the files the kernel exposes under
``/sys/class/drm/cardN/device/hwmon/hwmonM/`` (``name``, ``energyK_input`` in microjoules, ``energyK_label``
on xe, ``power1_rated_max`` in microwatts) and advances each counter at a known power with ``advance``, like
``powercap_tree.FakePowercap``. Counters are written atomically (temp file + ``os.replace``), as sysfs never
shows a half-written number. Other drivers (amdgpu) can be laid next to them to check they are left alone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass
class FakeCounter:
    path: Path
    power_w: float
    start_uj: int = 0
    total_uj: float = 0.0  # energy advanced since creation: the truth

    def value_uj(self) -> int:
        return int(self.start_uj + self.total_uj)


class FakeDrm:
    """Builds and drives a fake DRM class tree rooted at ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.counters: dict[str, FakeCounter] = {}  # "card1/energy1" -> counter
        self._hwmon = 0

    def add_card(
        self,
        index: int,
        driver: str = "xe",
        channels: dict[int, tuple[str | None, float]] | None = None,
        *,
        rated_w: float | None = 150.0,
        start_uj: int = 10_000_000,
        gts: dict[int, float] | None = None,
    ) -> Path:
        """A card with one hwmon (``driver``) holding ``channels`` {K: (label or None, watts)}, plus per-tile
        hwmon dirs named ``i915_gtN`` for ``gts`` {N: watts}. Returns the card directory."""
        card = self.root / f"card{index}"
        channels = channels or {1: ("card", 60.0)}
        hwmon = self._new_hwmon(card, driver)
        if rated_w is not None:
            (hwmon / "power1_rated_max").write_text(f"{int(rated_w * 1e6)}\n")
        for channel, (label, watts) in channels.items():
            if label is not None:
                (hwmon / f"energy{channel}_label").write_text(f"{label}\n")
            self._add_counter(f"card{index}/energy{channel}", hwmon / f"energy{channel}_input", watts, start_uj)
        for gt, watts in (gts or {}).items():
            gt_dir = self._new_hwmon(card, f"{driver}_gt{gt}")
            self._add_counter(f"card{index}/gt{gt}", gt_dir / "energy1_input", watts, start_uj)
        (card / "device" / "vendor").write_text("0x8086\n")
        return card

    def add_other_driver(self, index: int, driver: str = "amdgpu") -> None:
        """A card whose hwmon belongs to another driver (amdgpu exposes power, not energy, there)."""
        hwmon = self._new_hwmon(self.root / f"card{index}", driver)
        (hwmon / "power1_average").write_text("45000000\n")
        (hwmon / "energy1_input").write_text("123\n")  # must be ignored: not an i915/xe counter

    def advance(self, seconds: float) -> None:
        for counter in self.counters.values():
            counter.total_uj += counter.power_w * seconds * 1e6
            self._write(counter)

    def set_value(self, name: str, value_uj: int) -> None:
        """Write a raw value (a reset to a low value, a glitch) without touching the truth."""
        self._write_text(self.counters[name].path, str(value_uj))

    def reset(self, name: str) -> None:
        """The driver was reloaded: the counter starts again from zero."""
        counter = self.counters[name]
        counter.start_uj, counter.total_uj = 0, 0.0
        self._write(counter)

    def remove_card(self, index: int) -> None:
        """The device was unbound or unplugged: its sysfs directory is gone."""
        shutil.rmtree(self.root / f"card{index}")
        self.counters = {k: v for k, v in self.counters.items() if not k.startswith(f"card{index}/")}

    def truth_j(self, name: str) -> float:
        return self.counters[name].total_uj / 1e6

    def _new_hwmon(self, card: Path, driver: str) -> Path:
        hwmon = card / "device" / "hwmon" / f"hwmon{self._hwmon}"
        self._hwmon += 1
        hwmon.mkdir(parents=True)
        (hwmon / "name").write_text(f"{driver}\n")
        return hwmon

    def _add_counter(self, name: str, path: Path, watts: float, start_uj: int) -> None:
        self.counters[name] = FakeCounter(path, watts, start_uj)
        self._write(self.counters[name])

    def _write(self, counter: FakeCounter) -> None:
        self._write_text(counter.path, str(counter.value_uj()))

    @staticmethod
    def _write_text(path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(f"{text}\n")
        os.replace(tmp, path)
