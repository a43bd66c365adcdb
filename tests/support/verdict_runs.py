"""Simulated runs for verdict tests: a baseline and methods with known true ratios, trials interleaved."""

from __future__ import annotations

import math
import random

from energybench.record import BASELINE, Benchmark, Machine, Round, Run


def simulated_run(rng: random.Random, ratios: dict[str, float], n: int = 12, noise: float = 0.03,
                  run_effect: float = 0.0, machine: Machine | None = None, name: str = "suite") -> Run:
    """One run of a workload ``w``: a baseline and methods with true ``ratios``; every trial shares a drift of
    the machine (both sides), each method's ratio moves by a run effect of standard deviation ``run_effect``
    (what differs between runs), and each window scatters by ``noise``."""
    drifts = [math.exp(rng.gauss(0, 0.1)) for _ in range(n)]
    benches = [Benchmark(name="w", method=BASELINE, rounds=tuple(
        Round(index=t, energy_j=d * math.exp(rng.gauss(0, noise)), duration_s=1.0) for t, d in enumerate(drifts)))]
    for method, ratio in ratios.items():
        shifted = ratio * math.exp(rng.gauss(0, run_effect))
        benches.append(Benchmark(name="w", method=method, rounds=tuple(
            Round(index=t, energy_j=shifted * d * math.exp(rng.gauss(0, noise)), duration_s=1.0)
            for t, d in enumerate(drifts))))
    return Run(name=name, created="", benchmarks=tuple(benches), machine=machine or Machine())
