"""codecarbon's cpu/gpu/ram columns add up to the round's total: domains inside another (RAPL's core zone) or
reported but not added (the per-vCPU model's DRAM, inside its server share) are not counted twice."""

from __future__ import annotations

import math

import pytest

from energybench.exporters.codecarbon_csv import rows
from energybench.measurement import JOULES_PER_KWH
from energybench.record import Benchmark, Round, Run


def _run(domains: dict[str, float], total: float) -> Run:
    rounds = tuple(Round(index=i, energy_j=total, duration_s=1.0, domains=domains, source="estimated")
                   for i in range(2))
    return Run(name="r", created="2026-12-06T00:00:00+00:00", benchmarks=(Benchmark(name="b", rounds=rounds),))


@pytest.mark.parametrize(("domains", "total", "cpu", "ram"), [
    ({"cpu:server-share": 10.0, "cpu:dram": 1.5}, 10.0, 10.0, 0.0),  # the model's DRAM is inside the share
    ({"cpu:package-0": 8.0, "cpu:core-0": 6.0, "cpu:dram-0": 2.0}, 10.0, 8.0, 2.0),  # RAPL: core inside package
    ({"cpu:package": 7.0, "cpu:dram": 1.0, "gpu:0": 30.0}, 38.0, 7.0, 1.0),
])
def test_parts_add_up_to_the_total(domains, total, cpu, ram):
    row = rows(_run(domains, total))[0]
    kwh = 2 / JOULES_PER_KWH  # two rounds
    assert math.isclose(row["cpu_energy"], cpu * kwh) and math.isclose(row["ram_energy"], ram * kwh)
    parts = row["cpu_energy"] + row["gpu_energy"] + row["ram_energy"]
    assert math.isclose(parts, row["energy_consumed"]) and math.isclose(row["energy_consumed"], total * kwh)
