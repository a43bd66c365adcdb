"""Comparison of two runs: per-benchmark rows, gate decisions, warnings and notes (data only).

The pytest plugin, ``energybench compare`` and two-run reports all build a ``Comparison`` here and hand it
to ``energybench.render.comparison``, so a CI log, a PR comment and a report show the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from energybench import stats
from energybench.errors import ResultsError
from energybench.gate import DEFAULT_ALPHA, Gate, GateResult, evaluate_gate
from energybench.machine import identity_mismatches
from energybench.record import Run


@dataclass(frozen=True)
class Row:
    """One benchmark present in both runs."""

    key: str
    base_energy: float  # median J per call
    new_energy: float
    change: float  # relative change of medians
    ci_low: float
    ci_high: float
    p_higher: float
    p_lower: float
    n_base: int
    n_new: int
    source: str
    gates: tuple[GateResult, ...] = ()

    @property
    def failed(self) -> bool:
        return any(not g.passed for g in self.gates)

    def verdict(self, alpha: float) -> str:
        """``REGRESSION`` / ``pass`` with gates; else ``higher`` / ``lower`` / ``no significant change``."""
        if self.gates:
            return "REGRESSION" if self.failed else "pass"
        if self.p_higher < alpha:
            return "higher"
        if self.p_lower < alpha:
            return "lower"
        return "no significant change"

    @property
    def p(self) -> float:
        return min(self.p_higher, self.p_lower)


@dataclass
class Comparison:
    """Everything a comparison found; ``exit_code`` is 1 when a gate failed, else 0."""

    base_id: str | None
    new_id: str
    alpha: float = DEFAULT_ALPHA
    gates: tuple[Gate, ...] = ()
    rows: list[Row] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[GateResult]:
        return [g for r in self.rows for g in r.gates if not g.passed]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def compare_runs(base: Run | None, new: Run, gates: Sequence[Gate] = (), *, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Compare ``new`` against ``base`` (``None``: no baseline yet, which passes with a note)."""
    cmp = Comparison(base_id=base.label if base else None, new_id=new.label, alpha=alpha, gates=tuple(gates))
    if base is None:
        cmp.notes.append("no baseline to compare against yet: passing (the first run becomes the baseline)")
        return cmp
    base_b, new_b = base.by_key(), new.by_key()
    shared = [k for k in new_b if k in base_b]
    if not shared:
        raise ResultsError(
            f"runs {cmp.base_id} and {cmp.new_id} share no benchmark (baseline has "
            f"{_some(sorted(base_b))}); compare runs of the same suite"
        )
    cmp.only_base = sorted(k for k in base_b if k not in new_b)
    cmp.only_new = sorted(k for k in new_b if k not in base_b)
    for msg in identity_mismatches(base.machine, new.machine):
        cmp.warnings.append(f"machines differ, energy may not be comparable: {msg}")
    for key in shared:
        b, n = base_b[key], new_b[key]
        be, ne = b.values("energy_j"), n.values("energy_j")
        results = []
        for gate in gates:
            res = evaluate_gate(gate, b.values(gate.metric.field), n.values(gate.metric.field), alpha=alpha,
                                benchmark=key)
            results.append(res)
            if not res.tested:
                warning = (f"{key}: too few rounds (n={res.n_base}/{res.n_new}) for a significance test at "
                           f"alpha={alpha:g}; gate {gate.describe()} decided on the threshold alone (use more "
                           "rounds: --energy-min-rounds 5, or rounds>=5 in pedantic)")
                if warning not in cmp.warnings:
                    cmp.warnings.append(warning)
        mb, mn = stats.median(be), stats.median(ne)
        lo, hi = stats.change_ci(be, ne)
        unstable = stats.stability_warning(ne)
        if unstable:
            cmp.warnings.append(f"{key} (new run): {unstable}")
        cmp.rows.append(
            Row(
                key=key, base_energy=mb, new_energy=mn, change=(mn / mb - 1.0) if mb else math.nan,
                ci_low=lo, ci_high=hi, p_higher=stats.mann_whitney_greater(be, ne).p,
                p_lower=stats.mann_whitney_greater(ne, be).p, n_base=len(be), n_new=len(ne), source=n.source,
                gates=tuple(results),
            )
        )
    cmp.notes += [f"{key}: only in the baseline (removed?)" for key in cmp.only_base]
    cmp.notes += [f"{key}: new benchmark, no baseline yet" for key in cmp.only_new]
    return cmp


def _some(names: list[str], shown: int = 5) -> str:
    """A few names and how many more: an error stays one readable line for a suite of hundreds."""
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
