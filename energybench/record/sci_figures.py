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
           "run_sci"]

SECONDS_PER_YEAR = 365.25 * 86400.0


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
    reserved_s: float  # TiR: measured time of those rounds
    rounds: int

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
                "embodied_g": self.embodied_g, "reserved_s": self.reserved_s, "rounds": self.rounds,
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


def benchmark_sci(bench: Benchmark, devices: Sequence[Embodied]) -> SciResult | None:
    """SCI of one benchmark from its rounds that have both energy and CO2e; ``None`` when none has."""
    rounds = [r for r in bench.rounds if math.isfinite(r.energy_j) and r.co2e_g is not None
              and math.isfinite(r.co2e_g) and r.items > 0]
    if not rounds:
        return None
    reserved = math.fsum(r.duration_s for r in rounds)
    return SciResult(
        benchmark=bench.key, method=bench.method, phase=bench.phase,
        functional_unit=bench.item_unit or ("item" if bench.has_items else "call"),
        items=math.fsum(r.items for r in rounds),
        energy_kwh=math.fsum(r.energy_j for r in rounds) / JOULES_PER_KWH,
        operational_g=math.fsum(r.co2e_g for r in rounds if r.co2e_g is not None),
        embodied_g=embodied_g(devices, reserved) if devices else None,
        reserved_s=reserved, rounds=len(rounds),
    )


def run_sci(run: SciRun, devices: Sequence[Embodied] | None = None) -> SciReport | None:
    """SCI for every benchmark of ``run`` (its own ``embodied`` unless ``devices`` is given); ``None`` when the
    run has no CO2e (no region or factor was given), since E x I is then unknown."""
    if run.carbon is None:
        return None
    used = tuple(run.embodied if devices is None else devices)
    results = tuple(r for b in run.benchmarks if (r := benchmark_sci(b, used)) is not None)
    if not results:
        return None
    return SciReport(results=results, devices=used, factor_kind=run.carbon.factor_kind, region=run.carbon.region,
                     pue=run.carbon.pue, run=run.label)
