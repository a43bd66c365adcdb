"""Sampler plugins with faults real third-party samplers have shown, installed as pip would (an entry point in
the ``energybench.samplers`` group on ``PYTHONPATH``), and the same samplers for in-process meters.

* ``absurd``: a counter in the wrong unit that gains 1e300 J a second;
* ``backwards``: a 10 MJ counter (energy since boot) that steps back 10 kJ every 50 ms and carries on
  from there, as a buggy driver's does: read as a reset it would be 10 MJ in one window.

Neither declares a ``max_power_w``: only the device kind's physical limit (``record.bounds``) stands between
their figures and a results file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from energybench.samplers import BaseSampler, Domain

KEY = "board:rail-0"
WATTS = 10.0


class Absurd(BaseSampler):
    name = "absurd"
    kind = "counter"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.t0 = clock, clock()

    def domains(self) -> list[Domain]:
        return [Domain(KEY, "measured", "absurd-unit")]

    def read(self) -> dict[str, float]:
        return {KEY: 1e300 * (self.clock() - self.t0)}


class Backwards(BaseSampler):
    name = "backwards"
    kind = "counter"

    def __init__(self, clock: Callable[[], float] = time.monotonic, every_s: float = 0.05) -> None:
        self.clock, self.t0, self.every_s = clock, clock(), every_s

    def domains(self) -> list[Domain]:
        return [Domain(KEY, "measured", "backwards-counter")]

    def read(self) -> dict[str, float]:
        elapsed = self.clock() - self.t0
        return {KEY: 1e7 + WATTS * elapsed - 1e4 * (elapsed // self.every_s)}


class Estimate(BaseSampler):
    """A power model's counter (watts x elapsed time), as the CPU estimate is: its figure comes from the clock."""

    name = "estimate"
    kind = "counter"

    def __init__(self, clock: Callable[[], float] = time.monotonic, watts: float = 1.58) -> None:
        self.clock, self.t0, self.watts = clock, clock(), watts

    def domains(self) -> list[Domain]:
        return [Domain("cpu:model", "estimated", "watts-x-time")]

    def read(self) -> dict[str, float]:
        return {"cpu:model": self.watts * (self.clock() - self.t0)}


PLUGIN = '''
from energybench.samplers import Availability, SamplerFactory
from bad_samplers import Absurd, Backwards, KEY

def _factory(name, cls):
    return SamplerFactory(name=name, probe=lambda o: Availability(name, True, "measured", domains=(KEY,)),
                          create=lambda o: [cls()])

ABSURD = _factory("absurd", Absurd)
BACKWARDS = _factory("backwards", Backwards)
'''


def install(target: Path) -> Path:
    """The plugin as ``pip install --target`` lays it out: a module and a ``.dist-info`` with its entry points
    (this support directory must be on ``PYTHONPATH`` too, for ``bad_samplers``)."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "eb_bad_samplers.py").write_text(PLUGIN)
    info = target / "eb_bad_samplers-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eb-bad-samplers\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[energybench.samplers]\nabsurd = eb_bad_samplers:ABSURD\n"
                                           "backwards = eb_bad_samplers:BACKWARDS\n")
    return target
