"""A fake Linux powercap (RAPL) tree in a temporary directory, for tests of anything that reads RAPL.

Real RAPL hardware cannot exist in CI, so this writes the same files the kernel exposes under
``/sys/class/powercap`` (``name``, ``energy_uj``, ``max_energy_range_uj``, ``constraint_0_max_power_uw``)
and advances ``energy_uj`` at a known power, wrapping at ``max_energy_range_uj`` like the hardware.

Three ways to advance the counters:

* ``tree.advance(seconds)``: deterministic, no thread; exact truth for delta and wrap arithmetic.
* ``tree.start()`` / ``tree.stop()`` (or ``with tree.running():``): a writer thread that sets each counter
  from the wall clock, ``energy = start + power x (now - t_start)`` (wrapped), every ``tick_s``.
  ``tree.total_j(zone)`` is the unwrapped energy the fake hardware has reported so far, and
  ``with tree.frozen():`` pauses the writer so a test can read the sampler and the truth at the same instant.
  A Python writer can be starved of the GIL, so its counters may lag the clock and then jump.
* ``tree.follow_clock()`` then ``tree.sync()`` before every read (a sampler subclass does it): each read sees
  the counter exactly as the clock says at that moment, as RAPL's hardware-updated registers are; for
  tests whose truth must not depend on a thread being scheduled.

Each counter is written atomically (temp file + ``os.replace``) so a reader never sees a half-written
number, as with real sysfs. Use from tests as ``from powercap_tree import FakePowercap`` (the tests
directory is on ``sys.path``) or through the ``powercap_tree`` fixture in ``conftest_powercap.py``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# What a typical Intel package reports: 2**32 - 1 counts of 61 uJ.
DEFAULT_MAX_RANGE_UJ = 262_143_328_850


@dataclass
class FakeZone:
    """One zone of the fake tree: where it lives and how fast its counter runs."""

    zone_id: str
    path: Path
    name: str
    power_w: float
    max_range_uj: int
    start_uj: int
    total_uj: float = 0.0  # unwrapped energy advanced since creation (the truth)

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"

    def counter_uj(self) -> int:
        """The value the hardware shows: start + total, wrapped at the max range."""
        return int(self.start_uj + self.total_uj) % self.max_range_uj


class FakePowercap:
    """Builds and drives a fake powercap tree rooted at ``root`` (e.g. ``tmp_path / "powercap"``)."""

    def __init__(self, root: Path | str, *, control_type: str = "intel-rapl") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.control_type = control_type
        (self.root / control_type).mkdir(exist_ok=True)  # the control-type dir, no counter of its own
        (self.root / control_type / "enabled").write_text("1\n")
        self.zones: dict[str, FakeZone] = {}
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._follow: tuple[dict[str, float], float] = ({}, time.monotonic())
        self.writes = 0

    # -- building -----------------------------------------------------------------------------------

    def add_zone(
        self,
        zone_id: str,
        name: str,
        *,
        power_w: float = 0.0,
        max_range_uj: int = DEFAULT_MAX_RANGE_UJ,
        start_uj: int = 0,
        max_power_w: float | None = None,
    ) -> FakeZone:
        """Add a zone directory (``intel-rapl:0``, ``intel-rapl:0:1``...) with its files."""
        path = self.root / zone_id
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(f"{name}\n")
        (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        (path / "enabled").write_text("1\n")
        if max_power_w is not None:
            (path / "constraint_0_max_power_uw").write_text(f"{int(max_power_w * 1e6)}\n")
        zone = FakeZone(zone_id, path, name, power_w, max_range_uj, start_uj % max_range_uj)
        self.zones[zone_id] = zone
        self._write(zone)
        return zone

    def add_package(
        self,
        index: int,
        power_w: float,
        *,
        core_w: float | None = None,
        uncore_w: float | None = None,
        dram_w: float | None = None,
        max_range_uj: int = DEFAULT_MAX_RANGE_UJ,
        start_uj: int = 0,
        max_power_w: float | None = None,
    ) -> FakeZone:
        """A ``package-N`` zone with optional core/uncore/dram subzones (numbered 0, 1, 2 like Intel); each
        subzone states the same ``max_power_w`` as its package (its ``constraint_0_max_power_uw``)."""
        top = f"{self.control_type}:{index}"
        package = self.add_zone(
            top,
            f"package-{index}",
            power_w=power_w,
            max_range_uj=max_range_uj,
            start_uj=start_uj,
            max_power_w=max_power_w,
        )
        sub = 0
        for name, watts in (("core", core_w), ("uncore", uncore_w), ("dram", dram_w)):
            if watts is not None:
                self.add_zone(f"{top}:{sub}", name, power_w=watts, max_range_uj=max_range_uj, start_uj=start_uj,
                              max_power_w=max_power_w)
                sub += 1
        return package

    def add_psys(self, index: int, power_w: float, *, max_range_uj: int = DEFAULT_MAX_RANGE_UJ) -> FakeZone:
        """The platform zone client chips expose as a top-level ``intel-rapl:N`` named ``psys``."""
        return self.add_zone(f"{self.control_type}:{index}", "psys", power_w=power_w, max_range_uj=max_range_uj)

    def make_unreadable(self, zone_id: str) -> None:
        """Turn ``energy_uj`` into a directory: reading it fails even as root (``chmod 000`` would not)."""
        path = self.zones[zone_id].energy_path
        with self._lock:
            path.unlink(missing_ok=True)
            path.mkdir()
            del self.zones[zone_id]  # the writer leaves it alone from now on

    # -- driving ------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Advance every counter by ``power x seconds`` at once (deterministic, no thread)."""
        with self._lock:
            for zone in self.zones.values():
                zone.total_uj += zone.power_w * seconds * 1e6
                self._write(zone)

    def total_j(self, zone_id: str) -> float:
        """Unwrapped joules the zone has reported since it was created: the truth to compare against."""
        with self._lock:
            return self.zones[zone_id].total_uj / 1e6

    def start(self, tick_s: float = 0.002) -> None:
        """Start the writer thread: counters follow the wall clock at each zone's power."""
        if self._thread is not None:
            return
        self._stop.clear()
        base = {zid: z.total_uj for zid, z in self.zones.items()}
        t_start = time.monotonic()

        def run() -> None:
            while not self._stop.is_set():
                elapsed = time.monotonic() - t_start
                with self._lock:
                    for zid, zone in self.zones.items():
                        zone.total_uj = base.get(zid, 0.0) + zone.power_w * elapsed * 1e6
                        self._write(zone)
                self._stop.wait(tick_s)

        self._thread = threading.Thread(target=run, name="fake-powercap-writer", daemon=True)
        self._thread.start()

    def follow_clock(self) -> None:
        """From now on ``sync()`` sets every counter from the wall clock (no thread)."""
        with self._lock:
            self._follow = ({zid: z.total_uj for zid, z in self.zones.items()}, time.monotonic())

    def sync(self) -> None:
        """Set every counter to what the clock says now (after ``follow_clock()``)."""
        with self._lock:
            base, t_start = self._follow
            elapsed = time.monotonic() - t_start
            for zid, zone in self.zones.items():
                zone.total_uj = base.get(zid, 0.0) + zone.power_w * elapsed * 1e6
                self._write(zone)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None

    @contextlib.contextmanager
    def running(self, tick_s: float = 0.002) -> Iterator[FakePowercap]:
        self.start(tick_s)
        try:
            yield self
        finally:
            self.stop()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Hold the writer between ticks so a reading and ``total_j`` describe the same instant."""
        with self._lock:
            yield

    def _write(self, zone: FakeZone) -> None:
        tmp = zone.path / ".energy_uj.tmp"
        tmp.write_text(f"{zone.counter_uj()}\n")
        os.replace(tmp, zone.energy_path)
        self.writes += 1
