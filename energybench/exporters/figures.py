"""The figures every exporter writes, computed once per benchmark from the record (never re-derived)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from energybench.carbon.sci import SciResult, run_sci
from energybench.record import Benchmark, Run


@dataclass(frozen=True)
class BenchFigures:
    """One benchmark's headline figures: medians per item with their 95% CI, totals over its rounds."""

    bench: Benchmark
    unit: str  # the functional unit (token, 1k sentences, sample, call)
    per_item_j: float
    per_item_low_j: float | None
    per_item_high_j: float | None
    energy_j: float  # all rounds
    duration_s: float
    co2e_g: float | None  # all rounds
    co2e_per_item_g: float | None
    rounds: int
    sci: SciResult | None

    @property
    def label(self) -> str:
        """``lm/inference-generate [int8-dynamic]``: the benchmark's key, as reports name it."""
        return self.bench.key


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def bench_figures(run: Run) -> list[BenchFigures]:
    """Figures for every benchmark with at least one measured round, in file order."""
    sci = run_sci(run)
    by_key = sci.by_key() if sci is not None else {}
    out = []
    for b in run.benchmarks:
        s = b.energy_per_item
        if not s.n:
            continue
        rounds = [r for r in b.rounds if math.isfinite(r.energy_j)]
        grams = [r.co2e_g for r in rounds if r.co2e_g is not None and math.isfinite(r.co2e_g)]
        items = math.fsum(r.items for r in rounds)
        co2e = math.fsum(grams) if grams and len(grams) == len(rounds) else None
        out.append(BenchFigures(
            bench=b, unit=b.item_unit or ("item" if b.has_items else "call"), per_item_j=s.median,
            per_item_low_j=_finite(s.ci_low), per_item_high_j=_finite(s.ci_high),
            energy_j=math.fsum(r.energy_j for r in rounds), duration_s=math.fsum(r.duration_s for r in rounds),
            co2e_g=co2e, co2e_per_item_g=co2e / items if co2e is not None and items > 0 else None,
            rounds=len(rounds), sci=by_key.get(b.key)))
    return out


def slug(text: str, allowed: str = r"[^A-Za-z0-9_.-]+", sep: str = "_") -> str:
    """``text`` with every run of characters outside ``allowed`` replaced by ``sep``."""
    return re.sub(allowed, sep, text).strip(sep) or "x"
