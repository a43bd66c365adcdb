"""How far one benchmark's level moves between separate runs on one machine: what a separate-run gate must allow.

Why: the rounds of one run scatter around that run's level, and the level itself moves from run to run (the
machine's state, memory placement, the neighbours of the day). Two runs of identical code then differ by more
than their rounds say, and a test built from the rounds alone fails identical code: simulated, 30 identical
benchmarks drifting 4% between runs failed a +5% gate in every comparison. A separate-run gate therefore adds
the variance of the difference of two run levels, ``2 * sd**2``, to its standard error (a random effect of the
run with a known variance), and its minimum detectable effect shows what that costs.

Where ``sd`` comes from, in order: the saved runs of the baseline's name on this machine (or one like it:
``measuring.machine.identity_mismatches``), at least ``MIN_RUNS`` of them, the run being judged left out;
else ``DEFAULT_SD``. Per benchmark: the variance of its run means minus their own sampling variance (method
of moments, floored at 0); the machine's figure is the ``QUANTILE`` of the benchmarks' spreads, and a
benchmark whose own spread is larger keeps its own. Counted runs (provenance ``modeled``) repeat their counts
to within a fraction of a percent between sessions of identical code, so their spread is ``MODELED_SD``, and
never taken below it; a change to code that runs before a benchmark can move where its objects lie (and its
cache misses) by more, which saved runs of main over several commits show as that benchmark's own spread.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from energybench import stats
from energybench.record import Run

__all__ = ["DEFAULT_SD", "MIN_RUNS", "MODELED_SD", "Drift", "default_for", "estimate", "from_store"]

#: A benchmark's between-run standard deviation (log scale) when nothing better is known: above the 4% that
#: made identical code fail in simulation, and the order of what quick runs of a shared 2-vCPU VM show
#: (``verdicts.spread.DEFAULT_SD`` for a ratio of two models is the same figure).
DEFAULT_SD = 0.05
#: The least spread for counted (``modeled``) runs, saved runs or not. In 9 pytest sessions of a 30-benchmark
#: suite (``benchmarks/bench_counted_gate.py``, docs: Counted energy; glibc's per-thread cache and fast bins off)
#: identical code differed by 0.44% at most (pure Python; torch 0.03%), so a difference of two sessions, whose sd
#: is sqrt(2) x 0.25% = 0.35%, covers it, and 2% more work is six of those sds. Before the allocator settings,
#: sessions now and then put a convolution's buffers elsewhere (9.1%), and 5% was needed.
MODELED_SD = 0.0025
#: The counted default's source, which ``from_store`` reads to keep ``MODELED_SD`` as the floor.
COUNTED_DEFAULT = "default (counted runs)"
#: Saved runs needed before their spread replaces the default.
MIN_RUNS = 3
#: Which benchmark's spread stands for the machine (most must be covered, or identical code fails).
QUANTILE = 0.9
#: Saved runs read at most (the most recent), so a machine's old state does not decide today's gate.
LIMIT = 10


@dataclass(frozen=True)
class Drift:
    """Between-run spread of benchmark levels: one figure for the machine, and benchmarks' own where larger."""

    sd: float
    source: str  # "default", "default (counted runs)", or "5 saved runs of 'main'"
    per_benchmark: Mapping[str, float] = field(default_factory=dict)

    def of(self, key: str) -> float:
        """The spread a separate-run test of benchmark ``key`` allows for."""
        return max(self.sd, self.per_benchmark.get(key, 0.0))

    @property
    def estimated(self) -> bool:
        return not self.source.startswith("default")


def default_for(runs: Sequence[Run]) -> Drift:
    """The default when no saved runs say better, named so that a counted run keeps ``MODELED_SD`` as its floor."""
    if runs and all(b.source == "modeled" for r in runs for b in r.benchmarks if b.rounds):
        return Drift(MODELED_SD, COUNTED_DEFAULT)
    return Drift(DEFAULT_SD, "default")


def _level(values: Sequence[float]) -> tuple[float, float] | None:
    """A run's level of one benchmark (mean log) and that mean's sampling variance; None when unusable."""
    logs = [math.log(v) for v in values if v > 0 and math.isfinite(v)]
    if len(logs) < 2:
        return None
    return statistics.fmean(logs), statistics.variance(logs) / len(logs)


def estimate(runs: Sequence[Run], figure: str = "energy_per_call_j", floor: float = 0.0) -> Drift | None:
    """The between-run spread from saved runs of one suite on one machine, or None with fewer than
    ``MIN_RUNS`` runs or no benchmark present in that many."""
    if len(runs) < MIN_RUNS:
        return None
    levels: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        for bench in run.benchmarks:
            level = _level(bench.values(figure))
            if level is not None:
                levels.setdefault(bench.key, []).append(level)
    spreads = {}
    for key, found in levels.items():
        if len(found) >= MIN_RUNS:
            means = [m for m, _ in found]
            spreads[key] = max(floor, math.sqrt(max(0.0, statistics.variance(means)
                                                    - statistics.fmean(v for _, v in found))))
    if not spreads:
        return None
    machine = stats.quantile(list(spreads.values()), QUANTILE) if len(spreads) >= 5 else max(spreads.values())
    return Drift(max(machine, floor), f"{len(runs)} saved runs of {runs[0].name!r}", spreads)


def from_store(base: Run, new: Run, directory: str | None, figure: str = "energy_per_call_j") -> Drift:
    """The spread for comparing ``new`` with ``base``: from the saved runs named like ``base`` on a machine like
    ``new``'s (``new`` itself left out, it is what is judged), else the default."""
    default = default_for([base, new])
    if not directory:
        return default
    from energybench.measuring.machine import identity_mismatches
    from energybench.record.storage import runs_named

    try:
        saved = (r for r in runs_named(base.name, directory)
                 if not identity_mismatches(r.machine, new.machine) and r.path != new.path and r.run_id != new.run_id)
        runs = list(itertools.islice(saved, LIMIT))
    except Exception:  # an unreadable store must not take the comparison down: the default still holds
        return default
    floor = MODELED_SD if default.source == COUNTED_DEFAULT else 0.0
    return estimate(runs, figure, floor) or default
