"""Verdicts on a run's compressed models against their baseline: ratio, interval, test, correction, outcome.

Why these statistics (and not the rank test on two piles of rounds used before): trials run interleaved, so
trial ``t`` of the baseline and trial ``t`` of a method share whatever the machine was doing at that moment.
The per-trial log ratio cancels that shared drift, and a paired t-test on it gives the ratio (a geometric
mean), its 95% interval and a p-value at any n (``stats.paired_ratio``). A run table holds dozens of such
rows, so the p-values are corrected across the whole table (Holm at ``VERDICT_ALPHA`` by
default): a table of identical models claims nothing in 95% of runs instead of something in most of them.

A verdict should also hold for the next run. Two additions make it so: the machine's between-run spread
(``energybench.verdicts.spread``) is part of each row's standard error, and a claim is a minimum-effect claim:
"saves" means the saving is significantly larger than ``MIN_CHANGE`` (5%), not merely non-zero, so a real 2%
effect measured precisely in one run does not read "costs 2% more" there and "no significant saving" in the
next (docs/performance.md, "Reproducibility" has the agreement of identical runs with and without them).

Data only (the words "saves 38%" are the renderers'). Derived from the rounds each time, never stored, so an
old file is judged by today's rules.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from energybench import stats
from energybench.record import BASELINE, Benchmark, Run, Stopped
from energybench.stats.correction import DEFAULT, METHODS, claim_limit
from energybench.verdicts import repeat
from energybench.verdicts.pairing import baseline_of, paired_log_ratios, paired_values
from energybench.verdicts.sequential import Design, decide, p_over_shares
from energybench.verdicts.spread import BetweenRuns, of_run

__all__ = ["MIN_CHANGE", "MIN_PAIRS", "VERDICT_ALPHA", "VERDICT_CORRECTION", "BreakEven", "VsBaseline", "baseline_of",
           "break_even", "compare_to_baseline", "design_of", "judge_pairs", "look_decision", "min_change_of",
           "paired_values", "run_verdicts", "vs_baseline"]

#: Level at which the corrected p-value of a row must fall for a claim ("saves" / "costs").
VERDICT_ALPHA = 0.05
#: How the family of rows is corrected (``stats.correction``: Holm by default).
VERDICT_CORRECTION = DEFAULT
#: Fewer pairs than this give no claim: the row says it cannot reach significance at its n.
MIN_PAIRS = 3
#: The smallest change a verdict claims (either way): "saves" needs the saving to be significantly beyond it.
#: 5% is the threshold pytest-benchmark users and this project's gates use; ``--min-change`` sets another.
MIN_CHANGE = 0.05


@dataclass(frozen=True)
class VsBaseline:
    """One method's energy per item against the baseline's, over the same workload and the same trials.

    ``outcome``: ``saves`` / ``costs`` (corrected p <= ``alpha``, so the CI excludes 1), ``same`` (no
    significant difference), ``untestable`` (fewer than ``MIN_PAIRS`` usable trial pairs: significance is out of
    reach at this n) or ``no-baseline``. ``p`` is the row's own two-sided p, ``p_adjusted`` after correcting
    across ``family_size`` rows with ``correction`` (the name of the method).
    """

    ratio: float
    ci_low: float
    ci_high: float
    p: float
    p_adjusted: float
    n: int
    test: str
    outcome: str
    alpha: float = VERDICT_ALPHA
    correction: str = METHODS[VERDICT_CORRECTION]
    family_size: int = 1
    excluded_trials: int = 0
    min_change: float = 0.0
    between: BetweenRuns | None = None
    stopped: Stopped | None = None  # a sequential run's row: where it stopped and why
    sequential: bool = False  # the p is over the looks of a sequential design (``verdicts.sequential``)
    repeat_agreement: float = math.nan  # the chance an identical run gives the same outcome (``verdicts.repeat``)

    @property
    def change(self) -> float:
        """The relative change (-0.38 = 38% less energy per item)."""
        return self.ratio - 1.0

    @property
    def significant(self) -> bool:
        return self.outcome in ("saves", "costs")

    @property
    def borderline(self) -> bool:
        """An identical run would likely give another outcome (``repeat.BORDERLINE_BELOW``): the row's estimate
        stands near the edge of a claim."""
        return self.repeat_agreement < repeat.BORDERLINE_BELOW  # (NaN: no verdict to repeat, never borderline)


def _outcome(test: stats.RatioTest, p_adjusted: float, alpha: float, dropped: int = 0) -> str:
    if not math.isfinite(test.ratio) and not (test.n == 0 and dropped > 0):
        return "no-baseline"  # (when every pair was left out the rows exist but cannot be tested: below)
    if test.n < MIN_PAIRS or not test.testable:
        return "untestable"
    if p_adjusted <= alpha:
        return "saves" if test.ratio < 1 else "costs"  # (the minimum-effect p: beyond the margin, same side)
    return "same"


def min_change_of(run: Run) -> float:
    """The smallest change the run's verdicts claim (recorded when it was measured; ``MIN_CHANGE`` before)."""
    value = run.environment.min_change
    return value if value is not None else MIN_CHANGE


def design_of(run: Run) -> Design | None:
    """The sequential design a run was measured under (``Settings.looks``), or ``None`` for a fixed count."""
    s = run.environment.settings
    if s is None or len(s.looks) < 2 or len(s.spend) != len(s.looks):
        return None
    return Design(tuple(s.looks), tuple(s.spend))


def run_verdicts(run: Run, baseline: str = BASELINE, alpha: float = VERDICT_ALPHA,
                 correction: str = VERDICT_CORRECTION) -> dict[str, VsBaseline]:
    """Every method row of the run against its baseline, corrected across the whole table, with the run's own
    between-run spread, minimum change and sequential design; keyed by ``Benchmark.key``."""
    pairs = []
    for bench in run.benchmarks:
        base = baseline_of(run, bench, baseline)
        if base is None or base is bench or not bench.rounds:
            continue
        pairs.append((base, bench))
    verdicts = judge_pairs(pairs, alpha, correction, between=of_run(run), min_change=min_change_of(run),
                           design=design_of(run))
    return {bench.key: vs for (_, bench), vs in zip(pairs, verdicts, strict=True)}


def _test(base: Benchmark, bench: Benchmark, between: BetweenRuns | None,
          before: int | None = None) -> tuple[stats.RatioTest, int]:
    xs, ys, dropped = paired_values(base, bench, before=before)
    return stats.paired_ratio(xs, ys, between_sd=between.sd if between else 0.0), dropped


def _looks(base: Benchmark, bench: Benchmark, test: stats.RatioTest, design: Design | None,
           between: BetweenRuns | None) -> list[tuple[float, stats.RatioTest]]:
    """(share of alpha spent, test) at each look the row reached, its final test last; one look with the whole
    alpha for a fixed design."""
    if design is None:
        return [(1.0, test)]
    reached = max((r.index for r in bench.rounds), default=-1) + 1
    found = []
    for i, look in enumerate(design.looks):
        share = design.spend[min(i, len(design.spend) - 1)]
        if look >= reached or i == len(design.looks) - 1:
            found.append((share, test))  # the row's last look: all its pairs
            break
        at = _test(base, bench, between, before=look)[0]
        if at.n >= MIN_PAIRS and at.testable:
            found.append((share, at))
    return found


def _row_p(looks: Sequence[tuple[float, stats.RatioTest]], min_change: float) -> float:
    """The row's minimum-effect p: ``min(p_look / share_look)`` over the looks it reached (``p_over_shares``;
    a fixed design's one look spends everything, so its p is its own)."""
    return p_over_shares([(share, t.p_beyond(min_change)) for share, t in looks])


def judge_pairs(pairs: Sequence[tuple[Benchmark, Benchmark]], alpha: float = VERDICT_ALPHA,
                correction: str = VERDICT_CORRECTION, *, between: BetweenRuns | None = None,
                min_change: float = MIN_CHANGE, design: Design | None = None) -> list[VsBaseline]:
    """Each (reference, benchmark) pair of one run judged on its shared trials (paired t on log ratios with
    the between-run spread added; a minimum-effect test beyond ``min_change``; over the looks of ``design``
    when the run was sequential), the p-values corrected across all the pairs: a method against its
    baseline, or one device against another (trials interleave across devices as across methods, so trial t
    of both shares the machine's state)."""
    rows = [_test(base, bench, between) for base, bench in pairs]
    testable = [t.n >= MIN_PAIRS and t.testable for t, _ in rows]
    looks = [_looks(base, bench, t, design, between) if ok else []
             for (base, bench), (t, _), ok in zip(pairs, rows, testable, strict=True)]
    row_p = [_row_p(at, min_change) if at else math.nan for at in looks]
    adjusted = stats.adjust(row_p, correction)
    family = sum(testable)
    out = []
    for i, ((_, bench), (test, dropped), p_adj) in enumerate(zip(pairs, rows, adjusted, strict=True)):
        p_adj = 1.0 if math.isnan(p_adj) else p_adj
        outcome = _outcome(test, p_adj, alpha, dropped)
        repeats = (repeat.agreement(outcome, _repeat_looks(*pairs[i], looks[i], design, between),
                                    claim_limit(row_p, i, alpha, correction), min_change)
                   if looks[i] else math.nan)
        out.append(VsBaseline(
            ratio=test.ratio, ci_low=test.ci_low, ci_high=test.ci_high, p=test.p, p_adjusted=p_adj, n=test.n,
            test=test.test, outcome=outcome, alpha=alpha, correction=METHODS[correction],
            family_size=family, excluded_trials=dropped, min_change=min_change, between=between,
            stopped=bench.stopped, sequential=design is not None, repeat_agreement=repeats,
        ))
    return out


def look_decision(base: Benchmark, bench: Benchmark, look: int, design: Design, between: BetweenRuns | None,
                  min_change: float, alpha: float, rows: int) -> str:
    """Whether a row of a sequential run stops at look ``look`` (an index into ``design.looks``): ``claim``,
    ``futile`` or ``continue`` (``sequential.decide``, on the same test and p as the verdict's)."""
    test, _ = _test(base, bench, between)
    if test.n < MIN_PAIRS or not test.testable:
        return "continue"
    p = _row_p(_looks(base, bench, test, design, between), min_change)
    final_se = _at_last_look(base, bench, design, between)[0]
    return decide(p, test.log_mean, test.se, test.df, look, design, alpha, rows, min_change, final_se)


def _at_last_look(base: Benchmark, bench: Benchmark, design: Design,
                  between: BetweenRuns | None) -> tuple[float, float]:
    """The standard error the row would have at the design's last look (its per-trial spread so far over that
    look's trials, plus the between-run spread) and its Welch-Satterthwaite degrees of freedom."""
    logs, _ = paired_log_ratios(base, bench)
    within = statistics.stdev(logs) / math.sqrt(design.max_trials) if len(logs) >= 2 else math.nan
    spread = between.sd if between else 0.0
    total = math.sqrt(within * within + spread * spread)
    df = min((design.max_trials - 1) * (total / within) ** 4, 1000.0) if within > 0 else 1000.0
    return total, df


def _repeat_looks(base: Benchmark, bench: Benchmark, looks: list[tuple[float, stats.RatioTest]],
                  design: Design | None, between: BetweenRuns | None) -> list[tuple[float, stats.RatioTest]]:
    """The looks an identical run could reach. A row decided at an interim look (a claim, or futile) would, in a
    repeat that did not stop there, go on to the design's last look and could still reach the same verdict, so it
    gets that look too: its estimate as now, with the standard error it would have there."""
    if design is None or bench.stopped is None or bench.stopped.reason not in ("claim", "futile") or not looks:
        return looks
    se, df = _at_last_look(base, bench, design, between)
    if not (math.isfinite(se) and se > 0):
        return looks
    return [*looks, (design.spend[-1], replace(looks[-1][1], se=se, df=df))]


def vs_baseline(run: Run, bench: Benchmark, baseline: str = BASELINE) -> VsBaseline | None:
    """``bench`` against its baseline, corrected across the run's table (``None`` for the baseline itself)."""
    return run_verdicts(run, baseline).get(bench.key) if not bench.method == baseline else None


def compare_to_baseline(base: Sequence[float], new: Sequence[float], alpha: float = VERDICT_ALPHA) -> VsBaseline:
    """A single row, uncorrected: paired when both sides have the same number of values (trial by trial),
    else a Welch t-test on the logs."""
    test = stats.paired_ratio(base, new) if len(base) == len(new) else stats.welch_ratio(base, new)
    return VsBaseline(ratio=test.ratio, ci_low=test.ci_low, ci_high=test.ci_high, p=test.p, p_adjusted=test.p,
                      n=test.n, test=test.test, outcome=_outcome(test, test.p, alpha), alpha=alpha,
                      correction="none (one row)")


@dataclass(frozen=True)
class BreakEven:
    """Items a method must serve before its per-item saving repays its one-off cost, with an interval from
    the one-off cost's interval and the saving's."""

    items: float
    low: float
    high: float


def break_even(run: Run, bench: Benchmark, verdicts: Mapping[str, VsBaseline] | None = None) -> BreakEven | None:
    """Shown only for a significant saving of an inference workload with a measured one-off cost."""
    if bench.one_off is None or bench.one_off.energy_j is None or bench.phase != "inference":
        return None
    vs = (verdicts if verdicts is not None else run_verdicts(run)).get(bench.key)
    base = baseline_of(run, bench)
    if vs is None or base is None or vs.outcome != "saves":
        return None
    per_item = base.energy_per_item.median
    saving, most, least = per_item * (1 - vs.ratio), per_item * (1 - vs.ci_low), per_item * (1 - vs.ci_high)
    cost = bench.one_off.energy_j
    cost_low = bench.one_off.ci_low if bench.one_off.ci_low is not None else cost
    cost_high = bench.one_off.ci_high if bench.one_off.ci_high is not None else cost
    if saving <= 0 or most <= 0:
        return None
    return BreakEven(cost / saving, cost_low / most, cost_high / least if least > 0 else math.inf)
