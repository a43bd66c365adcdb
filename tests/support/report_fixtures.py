"""Synthetic runs (typed ``energybench.record`` objects) for report tests.

The figures are made up (seeded noise around chosen means) and only exercise the renderers; the README's
screenshot comes from a real run instead.
"""

from __future__ import annotations

import random
from dataclasses import replace

from energybench.record import (
    Benchmark,
    BetweenRuns,
    CarbonBasis,
    Environment,
    Idle,
    Machine,
    Quality,
    Round,
    Run,
    Settings,
)

SUBJECTS = (
    # method spec, registered method, energy scale vs baseline, perplexity
    ("baseline", "baseline", 1.00, 12.3),
    ("pruned-50", "pruning", 0.70, 13.1),
    ("int8-dynamic", "int8-dynamic", 0.55, 12.6),
    ("distilled", "distillation", 0.45, 15.8),
    ("pruned-90", "pruning", 0.80, 19.0),  # dominated: more energy than int8 at worse quality
)


def make_bench(
    name: str,
    method: str,
    scale: float,
    quality: float | None,
    *,
    method_name: str | None = None,
    phase: str = "inference",
    rounds: int = 5,
    seed: int = 0,
    timeline: bool = True,
    spread: float = 0.02,
) -> Benchmark:
    rng = random.Random(f"{name}/{method}/{seed}")
    out_rounds = []
    for i in range(rounds):
        energy = 2.0 * scale * (1 + rng.uniform(-spread, spread))
        duration = 0.5 * scale * (1 + rng.uniform(-spread, spread))
        pkg = energy * 0.88
        tl = ()
        if timeline:
            steps = 20
            tl = tuple(
                (duration * k / steps, {"cpu:package": pkg / duration * (1 + 0.1 * rng.random()),
                                        "cpu:dram": (energy - pkg) / duration})
                for k in range(steps + 1)
            )
        out_rounds.append(Round(index=i, energy_j=energy, duration_s=duration, items=256,
                                co2e_g=energy / 3.6e6 * 56.0, source="estimated",
                                domains={"cpu:package": pkg, "cpu:dram": energy - pkg}, timeline=tl))
    family, _, workload = name.partition("/")
    return Benchmark(
        name=name, method=method, method_name=method_name or method, family=family, workload=workload or name,
        phase=phase, item_unit="token", rounds=tuple(out_rounds),
        quality=Quality("perplexity", quality, higher_is_better=False) if quality is not None else None,
    )


def make_run(
    run_id: str = "0001_main",
    *,
    benchmarks: list[Benchmark] | None = None,
    name: str = "lm/inference-generate",
    seed: int = 0,
    region: str | None = "FRA",
) -> Run:
    if benchmarks is None:
        benchmarks = [make_bench(name, m, scale, q, method_name=t, seed=seed) for m, t, scale, q in SUBJECTS]
    return Run(
        name=run_id.split("_", 1)[-1], run_id=run_id, created="2026-11-28T18:00:00+00:00",
        benchmarks=tuple(benchmarks),
        machine=Machine(hostname="test-host", cpu_model="Test CPU", cpu_count=2, memory_gb=8.0,
                        samplers=({"name": "cpu-model", "source": "estimated", "method": "TDP x (0.1 + 0.9 load^3)",
                                   "domains": ["cpu:package", "cpu:dram"]},),
                        python="3.11.7", torch="2.13.0+cpu", torch_threads=2, platform="Linux"),
        commit={"id": "abc123", "branch": "main", "dirty": False},
        environment=Environment(settings=Settings(threads={"torch": 2})),
        idle=Idle(power_w=3.0, duration_s=1.0, source="estimated"),
        carbon=CarbonBasis(region, 56.0, "test factor", year=2023, method="region") if region else None,
    )


class FakeRegion:
    """Stands in for ``carbon.lookup_region`` results where a test must not depend on codecarbon's data."""

    def __init__(self, name: str, intensity: float) -> None:
        self.name, self.label, self.kind = name, f"{name} grid", "country"
        self.intensity_g_per_kwh, self.year, self.source = intensity, 2023, "fake table"


FAKE_FACTORS = {"FRA": 56.0, "DEU": 380.0, "USA": 370.0, "CHN": 540.0, "IND": 710.0}


def fake_lookup(name: str) -> FakeRegion:
    return FakeRegion(name, FAKE_FACTORS[name])


CLUSTER = (
    # what a real quick run of the LM looks like: half precision and int8 land near the baseline's energy and
    # quality (their labels fought for the same pixels), distillation far away at a much worse perplexity
    ("baseline", "baseline", 1.00, 13.2),
    ("bf16", "bf16", 0.99, 13.21),
    ("fp16", "fp16", 1.01, 13.2),
    ("int8-dynamic", "int8-dynamic", 0.90, 13.25),  # a saving beyond the 5% minimum change, within 1% quality
    ("int8-dynamic-perchannel", "int8-dynamic", 0.92, 13.23),
    ("prune-l1-0.5", "prune-l1", 0.93, 13.9),
    ("prune-structured-0.5", "prune-structured", 0.62, 18.4),
    ("layer-drop-0.5", "layer-drop", 0.55, 21.0),
    ("distill-soft-t2-w0.5-d0.5", "distill-soft", 0.36, 61.0),
    ("distill-hard-w0.5-d0.5", "distill-hard", 0.35, 74.8),
)


def cluster_run(run_id: str = "0001_quick") -> Run:
    """A run whose energy-vs-quality scatter has a tight cluster of four labels (the issue's picture), on a quiet
    machine whose saved runs show a 1% between-run spread."""
    run = make_run(run_id, benchmarks=[make_bench("lm/inference-generate", m, scale, q, method_name=t, rounds=8)
                                       for m, t, scale, q in CLUSTER])
    return replace(run, environment=replace(run.environment, between_runs=BetweenRuns(0.01, "5 saved runs")))


def pytest_run(run_id: str, scale: float = 1.0, *, seed: int = 0, rounds: int = 10) -> Run:
    """A session of the pytest plugin: two tests, one counting no items (its figure is per call) and one
    counting samples; ``scale`` multiplies the energy of both. ``joules`` and ``items`` are per call; each round
    holds its window of 50 calls, as the fixture records it."""
    rng = random.Random(f"{run_id}/{seed}")

    def bench(name: str, joules: float, items: float, unit: str | None) -> Benchmark:
        out = [Round(index=i, energy_j=50 * joules * scale * (1 + rng.uniform(-0.01, 0.01)),
                     duration_s=50 * 0.01 * scale, items=50 * items, source="estimated", iterations=50)
               for i in range(rounds)]
        return Benchmark(name=name, family=name.split("::")[0], workload=name.split("::")[1], item_unit=unit,
                         rounds=tuple(out), extra={"iterations": 50})

    run = make_run(run_id, benchmarks=[bench("test_m.py::test_sum", 2.5e-3, 1, None),
                                       bench("test_m.py::test_batch", 4.0e-2, 64, "sample")])
    return replace(run, kind="pytest")
