"""How far a method's energy ratio moves between runs on one machine: the spread a run's verdicts include.

Why: inside one run a ratio's trials can agree to +-3% while the same row reads 1.00, 1.08 and 1.16 in three
runs (the machine's state, memory placement and the host's neighbours change the two models' costs
differently, and interleaving trials cannot cancel a change in the *ratio*). A verdict built from one run's
trials alone then says "costs 16% more" in one run and "no significant saving" in the next. Adding the
between-run spread to each row's standard error (a random effect of the run) turns the verdict into a claim
about the next run too.

Where the spread comes from, in order: ``--between-run-spread`` as given; else the saved runs of the same name
on this machine or one like it (at least ``MIN_RUNS``; per row, the variance of the run means minus their own
sampling variance, and the ``QUANTILE`` of the rows so that most rows are covered); else ``DEFAULT_SD``,
stated as a default in every footer.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from energybench import stats
from energybench.record import BASELINE, BetweenRuns, Run
from energybench.verdicts.pairing import baseline_of, paired_log_ratios, paired_values

__all__ = ["DEFAULT_SD", "MIN_RUNS", "QUANTILE", "BetweenRuns", "estimate", "from_saved", "of_run",
           "SavedSpreads", "row_log_ratios", "saved_trial_spreads", "trial_spreads"]

#: The between-run standard deviation of a log ratio when nothing better is known: the 90th percentile of the
#: rows' spread over quick runs of a shared 2-vCPU VM, rounded up (docs/performance.md, "Reproducibility"). A
#: dedicated quiet machine can pass ``--between-run-spread 1%``; saved runs replace it with this machine's own.
DEFAULT_SD = 0.05
#: Saved runs needed before their spread replaces the default (two runs give one difference per row).
MIN_RUNS = 3
#: Which of the rows' between-run spreads stands for the machine: most rows must be covered, or their verdicts
#: flip; the few with a larger spread (fp16 emulated on a CPU) are far from any decision.
QUANTILE = 0.9
#: Rows needed for the quantile to mean anything.
MIN_ROWS = 5


def of_run(run: Run) -> BetweenRuns:
    """The spread a run was judged with (recorded when it was measured); the default for older files."""
    return run.environment.between_runs or BetweenRuns(DEFAULT_SD, "default")


def row_log_ratios(run: Run) -> dict[str, tuple[float, float]]:
    """Each method row's mean per-trial log ratio against its baseline and that mean's squared standard error
    (the paired t of the verdicts, without a between-run spread), for rows with at least 3 usable pairs."""
    out = {}
    for bench in run.benchmarks:
        base = baseline_of(run, bench) if bench.method != BASELINE and bench.rounds else None
        if base is None:
            continue
        test = stats.paired_ratio(*paired_values(base, bench)[:2])
        if test.n >= 3 and math.isfinite(test.se):
            out[bench.key] = (test.log_mean, test.se**2)
    return out


def estimate(runs: Sequence[Run]) -> BetweenRuns | None:
    """The machine's between-run spread from several runs of one suite, or None with too few runs or rows.

    Per row present in at least ``MIN_RUNS`` runs: the variance of its run means minus the mean of their own
    squared standard errors (method of moments, floored at 0); the machine's figure is the ``QUANTILE`` of
    the rows' standard deviations."""
    per_run = [row_log_ratios(r) for r in runs]
    keys = {k for rows in per_run for k in rows}
    spreads = []
    for key in keys:
        found = [rows[key] for rows in per_run if key in rows]
        if len(found) < MIN_RUNS:
            continue
        means = [m for m, _ in found]
        spreads.append(math.sqrt(max(0.0, statistics.variance(means) - statistics.fmean(v for _, v in found))))
    if len(per_run) < MIN_RUNS or len(spreads) < MIN_ROWS:
        return None
    return BetweenRuns(stats.quantile(spreads, QUANTILE), f"{len(runs)} saved runs")


def from_saved(name: str, directory: str, machine: Any, limit: int = 10) -> BetweenRuns:
    """The spread for a new run named ``name``: from up to ``limit`` saved runs of that name on a machine whose
    figures compare with this one's (``machine.identity_mismatches``: same CPU and GPU models, power limits and
    samplers; a CI pool's runners count as one machine, as ``compare`` judges them), else the default."""
    from energybench.measuring.machine import identity_mismatches
    from energybench.record.storage import runs_named

    same_machine = (r for r in runs_named(name, directory) if not identity_mismatches(r.machine, machine))
    found = estimate(list(itertools.islice(same_machine, limit)))
    return found or BetweenRuns(DEFAULT_SD, "default")


@dataclass(frozen=True)
class SavedSpreads:
    """What saved runs say about a new run's trials before it has its own: each method row's per-trial spread of
    its log ratio, and the share of their trial pairs the noise guard set aside (the load they saw)."""

    rows: dict[str, float]
    set_aside: float = 0.0


def trial_spreads(runs: Sequence[Run]) -> SavedSpreads:
    """Each method row's per-trial spread of its log ratio (standard deviation of the usable pairs, with at
    least 3), the median over ``runs``: what the progress line's forecast assumes for a row before this run has
    three pairs of it (``run.looks``), instead of one figure for every row of every machine."""
    found: dict[str, list[float]] = {}
    aside = total = 0
    for run in runs:
        for bench in run.benchmarks:
            base = baseline_of(run, bench) if bench.method != BASELINE and bench.rounds else None
            if base is None:
                continue
            logs, dropped = paired_log_ratios(base, bench)
            aside, total = aside + dropped, total + dropped + len(logs)
            if len(logs) >= 3:
                found.setdefault(bench.key, []).append(statistics.stdev(logs))
    return SavedSpreads({key: statistics.median(sds) for key, sds in found.items()}, aside / total if total else 0.0)


def saved_trial_spreads(name: str, directory: str, machine: Any, threads: Mapping[str, Any] | None = None,
                        limit: int = 3) -> SavedSpreads:
    """``trial_spreads`` of up to ``limit`` saved runs of that name on a machine like this one (``from_saved``'s
    rule) that ran with the same thread counts (``Settings.thread_counts``, when given): one intra-op thread
    scatters less than two sharing a busy CPU, so a quiet run's spread would overstate a fitted run's."""
    from energybench.measuring.machine import identity_mismatches
    from energybench.record.storage import runs_named

    def same_threads(run: Run) -> bool:
        settings = run.environment.settings
        return threads is None or (settings is not None and settings.thread_counts() == dict(threads))

    same_machine = (r for r in runs_named(name, directory)
                    if not identity_mismatches(r.machine, machine) and same_threads(r))
    return trial_spreads(list(itertools.islice(same_machine, limit)))
