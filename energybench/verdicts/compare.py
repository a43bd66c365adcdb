"""Comparison of two runs: per-benchmark rows, gate decisions, warnings and notes (data only).

Three ways to compare, chosen by what the runs are (``gate.MODES``):

* two runs of one **A/B session** (``energybench ab``: baseline and candidate measured interleaved, trial by
  trial) are compared pair by pair, so slow drift of the machine cancels;
* with a **history** of baseline runs (``history=``, three or more), the new run's median is tested against
  the spread of the baseline runs' medians, so the variance between runs is in the p-value;
* otherwise the rounds of the two runs are tested as two samples (Welch t on their logs) with this machine's
  between-run spread of each benchmark added (``verdicts.drift``: from the saved runs of the baseline's name,
  else a stated default), so identical code does not fail on drift.

Each gate states its minimum detectable effect at the comparison's family size, and a comparison whose gates
passed only because some could not fail exits ``power.EXIT_BLIND`` unless blind gates are allowed. A cell that
failed in either run has no data to judge: it gets no verdict and no gate, and the other rows are gated.

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
from energybench.verdicts.drift import Drift, default_for
from energybench.verdicts.gate import DEFAULT_ALPHA, MODES, Gate, GateResult, evaluate_gate, separate_test, unjudged
from energybench.verdicts.pairing import pair_set_aside
from energybench.verdicts.power import EXIT_BLIND
from energybench.verdicts.provenance import check_same_provenance

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
    no_data: str | None = None  # why this row cannot be judged (a failed cell): no verdict, no gate

    @property
    def failed(self) -> bool:
        return any(not g.passed for g in self.gates)

    @property
    def blind(self) -> bool:
        return any(g.blind for g in self.gates)

    @property
    def p(self) -> float:
        return min(1.0, 2 * min(self.p_higher, self.p_lower))

    @property
    def deciding_gate(self) -> GateResult | None:
        """The gate whose decision the row shows: the first that failed, else the first."""
        return next((g for g in self.gates if not g.passed), self.gates[0] if self.gates else None)

    @property
    def shown_p(self) -> float:
        """The one p every output shows for this row: its deciding gate's corrected one-sided p when gated,
        else the row's corrected two-sided p."""
        gate = self.deciding_gate
        if gate is not None:
            return gate.p_adjusted
        return self.p_adjusted if math.isfinite(self.p_adjusted) else self.p

    def verdict(self, alpha: float | None = None) -> str:
        """``REGRESSION`` / ``pass`` (``pass (blind)``) with gates; else ``higher`` / ``lower`` / ``no
        significant change`` by the corrected two-sided p; ``n/a`` for a row without data."""
        alpha = self.alpha if alpha is None else alpha
        if self.no_data:
            return "n/a (no data)"
        if self.gates:
            return "REGRESSION" if self.failed else ("pass (blind)" if self.blind else "pass")
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
    drift: Drift | None = None  # the between-run spread a separate-run comparison allowed for
    looks: tuple[tuple[int, float], ...] = ()  # an adaptive A/B session's design: (process pairs, alpha share)
    allow_blind: bool = False

    @property
    def regressions(self) -> list[GateResult]:
        return [g for r in self.rows for g in r.gates if not g.passed]

    @property
    def blind(self) -> list[GateResult]:
        """Gates that passed only because they could not fail."""
        return [g for r in self.rows for g in r.gates if g.blind]

    @property
    def family(self) -> int:
        """Gate decisions corrected together (each gate on each benchmark)."""
        return sum(len(r.gates) for r in self.rows)

    @property
    def exit_code(self) -> int:
        """1 when a gate failed; else ``EXIT_BLIND`` when a gate was blind (unless allowed); else 0."""
        if self.regressions:
            return 1
        return EXIT_BLIND if self.blind and not self.allow_blind else 0

    @property
    def test(self) -> str:
        judged = [r for r in self.rows if not r.no_data]
        if self.mode == "independent" and judged and all(r.source == "modeled" for r in judged):
            return ("t on round-by-round log ratios of two separate counted runs (their rounds repeat position by "
                    "position), with the between-run spread of counted runs")
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
        medians: list[float] = []
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
    drift: Drift | None = None,
    allow_blind: bool = False,
) -> Comparison:
    """Compare ``new`` against ``base`` (``None``: no baseline yet, which passes with a note).

    ``history``: older runs of the baseline; with ``base`` they make ``MIN_HISTORY_RUNS`` or more, the
    comparison tests against their medians' spread. ``drift``: the between-run spread of separate runs
    (``verdicts.drift.from_store``); the stated default when not given. ``allow_blind``: a blind gate passes
    (exit 0) instead of making the comparison exit ``EXIT_BLIND``.
    """
    cmp = Comparison(base_id=base.label if base else None, new_id=new.label, alpha=alpha, gates=tuple(gates),
                     allow_blind=allow_blind)
    if base is None:
        cmp.notes.append("no baseline to compare against yet: passing (the first run becomes the baseline)")
        return cmp
    check_same_provenance(base, new, history)  # modeled figures are never compared with sampled ones
    runs = _choose_mode(cmp, base, new, history, drift)
    base_b, new_b = base.by_key(), new.by_key()
    shared = [k for k in new_b if k in base_b]
    if not shared:
        raise ResultsError(
            f"runs {cmp.base_id} and {cmp.new_id} share no benchmark (baseline has "
            f"{_some(sorted(base_b))}); compare runs of the same suite"
        )
    cmp.only_base = sorted(k for k in base_b if k not in new_b)
    cmp.only_new = sorted(k for k in new_b if k not in base_b)
    _warn_if_incomparable(cmp, base, new)
    if cmp.drift is not None:
        cmp.notes.append(_drift_note(cmp.drift))
    for key in shared:
        b, n = base_b[key], new_b[key]
        cmp.rows.append(_row(cmp, key, b, n, runs))
        unstable = n.stability_warning
        if unstable and not cmp.rows[-1].no_data:
            cmp.warnings.append(f"{key} (new run): {unstable}")
    _correct(cmp)
    cmp.notes += [f"{key}: only in the baseline (removed?)" for key in cmp.only_base]
    cmp.notes += [f"{key}: new benchmark, no baseline yet" for key in cmp.only_new]
    return cmp


def _choose_mode(cmp: Comparison, base: Run, new: Run, history: Sequence[Run], drift: Drift | None) -> list[Run]:
    """Paired for two sides of one A/B session, history with enough baseline runs, else separate runs with a
    between-run spread; returns the baseline runs the comparison reads."""
    runs = [base, *[h for h in history if h.path != base.path or h.path is None]]
    if ab_session(base) and ab_session(base) == ab_session(new):
        cmp.mode = "paired"
        cmp.processes = (new.environment.ab.processes if new.environment.ab else None) or 1
        settings = new.environment.settings
        if settings is not None and len(settings.looks) > 1:
            cmp.looks = tuple(zip(settings.looks, settings.spend, strict=True))
    elif len(runs) >= MIN_HISTORY_RUNS:
        cmp.mode, cmp.history = "history", tuple(r.label for r in runs)
    elif history:
        cmp.notes.append(f"history of {len(runs)} baseline run(s): {MIN_HISTORY_RUNS} are needed for a between-run "
                         "spread; compared with the baseline's rounds instead")
    if cmp.mode == "independent":
        cmp.drift = drift or default_for([base, new])
    return runs


def _warn_if_incomparable(cmp: Comparison, base: Run, new: Run) -> None:
    for msg in identity_mismatches(base.machine, new.machine):
        cmp.warnings.append(f"machines differ, energy may not be comparable: {msg}")
    threads = [r.environment.thread_counts for r in (base, new)]
    if all(threads) and threads[0] != threads[1]:
        cmp.warnings.append(f"thread counts differ, energy may not be comparable: {threads[0]} vs "
                            f"{threads[1]} (pin them with --energy-threads / --threads)")


def _drift_note(drift: Drift) -> str:
    where = (f"estimated from {drift.source} on this machine" if drift.estimated
             else f"{drift.source}: fewer than 3 saved runs of the baseline's name on this machine")
    return (f"separate runs: each benchmark's level may move {drift.sd * 100:.2g}% between runs ({where}), and the "
            "test allows for it; an A/B session (energybench ab) cancels it and sees smaller changes")


def _no_data(b: Benchmark, n: Benchmark) -> str | None:
    """Why a row has nothing to judge: a cell that failed or did not apply in either run, or no whole figures."""
    for side, bench in (("baseline", b), ("new run", n)):
        if bench.status != "ok":
            why = f": {bench.status_reason}" if bench.status_reason else ""
            return f"{bench.status} in the {side}{why}"
        if not bench.values("energy_per_call_j"):
            return f"no whole figure in the {side}"
    return None


def _row(cmp: Comparison, key: str, b: Benchmark, n: Benchmark, runs: Sequence[Run]) -> Row:
    if (why := _no_data(b, n)) is not None:
        cmp.warnings.append(f"{key}: no verdict and no gate ({why})")
        return Row(key=key, base_energy=math.nan, new_energy=math.nan, change=math.nan, ci_low=math.nan,
                   ci_high=math.nan, p_higher=1.0, p_lower=1.0, n_base=len(b.rounds), n_new=len(n.rounds),
                   source=n.source, mode=cmp.mode, alpha=cmp.alpha, no_data=why)
    between = cmp.drift.of(key) if cmp.drift is not None else 0.0
    be, ne = _samples(cmp.mode, b, n, "energy_per_call_j", runs)
    if cmp.mode == "paired" and not (be and ne):  # every pair set aside: nothing to test, and a gate cannot fail
        why = (f"every trial pair set aside ({len(n.rounds)}): its two sides saw different load; rerun on a "
               "steadier machine, or with more rounds")
        cmp.warnings.append(f"{key}: no verdict ({why})")
        return Row(key=key, base_energy=math.nan, new_energy=math.nan, change=math.nan, ci_low=math.nan,
                   ci_high=math.nan, p_higher=1.0, p_lower=1.0, n_base=0, n_new=0, source=n.source,
                   mode=cmp.mode, alpha=cmp.alpha, no_data=why,
                   gates=tuple(unjudged(g, key, cmp.alpha, cmp.mode) for g in cmp.gates))
    mb, mn = stats.median(be), stats.median(ne)
    aligned = b.source == n.source == "modeled"  # counted rounds repeat position by position
    if cmp.mode == "independent":
        test = separate_test(be, ne, between, aligned)
    elif cmp.mode == "paired":
        test = stats.paired_ratio(be, ne)
    else:
        test = stats.prediction_ratio(be, mn)
    results = []
    for gate in cmp.gates:
        bv, nv = _samples(cmp.mode, b, n, gate.metric.field, runs)
        result = evaluate_gate(gate, bv, nv, alpha=cmp.alpha, benchmark=key, mode=cmp.mode, between_sd=between,
                               aligned=aligned)
        if cmp.looks:  # an adaptive session looked more than once: the p of the look it stopped at, over its share
            result = replace(result, p=min(1.0, result.p / _share(cmp.looks, n)))
        results.append(result)
        if not results[-1].tested:
            warning = (f"{key}: too few rounds (n={results[-1].n_base}/{results[-1].n_new}) for a significance test; "
                       f"gate {gate.describe()} decided on the threshold alone (use more rounds: "
                       "--energy-min-rounds 5, or rounds>=5 in pedantic)")
            if warning not in cmp.warnings:
                cmp.warnings.append(warning)
    return Row(key=key, base_energy=mb, new_energy=mn, change=test.ratio - 1.0, ci_low=test.ci_low - 1.0,
               ci_high=test.ci_high - 1.0, p_higher=test.p_higher, p_lower=test.p_lower, n_base=len(be),
               n_new=len(ne), source=n.source, gates=tuple(results), mode=cmp.mode, alpha=cmp.alpha)


def _share(looks: Sequence[tuple[int, float]], bench: Benchmark) -> float:
    """The share of alpha the look a benchmark stopped at spent (the last look's when it ran to the end)."""
    after = bench.stopped.after if bench.stopped is not None else None
    return next((share for pairs, share in looks if pairs == after), looks[-1][1])


def _correct(cmp: Comparison) -> None:
    """Correct the rows' two-sided p-values, and every gate decision, across the comparison; each gate's MDE
    is stated at the family's size."""
    judged = [r for r in cmp.rows if not r.no_data]
    row_p = iter(stats.adjust([r.p for r in judged], CORRECTION))
    gate_p = iter(stats.adjust([g.p for r in judged for g in r.gates], CORRECTION))
    family = cmp.family
    cmp.rows = [replace(r, gates=tuple(replace(g, family=family) for g in r.gates)) if r.no_data else
                replace(r, p_adjusted=next(row_p), gates=tuple(g.decided(next(gate_p), family) for g in r.gates))
                for r in cmp.rows]


def _some(names: list[str], shown: int = 5) -> str:
    """A few names and how many more: an error stays one readable line for a suite of hundreds."""
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
