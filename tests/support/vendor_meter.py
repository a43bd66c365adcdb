"""Shared pieces of the vendor samplers' meter tests (AMD, Apple, Intel GPU): the same conditions the NVML and
RAPL samplers are held to in tests/measuring/test_meter_sanity.py and tests/samplers/test_nvml_meter.py."""

from __future__ import annotations

import time
from typing import Any

from energybench.measurement import Measurement
from energybench.measuring.meter import Meter
from energybench.samplers.base import BaseSampler, Domain


class SlowEdge(BaseSampler):
    """A counter whose edge hook takes ``sync_s``, like a CUDA synchronize behind queued kernels."""

    kind = "counter"

    def __init__(self, sync_s: float = 0.2) -> None:
        self.name = "slow-edge"
        self.sync_s = sync_s
        self.t0 = time.monotonic()

    def domains(self) -> list[Domain]:
        return [Domain("acc:0", "measured", "test-slow-edge", counted=False)]

    def on_edge(self) -> None:
        time.sleep(self.sync_s)

    def read(self) -> dict[str, float]:
        return {"acc:0": time.monotonic() - self.t0}


def ticks(samplers: list[Any], clock: Any, n: int, step: float = 0.25,
          before_tick: Any = None) -> Measurement:
    """One window read every ``step`` seconds of ``clock`` (inner windows' edges), ``n`` times; the clock is
    stepped by hand, so the figures are exact and no test depends on timing. ``before_tick(i)`` may change the
    fake hardware before the i-th read."""
    meter = Meter(samplers, counter_interval=3600, interval=3600, clock=clock)
    meter.begin("w")
    for i in range(n):
        clock.t += step
        if before_tick is not None:
            before_tick(i)
        meter.begin("tick")
        meter.end("tick")
    result = meter.end("w")
    meter.close()
    return result


def sampler_warnings(result: Measurement) -> list[str]:
    """Every warning a sampler raised during the window, including those handed to inner windows first."""
    found = list(result.warnings)
    for meta in result.metadata.get("samplers", {}).values():
        found.extend(meta.get("warnings") or [])
    return found


def domain(result: Measurement, key: str) -> Any:
    return next(d for d in result.domains if d.key == key)
