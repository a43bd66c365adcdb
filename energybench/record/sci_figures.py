"""The SCI figures of a run, SCI = (E x I + M) / R per functional unit, derived from its rounds and its
embodied-emission inputs (the method and its sources: ``energybench.carbon.sci``).

They are part of the record package because the run file carries them (for readers with ``jq``), and the
record is the only code that writes a run file; like the benchmarks' ``stats`` they are recomputed on load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from energybench.measurement import JOULES_PER_KWH
from energybench.record.benchmark import Benchmark
from energybench.record.parts import CarbonBasis
from energybench.record.sci import Embodied

__all__ = ["JOULES_PER_KWH", "SECONDS_PER_YEAR", "SciReport", "SciResult", "SciRun", "benchmark_sci", "embodied_g",
           "held_by_benchmark", "run_sci"]

SECONDS_PER_YEAR = 365.25 * 86400.0
#: How a benchmark's time reserved (TiR) was found when the run's wall time is known (``held_by_benchmark``).
HELD = "the run's wall time (idle, set-up, warm-up, trials) shared by measured time"


class SciRun(Protocol):
    """What the SCI needs of a run (``record.Run``): its carbon basis, embodied inputs, benchmarks, label."""

    @property
    def carbon(self) -> CarbonBasis | None: ...

    @property
    def embodied(self) -> Sequence[Embodied]: ...

    @property
    def benchmarks(self) -> Sequence[Benchmark]: ...

    @property
    def label(self) -> str: ...

    @property
    def wall_s(self) -> float | None: ...


def embodied_g(devices: Sequence[Embodied], reserved_s: float) -> float:
    """M in grams for ``reserved_s`` seconds of use: sum of TE x (TiR / EL) x RS."""
    return math.fsum(d.kgco2e * 1000.0 * (reserved_s / (d.lifetime_years * SECONDS_PER_YEAR)) * d.share
                     for d in devices)


@dataclass(frozen=True)
class SciResult:
    """SCI of one benchmark (one workload under one method) per its functional unit."""

    benchmark: str  # Benchmark.key
    method: str
    phase: str
    functional_unit: str
    items: float  # R over all counted rounds
    energy_kwh: float  # E over those rounds (before PUE)
    operational_g: float  # E x I (x PUE), as the rounds measured it
    embodied_g: float | None  # M, None when no device was given
    reserved_s: float  # TiR: the time this benchmark held the machine (see ``run_sci``)
    rounds: int
    reserved_basis: str = "measured rounds only"

    @property
    def operational_per_item_g(self) -> float:
        return self.operational_g / self.items

    @property
    def embodied_per_item_g(self) -> float | None:
        return None if self.embodied_g is None else self.embodied_g / self.items

    @property
    def sci_g(self) -> float:
        """(E x I + M) / R in gCO2e per functional unit (M counted as 0 only when ``complete`` is False)."""
        return (self.operational_g + (self.embodied_g or 0.0)) / self.items

    @property
    def complete(self) -> bool:
        return self.embodied_g is not None

    @property
    def intensity_g_per_kwh(self) -> float:
        """The effective I (grams per kWh of E, PUE included) the rounds were priced at."""
        return self.operational_g / self.energy_kwh if self.energy_kwh > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "method": self.method, "phase": self.phase,
                "functional_unit": self.functional_unit, "items": self.items, "energy_kwh": self.energy_kwh,
                "intensity_g_per_kwh": self.intensity_g_per_kwh, "operational_g": self.operational_g,
                "embodied_g": self.embodied_g, "reserved_s": self.reserved_s, "reserved_basis": self.reserved_basis,
                "rounds": self.rounds,
                "operational_g_per_item": self.operational_per_item_g,
                "embodied_g_per_item": self.embodied_per_item_g, "sci_g_per_item": self.sci_g,
                "complete": self.complete}


@dataclass(frozen=True)
class SciReport:
    """A run's SCI: its inputs (devices, factor kind, PUE) and one result per benchmark."""

    results: tuple[SciResult, ...]
    devices: tuple[Embodied, ...]
    factor_kind: str
    region: str
    pue: float
    run: str = ""  # the run's label, for reports that show several

    @property
    def complete(self) -> bool:
        return bool(self.devices)

    def by_key(self) -> dict[str, SciResult]:
        return {r.benchmark: r for r in self.results}

    def to_dict(self) -> dict[str, Any]:
        return {"formula": "SCI = (E x I + M) / R", "specification": "Green Software Foundation SCI v1.1 "
                "(ISO/IEC 21031:2024)", "factor_kind": self.factor_kind, "region": self.region, "pue": self.pue,
                "complete": self.complete, "per_benchmark": [r.to_dict() for r in self.results]}


def benchmark_sci(bench: Benchmark, devices: Sequence[Embodied], held_s: float | None = None) -> SciResult | None:
    """SCI of one benchmark from its rounds that have both energy and CO2e; ``None`` when none has. ``held_s`` is
    the time it held the machine (``run_sci``); without it, only the measured time of those rounds."""
    rounds = [r for r in bench.rounds if math.isfinite(r.energy_j) and r.co2e_g is not None
              and math.isfinite(r.co2e_g) and r.items > 0]
    if not rounds:
        return None
    measured = math.fsum(r.duration_s for r in rounds)
    reserved = measured if held_s is None else max(held_s, measured)
    return SciResult(
        benchmark=bench.key, method=bench.method, phase=bench.phase,
        functional_unit=bench.item_unit or ("item" if bench.has_items else "call"),
        items=math.fsum(r.items for r in rounds),
        energy_kwh=math.fsum(r.energy_j for r in rounds) / JOULES_PER_KWH,
        operational_g=math.fsum(r.co2e_g for r in rounds if r.co2e_g is not None),
        embodied_g=embodied_g(devices, reserved) if devices else None,
        reserved_s=reserved, rounds=len(rounds),
        reserved_basis=HELD if held_s is not None else "measured rounds only (the run's wall time was not recorded)",
    )


def held_by_benchmark(run: SciRun) -> dict[str, float]:
    """The machine time each benchmark is charged: the run's whole wall time (the hardware was reserved for the
    idle window, set-up and warm-up too, not only the measured rounds), shared in proportion to each
    benchmark's measured time; empty when the run's wall time was not recorded."""
    wall = getattr(run, "wall_s", None)
    if wall is None:
        return {}
    measured = {b.key: math.fsum(r.duration_s for r in b.rounds if math.isfinite(r.duration_s))
                for b in run.benchmarks}
    total = math.fsum(measured.values())
    return {key: wall * seconds / total for key, seconds in measured.items()} if total > 0 else {}


def run_sci(run: SciRun, devices: Sequence[Embodied] | None = None) -> SciReport | None:
    """SCI for every benchmark of ``run`` (its own ``embodied`` unless ``devices`` is given); ``None`` when the
    run has no CO2e (no region or factor was given), since E x I is then unknown."""
    if run.carbon is None:
        return None
    used = tuple(run.embodied if devices is None else devices)
    held = held_by_benchmark(run)
    results = tuple(r for b in run.benchmarks if (r := benchmark_sci(b, used, held.get(b.key))) is not None)
    if not results:
        return None
    return SciReport(results=results, devices=used, factor_kind=run.carbon.factor_kind, region=run.carbon.region,
                     pue=run.carbon.pue, run=run.label)
