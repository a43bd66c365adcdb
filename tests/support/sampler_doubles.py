"""Protocol-level test doubles for the meter: sources with a known truth.

They stand in for hardware in meter tests only; the real samplers have their own tests against fake sysfs
trees and a fake NVML module.
"""

from __future__ import annotations

import threading
import time

from energybench.errors import SamplerError
from energybench.measurement import Measurement
from energybench.samplers.base import BaseSampler, Domain


class ClockCounter(BaseSampler):
    """A cumulative energy counter advancing at ``watts``, wrapping at ``max_j`` (None: never)."""

    kind = "counter"

    def __init__(self, key: str = "cpu:package-0", watts: float = 40.0, max_j: float | None = None,
                 name: str = "clock-counter", resolution_s: float = 0.0, source: str = "measured") -> None:
        self.name = name
        self.key = key
        self.watts = watts
        self.max_j = max_j
        self.resolution_s = resolution_s
        self.source = source
        self.t_start = time.monotonic()
        self.reads = 0

    def domains(self) -> list[Domain]:
        return [Domain(self.key, self.source, "test-clock-counter", max_value=self.max_j)]

    def truth(self, t: float) -> float:
        return self.watts * (t - self.t_start)

    def read(self) -> dict[str, float]:
        self.reads += 1
        energy = self.truth(time.monotonic())
        if self.resolution_s:
            # a counter that only updates every resolution_s, like NVML's
            steps = (time.monotonic() - self.t_start) // self.resolution_s
            energy = self.watts * steps * self.resolution_s
        if self.max_j is not None:
            energy %= self.max_j
        return {self.key: energy}


class ConstantPower(BaseSampler):
    """An instantaneous power source at a fixed wattage (the polling path)."""

    kind = "power"

    def __init__(self, key: str = "gpu:0", watts: float = 100.0, name: str = "constant-power") -> None:
        self.name = name
        self.key = key
        self.watts = watts
        self.reads = 0
        self._lock = threading.Lock()

    def domains(self) -> list[Domain]:
        return [Domain(self.key, "measured", "test-power-polling")]

    def read(self) -> dict[str, float]:
        with self._lock:
            self.reads += 1
        return {self.key: self.watts}


class VanishingCounter(ClockCounter):
    """Works for ``good_reads`` reads, then fails like a GPU that fell off the bus."""

    def __init__(self, good_reads: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.good_reads = good_reads

    def read(self) -> dict[str, float]:
        if self.reads >= self.good_reads:
            self.reads += 1
            raise SamplerError(f"{self.key} is lost (GPU fell off the bus); reboot or reseat the device")
        return super().read()


class RecordingHook:
    """A window hook (``energybench.measuring.meter.WindowHook``) that records which way each window ended."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def finalize(self, result: Measurement) -> Measurement:
        self.calls.append("collective")
        return result

    def finalize_local(self, result: Measurement, reason: str) -> Measurement:
        self.calls.append(f"local: {reason}")
        return result


def recording_hook_factory(meter: object, options: dict) -> RecordingHook | None:
    """A ``WindowHookFactory`` for registry tests: a hook unless ``options["no_hook"]``."""
    return None if options.get("no_hook") else RecordingHook()
