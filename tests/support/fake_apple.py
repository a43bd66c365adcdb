"""A fake ``zeus_apple_silicon`` module driven by a small trace, with the real binding's call shapes.

Why: the binding only builds and runs on macOS on Apple silicon, yet the Apple sampler must be tested through
the calls it really makes. ``FakeAppleModule`` offers ``AppleEnergyMonitor`` (``get_cumulative_energy``,
``begin_window(key, restart=False)``, ``end_window(key)``) and ``AppleEnergyMetrics`` with the eleven fields of
zeus-apple-silicon 1.1.0; ``tests/samplers/test_apple_sampler.py`` checks those names and parameters against
``tests/support/data/zeus_apple_silicon_api.json``, recorded from the 1.1.0 sources (``bindings/
energy_bindings.hpp``), and against the real module where it imports (a Mac with the ``[apple]`` extra).

Trace: ``{"blocks": {"cpu_total_mj": 4.0, "gpu_mj": 9.0, ...}}`` gives each block's watts (a missing block is
``None``, as on a chip without it); ``start_mj`` its counter at trace time 0; ``resets_at`` trace times where
every counter restarts from 0 (a sleep/wake); ``fail_at_s`` when ``get_cumulative_energy`` starts raising
``RuntimeError``; ``subscription_error`` makes the constructor raise as IOReport's refusal does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

FIELDS = (
    "cpu_total_mj", "efficiency_cores_mj", "performance_cores_mj", "efficiency_cluster_mj",
    "performance_cluster_mj", "efficiency_core_manager_mj", "performance_core_manager_mj", "dram_mj", "gpu_mj",
    "gpu_sram_mj", "ane_mj",
)  # fmt: skip
LIST_FIELDS = {"efficiency_cores_mj", "performance_cores_mj", "efficiency_cluster_mj", "performance_cluster_mj"}

M2_MAX = {"cpu_total_mj": 6.0, "gpu_mj": 14.0, "ane_mj": 0.5, "dram_mj": 1.5, "gpu_sram_mj": 0.2,
          "efficiency_cluster_mj": 0.8, "performance_cluster_mj": 5.0}


class AppleEnergyMetrics:
    """Eleven optional fields in millijoules, ``None`` where the chip lacks the block."""

    def __init__(self) -> None:
        for name in FIELDS:
            setattr(self, name, None)


class FakeAppleModule:
    """Stands in for ``zeus_apple_silicon``: ``{"apple_module": FakeAppleModule(trace, clock)}``."""

    AppleEnergyMetrics = AppleEnergyMetrics

    def __init__(self, trace: dict[str, Any] | None = None, clock: Callable[[], float] | None = None) -> None:
        self.trace = dict(trace or {"blocks": M2_MAX})
        if clock is None:
            origin = time.monotonic()
            clock = lambda: time.monotonic() - origin  # noqa: E731
        self.clock = clock
        module = self

        class AppleEnergyMonitor:
            def __init__(self) -> None:
                if module.trace.get("subscription_error"):
                    raise RuntimeError("Failed to create IOReport subscription.")
                self._windows: dict[str, AppleEnergyMetrics] = {}

            def get_cumulative_energy(self) -> AppleEnergyMetrics:
                return module.metrics(module.clock())

            def begin_window(self, key: str, restart: bool = False) -> None:
                if key in self._windows and not restart:
                    raise RuntimeError("Measurement with specified key already exists.")
                self._windows[key] = self.get_cumulative_energy()

            def end_window(self, key: str) -> AppleEnergyMetrics:
                if key not in self._windows:
                    raise RuntimeError("No measurement with provided key had been started.")
                start, end = self._windows.pop(key), self.get_cumulative_energy()
                out = AppleEnergyMetrics()
                for name in FIELDS:
                    a, b = getattr(start, name), getattr(end, name)
                    if a is not None and b is not None:
                        setattr(out, name, [y - x for x, y in zip(a, b, strict=True)] if name in LIST_FIELDS
                                else b - a)
                return out

        self.AppleEnergyMonitor = AppleEnergyMonitor

    def metrics(self, t: float) -> AppleEnergyMetrics:
        fail = self.trace.get("fail_at_s")
        if fail is not None and t >= fail:
            raise RuntimeError("IOReportCreateSamples returned NULL")
        resets = [r for r in self.trace.get("resets_at", []) if r <= t]
        since = resets[-1] if resets else 0.0
        start = 0.0 if resets else float(self.trace.get("start_mj", 1_000_000))
        out = AppleEnergyMetrics()
        for name, watts in self.trace["blocks"].items():
            if watts is None:
                continue
            value = int(start + watts * (t - since) * 1000)  # W x s = J; 1 mJ steps like IOReport
            setattr(out, name, [value] if name in LIST_FIELDS else value)
        return out
