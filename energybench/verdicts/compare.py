"""Comparison of two runs: per-benchmark rows, gate decisions, warnings and notes (data only).

Three ways to compare, chosen by what the runs are (``gate.MODES``):

* two runs of one **A/B session** (``energybench ab``: baseline and candidate measured interleaved, trial by
  trial) are compared pair by pair, so slow drift of the machine cancels;
* with a **history** of baseline runs (``history=``, three or more), the new run's median is tested against
  the spread of the baseline runs' medians, so the variance between runs is in the p-value;
* otherwise the rounds of the two runs are tested as two samples, which cannot see drift between runs (the
  comparison says so).

Every p-value of a comparison is corrected across its rows (Holm), so thirty identical benchmarks do not flag
one of them as changed in every other comparison. In an A/B session a pair whose two sides saw different
load is set aside (``verdicts.pairing``); separate runs have no pairs, and their drift is the between-run
spread's to cover.

The pytest plugin, ``energybench compare`` and two-run reports all build a ``Comparison`` here and hand it
to ``energybench.render.comparison``, so a CI log, a PR comment and a report show the same figures.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from energybench import stats
from energybench.errors import ResultsError
from energybench.measuring.machine import identity_mismatches
from energybench.record import Benchmark, Run
from energybench.stats.correction import DEFAULT, METHODS
from energybench.verdicts.gate import DEFAULT_ALPHA, MODES, Gate, GateResult, evaluate_gate
from energybench.verdicts.pairing import pair_set_aside

#: Fewest runs (the baseline and its history) whose medians give a between-run spread worth testing against.
MIN_HISTORY_RUNS = 3
CORRECTION = DEFAULT


@dataclass(frozen=True)
class Row:
    """One benchmark present in both runs (energy per call)."""

    key: str
    base_energy: float  # median J per call
    new_energy: float
    change: float  # relative change (paired/history: the test's own estimate)
    ci_low: float
    ci_high: float
    p_higher: float
    p_lower: float
    n_base: int
    n_new: int
    source: str
    gates: tuple[GateResult, ...] = ()
    mode: str = "independent"
    p_adjusted: float = math.nan  # two-sided, corrected across the comparison's rows
    alpha: float = DEFAULT_ALPHA

    @property
    def failed(self) -> bool:
        return any(not g.passed for g in self.gates)

    @property
    def p(self) -> float:
        return min(1.0, 2 * min(self.p_higher, self.p_lower))

    def verdict(self, alpha: float | None = None) -> str:
        """``REGRESSION`` / ``pass`` with gates; else ``higher`` / ``lower`` / ``no significant change`` by the
        corrected two-sided p."""
        alpha = self.alpha if alpha is None else alpha
        if self.gates:
            return "REGRESSION" if self.failed else "pass"
        p = self.p_adjusted if math.isfinite(self.p_adjusted) else self.p
        if p < alpha:
            return "higher" if self.p_higher < self.p_lower else "lower"
        return "no significant change"


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
    mode: str = "independent"
    correction: str = METHODS[CORRECTION]
    history: tuple[str, ...] = ()  # run ids whose medians formed the between-run spread
    processes: int = 1  # process pairs of an A/B session (``energybench ab --processes``)

    @property
    def regressions(self) -> list[GateResult]:
        return [g for r in self.rows for g in r.gates if not g.passed]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    @property
    def test(self) -> str:
        if self.mode == "paired" and self.processes > 1:
            return (f"paired t on the log ratios of an A/B session's {self.processes} process pairs (each pair's "
                    "geometric mean: drift cancels, process effects are in the test)")
        return MODES[self.mode]


def ab_session(run: Run) -> str | None:
    """The A/B session a run was measured in (``energybench ab``), if any."""
    return run.environment.ab.session if run.environment.ab is not None else None


def _pairs(b: Benchmark, n: Benchmark, figure: str) -> tuple[list[float], list[float]]:
    """Values of the trials both sides of an A/B session measured; a pair is left out when its sides saw
    different load, or either has no whole figure (``pairing.pair_set_aside``).

    A session of several process pairs (``energybench ab --processes``) returns one pair of values per process
    pair: the geometric means of its trials on each side. The process is then the unit of the test, because a
    process carries an effect of its own (where its memory landed, ASLR) that its trials share
    (``energybench.run.ab.AB_PROCESSES``)."""
    by_trial = {(r.process, r.index): r for r in b.rounds}
    chosen = []
    for r in n.rounds:
        other = by_trial.get((r.process, r.index))
        if other is None or pair_set_aside(other, r):
            continue
        x, y = other.value(figure), r.value(figure)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
            chosen.append((float(x), float(y), r.process))
    processes = sorted({p[2] for p in chosen if p[2] is not None})
    if len(processes) < 2:
        return [x for x, *_ in chosen], [y for _, y, *_ in chosen]
    base, new = [], []
    for proc in processes:
        mine = [(x, y) for x, y, p in chosen if p == proc and x > 0 and y > 0]
        if mine:
            base.append(math.exp(statistics.fmean(math.log(x) for x, _ in mine)))
            new.append(math.exp(statistics.fmean(math.log(y) for _, y in mine)))
    return base, new


def _samples(mode: str, b: Benchmark, n: Benchmark, figure: str, history: Sequence[Run]) -> tuple[
        list[float], list[float]]:
    if mode == "paired":
        return _pairs(b, n, figure)
    if mode == "history":
        medians = []
        for run in history:
            past = run.by_key().get(b.key)
            if past is not None and (values := past.values(figure)):
                medians.append(stats.median(values))
        return medians, n.values(figure)
    return b.values(figure), n.values(figure)


def compare_runs(
    base: Run | None,
    new: Run,
    gates: Sequence[Gate] = (),
    *,
    alpha: float = DEFAULT_ALPHA,
    history: Sequence[Run] = (),
) -> Comparison:
    """Compare ``new`` against ``base`` (``None``: no baseline yet, which passes with a note).

    ``history``: older runs of the baseline; with ``base`` they make ``MIN_HISTORY_RUNS`` or more, the
    comparison tests against their medians' spread.
    """
    cmp = Comparison(base_id=base.label if base else None, new_id=new.label, alpha=alpha, gates=tuple(gates))
    if base is None:
        cmp.notes.append("no baseline to compare against yet: passing (the first run becomes the baseline)")
        return cmp
    runs = [base, *[h for h in history if h.path != base.path or h.path is None]]
    if ab_session(base) and ab_session(base) == ab_session(new):
        cmp.mode = "paired"
        cmp.processes = (new.environment.ab.processes if new.environment.ab else None) or 1
    elif len(runs) >= MIN_HISTORY_RUNS:
        cmp.mode, cmp.history = "history", tuple(r.label for r in runs)
    elif history:
        cmp.notes.append(f"history of {len(runs)} baseline run(s): {MIN_HISTORY_RUNS} are needed for a between-run "
                         "spread; compared with the baseline's rounds instead")
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
    threads = [r.environment.thread_counts for r in (base, new)]
    if all(threads) and threads[0] != threads[1]:
        cmp.warnings.append(f"thread counts differ, energy may not be comparable: {threads[0]} vs "
                            f"{threads[1]} (pin them with --energy-threads / --threads)")
    if cmp.mode == "independent":
        cmp.notes.append("one baseline run: the test sees the spread of rounds inside each run, not the drift "
                         "between runs; on a shared machine gate an A/B session (energybench ab) or against a "
                         "history of baseline runs (--history)")
    for key in shared:
        b, n = base_b[key], new_b[key]
        cmp.rows.append(_row(cmp, key, b, n, runs))
        unstable = n.stability_warning
        if unstable:
            cmp.warnings.append(f"{key} (new run): {unstable}")
    _correct(cmp)
    cmp.notes += [f"{key}: only in the baseline (removed?)" for key in cmp.only_base]
    cmp.notes += [f"{key}: new benchmark, no baseline yet" for key in cmp.only_new]
    return cmp


def _row(cmp: Comparison, key: str, b: Benchmark, n: Benchmark, runs: Sequence[Run]) -> Row:
    be, ne = _samples(cmp.mode, b, n, "energy_j", runs)
    if cmp.mode == "independent":
        lo, hi = stats.change_ci(be, ne)
        mb, mn = stats.median(be), stats.median(ne)
        change = mn / mb - 1.0 if mb else math.nan
        p_higher, p_lower = stats.mann_whitney_greater(be, ne).p, stats.mann_whitney_greater(ne, be).p
    else:
        test = stats.paired_ratio(be, ne) if cmp.mode == "paired" else stats.prediction_ratio(be, stats.median(ne))
        mb, mn = stats.median(be), stats.median(ne)
        change, lo, hi = test.ratio - 1.0, test.ci_low - 1.0, test.ci_high - 1.0
        p_higher, p_lower = test.p_higher, test.p_lower
    results = []
    for gate in cmp.gates:
        bv, nv = _samples(cmp.mode, b, n, gate.metric.field, runs)
        results.append(evaluate_gate(gate, bv, nv, alpha=cmp.alpha, benchmark=key, mode=cmp.mode))
        if not results[-1].tested:
            warning = (f"{key}: too few rounds (n={results[-1].n_base}/{results[-1].n_new}) for a significance test "
                       f"at alpha={cmp.alpha:g}; gate {gate.describe()} decided on the threshold alone (use more "
                       "rounds: --energy-min-rounds 5, or rounds>=5 in pedantic)")
            if warning not in cmp.warnings:
                cmp.warnings.append(warning)
    return Row(key=key, base_energy=mb, new_energy=mn, change=change, ci_low=lo, ci_high=hi, p_higher=p_higher,
               p_lower=p_lower, n_base=len(be), n_new=len(ne), source=n.source, gates=tuple(results), mode=cmp.mode,
               alpha=cmp.alpha)


def _correct(cmp: Comparison) -> None:
    """Correct the rows' two-sided p-values, and every gate decision, across the comparison."""
    row_p = stats.adjust([r.p for r in cmp.rows], CORRECTION)
    gate_p = stats.adjust([g.p for r in cmp.rows for g in r.gates], CORRECTION)
    it = iter(gate_p)
    cmp.rows = [replace(r, p_adjusted=p, gates=tuple(g.decided(next(it)) for g in r.gates))
                for r, p in zip(cmp.rows, row_p, strict=True)]


def _some(names: list[str], shown: int = 5) -> str:
    """A few names and how many more: an error stays one readable line for a suite of hundreds."""
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
