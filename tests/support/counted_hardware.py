"""Fake RAPL hardware whose energy is a known linear function of the work done, for calibration tests.

Real RAPL cannot exist in CI. This extends the fake powercap tree (``powercap_tree.FakePowercap``) with what
the hardware would do while calibration kernels run: draw an idle floor over time, and add ``sum(events x
joules per event)`` for each batch of kernel calls (``charge``). The counters are still files read by the real
``PowercapSampler``; ``SyncedPowercapSampler`` brings them up to the hardware's clock at every read, as RAPL's
hardware-updated registers are.

The hardware keeps its own time (``VirtualClock``), advanced by the work it is charged for and by idle
waits, and calibration is given the same clock: on a loaded test machine a thread preempted between reading
the counter and reading the wall clock would otherwise charge itself idle joules that never happened.
"""

from __future__ import annotations

from pathlib import Path

from powercap_tree import FakePowercap

from energybench.samplers.powercap import PowercapSampler


class VirtualClock:
    """Seconds that pass only when the fake hardware says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LinearEnergyPowercap(FakePowercap):
    """One package zone at ``idle_w`` (over ``clock``) whose counter also advances by what ``charge`` adds."""

    def __init__(self, root: Path | str, idle_w: float, clock: VirtualClock) -> None:
        super().__init__(root)
        self.clock = clock
        self.idle_w = idle_w
        self.package = self.add_package(0, idle_w)
        self.charged_j = 0.0

    def charge(self, joules: float, seconds: float) -> None:
        """The energy of work just done, on top of the idle draw over the ``seconds`` it took."""
        with self._lock:
            self.clock.advance(seconds)
            self.charged_j += joules
        self.sync()

    def sync(self) -> None:
        """Counter = idle draw over the hardware's time + everything charged."""
        with self._lock:
            self.package.total_uj = (self.idle_w * self.clock() + self.charged_j) * 1e6
            self._write(self.package)


class SyncedPowercapSampler(PowercapSampler):
    """The real sampler, reading a tree that is brought up to the hardware's clock just before each read."""

    def __init__(self, tree: LinearEnergyPowercap) -> None:
        super().__init__(tree.root)
        self.tree = tree

    def read(self) -> dict[str, float]:
        self.tree.sync()
        return super().read()
