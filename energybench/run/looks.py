"""Which cells of a sequential run keep measuring: at each look a method row whose verdict is decided (a
claim, or futile) stops; a baseline keeps measuring while any row judged against it does; the rows still
open get the trials that remain (``verdicts.sequential`` has the rules and why they hold their error rates).

Also the run's running account of trial pairs set aside because their two sides saw different load: when
more than a quarter of them are, the run says so while it runs, with the reason, instead of only at the end.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from energybench.measuring.noise import WARN_SET_ASIDE
from energybench.record import BASELINE, Stopped
from energybench.run.state import Cell, RunState
from energybench.verdicts.baseline import MIN_PAIRS, VERDICT_ALPHA, look_decision
from energybench.verdicts.pairing import pair_set_aside
from energybench.verdicts.sequential import Design, simulated_futures
from energybench.verdicts.spread import SavedSpreads, of_run

#: A sequential run's rows whose pairs the noise guard set aside get top-up trials after the design's last, up to
#: this many times its trials in all, until each has the ``MIN_PAIRS`` a verdict needs (``Looks.short_of_pairs``).
TOP_UP_FACTOR = 2


def _group(cell: Cell) -> tuple[str, str | None]:
    return cell.bench.name, cell.bench.device


@dataclass
class Looks:
    """The open cells of a run and the decisions taken at each look."""

    design: Design
    state: RunState
    min_change: float
    open: list[Cell] = field(default_factory=list)
    warned: bool = False
    #: Each row's per-trial spread in saved runs of this machine (``spread.saved_trial_spreads``): what the
    #: forecast assumes for a row before it has three pairs of its own, while this run's load is like theirs.
    prior: SavedSpreads = field(default_factory=lambda: SavedSpreads({}))
    #: Each open row's share of the last forecast's futures in which it ends claiming a saving (by benchmark key):
    #: how likely ``--quick``'s per-layer pass is to profile it.
    saving_odds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.open = list(self.state.entries)

    @property
    def rows(self) -> int:
        """Method rows of the table: the family the strictest Holm level divides alpha by."""
        return max(1, sum(1 for c in self.state.entries if c.bench.method != BASELINE))

    def baseline(self, cell: Cell) -> Cell | None:
        return next((c for c in self.state.entries if _group(c) == _group(cell) and c.bench.method == BASELINE
                     and c is not cell), None)

    def look(self, trials: int) -> list[tuple[Cell, str]]:
        """After ``trials`` trials: the method cells decided now (with why), taken out of the open set with
        their ``Stopped`` recorded, and baselines no open row needs any more."""
        if not self.design.sequential or trials not in self.design.looks[:-1]:
            return []
        index = self.design.looks.index(trials)
        between = of_run(self.state.run)
        stopped = []
        for cell in [c for c in self.open if c.bench.method != BASELINE]:
            base = self.baseline(cell)
            if base is None:
                continue
            verdict = look_decision(base.snapshot(), cell.snapshot(), index, self.design, between,
                                    self.min_change, VERDICT_ALPHA, self.rows)
            if verdict != "continue":
                stopped.append((cell, verdict))
        for cell, verdict in stopped:
            self._stop(cell, trials, verdict)
        needed = {_group(c) for c in self.open if c.bench.method != BASELINE}
        for cell in [c for c in self.open if c.bench.method == BASELINE and _group(c) not in needed]:
            self._stop(cell, trials, "rows decided")
        return stopped

    def finish(self) -> None:
        """The rows still open ran every trial of the design (and any top-up): they stopped at its last look."""
        if self.design.sequential:
            for cell in list(self.open):
                self._stop(cell, max(self.design.max_trials, len(cell.rounds)), "last look")

    def short_of_pairs(self) -> list[Cell]:
        """Open method rows with fewer than ``MIN_PAIRS`` pairs that stood (the noise guard set the others
        aside): a top-up trial gives them the pairs a verdict needs. Whether a row gets one depends only on the
        machine's load, never on its values, so the last look's error rate holds."""
        return [c for c in self.open if c.bench.method != BASELINE and (base := self.baseline(c)) is not None
                and len(_logs(base, c)) < MIN_PAIRS]

    def top_up(self, rows: list[Cell]) -> None:
        """Only ``rows`` and their baselines measure on: every other open cell stops at the last look."""
        keep = {id(c) for c in rows} | {id(b) for c in rows if (b := self.baseline(c)) is not None}
        for cell in [c for c in self.open if id(c) not in keep]:
            self._stop(cell, self.design.max_trials, "last look")

    def drop(self, cell: Cell) -> None:
        """A cell that failed or does not apply measures no more."""
        if cell in self.open:
            self.open.remove(cell)

    def _stop(self, cell: Cell, trials: int, reason: str) -> None:
        if cell in self.open:
            self.open.remove(cell)
        if self.design.sequential:
            cell.bench = replace(cell.bench, stopped=Stopped(trials, reason))

    # -- what the run tells while it runs -------------------------------------------------------------------
    def set_aside(self) -> tuple[int, int, list[str]]:
        """Trial pairs set aside so far, of all pairs, and the reasons (each once)."""
        aside = total = 0
        reasons: dict[str, None] = {}
        for cell in self.state.entries:
            base = self.baseline(cell) if cell.bench.method != BASELINE else None
            if base is None:
                continue
            by_trial = {r.index: r for r in base.rounds}
            for r in cell.rounds:
                other = by_trial.get(r.index)
                if other is None:
                    continue
                total += 1
                why = pair_set_aside(other, r)
                if why:
                    aside += 1
                    reasons.update(dict.fromkeys(w.split(":")[0] for w in why))
        return aside, total, list(reasons)

    def warn_set_aside(self, log: Callable[[str], None]) -> None:
        """Once, when more than ``WARN_SET_ASIDE`` of the pairs so far were set aside: how many, and why."""
        aside, total, reasons = self.set_aside()
        if self.warned or total < 2 * len(self.state.entries) or aside <= WARN_SET_ASIDE * total:
            return
        self.warned = True
        log(f"warning: {aside} of {total} trial pairs so far set aside ({', '.join(reasons)}): the machine's load "
            "changed between the two sides of those pairs (a neighbour starting and stopping); a steady load "
            "keeps its pairs, so the verdicts stand on the rest, with fewer pairs")

    def forecast(self, trials_done: int) -> dict[str, float]:
        """Each open cell's expected trials in all (the progress line's estimate): the mean over plausible
        futures (``sequential.simulated_futures``) of a method row's stopping look, and of a baseline's latest
        stop among its rows in each future. A row without three pairs yet assumes its spread in this machine's
        saved runs (``prior``) when they saw a load like this run's, else the others' typical spread; future pairs
        stand as often as this run's have, and rows short of pairs get the runner's top-up trials."""
        between = of_run(self.state.run).sd
        methods = [c for c in self.open if c.bench.method != BASELINE and self.baseline(c) is not None]
        logs = {c.label: _logs(self.baseline(c), c) for c in methods}  # type: ignore[arg-type]
        spreads = {k: statistics.stdev(v) if len(v) >= MIN_PAIRS else math.nan for k, v in logs.items()}
        known = sorted(sd for sd in spreads.values() if math.isfinite(sd))
        typical = known[len(known) // 2] if known else math.nan
        aside, total, _ = self.set_aside()
        usable = 1.0 - (aside + 0.5) / (total + 1.0)  # Jeffreys: no pair set aside yet is not a promise of none
        # saved runs measured under another kind of load (a changing neighbour sets more than WARN_SET_ASIDE of
        # the pairs aside) say little about this run's spread
        alike = (aside / total > WARN_SET_ASIDE if total else False) == (self.prior.set_aside > WARN_SET_ASIDE)
        prior = self.prior.rows if alike else {}
        rows = [(logs[c.label], spreads[c.label] if math.isfinite(spreads[c.label])
                 else prior.get(c.bench.key, typical)) for c in methods]
        futures, savings = simulated_futures(rows, trials_done, self.design, VERDICT_ALPHA, self.rows,
                                             self.min_change, between, usable=usable, min_pairs=MIN_PAIRS,
                                             top_up_to=TOP_UP_FACTOR * self.design.max_trials)
        out: dict[str, float] = {}
        for i, cell in enumerate(methods):
            out[cell.label] = statistics.fmean(f[i] for f in futures) if futures else float(self.design.max_trials)
            self.saving_odds[cell.bench.key] = statistics.fmean(s[i] for s in savings) if savings else 0.0
        for cell in [c for c in self.open if c.bench.method == BASELINE]:
            mine = [i for i, c in enumerate(methods) if _group(c) == _group(cell)]
            out[cell.label] = (statistics.fmean(max(f[i] for i in mine) for f in futures)
                               if mine and futures else float(trials_done))
        return out


def _logs(base: Cell, cell: Cell) -> list[float]:
    """A row's per-trial log ratios so far (pairs set aside left out)."""
    by_trial = {r.index: r for r in base.rounds}
    return [math.log(r.energy_per_item_j / b.energy_per_item_j) for r in cell.rounds
            if (b := by_trial.get(r.index)) is not None and not pair_set_aside(b, r)
            and r.energy_per_item_j > 0 and b.energy_per_item_j > 0]


def _log_ratios(base: Cell, cell: Cell) -> tuple[float, float]:
    """Mean and spread of a row's per-trial log ratios so far (NaN where there are too few)."""
    logs = _logs(base, cell)
    if not logs:
        return math.nan, math.nan
    return statistics.fmean(logs), statistics.stdev(logs) if len(logs) >= MIN_PAIRS else math.nan


def likely_savers(looks: Looks) -> dict[str, float]:
    """How likely each method row is to be among the rows ``--quick``'s per-layer pass profiles (those whose
    verdict is "saves"), for the progress line's forecast: for a row still open, the share of the forecast's
    futures in which it claims a saving (one pair says little: counting every row whose first pair read a
    saving had the clock expect the pass to take twice its time); for a row decided at a look, how: a claim
    below 1 is a saving (its p is below the strictest Holm level, so the table claims it too), a futile row
    never is, whatever its estimate; for a row closed otherwise, whether its estimate is a saving beyond the
    minimum change."""
    out = {k: odds for c in looks.open if (odds := looks.saving_odds.get(k := c.bench.key, 0.0)) > 0}
    for cell in [c for c in looks.state.entries if c not in looks.open and c.bench.method != BASELINE]:
        reason = cell.bench.stopped.reason if cell.bench.stopped is not None else None
        base = looks.baseline(cell)
        mean = _log_ratios(base, cell)[0] if base is not None and reason != "futile" else math.nan
        edge = 0.0 if reason == "claim" else math.log(1 - looks.min_change)
        if math.isfinite(mean) and mean < edge:
            out[cell.bench.key] = 1.0
    return out
