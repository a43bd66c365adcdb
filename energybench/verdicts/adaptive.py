"""Adaptive A/B sessions: process pairs go to the benchmarks whose gate is still undecided.

Why: a fixed session gives every benchmark the same process pairs, although most of a suite is decided early
(identical code is plainly within +5% after a few pairs, a +25% regression plainly over) and one borderline
benchmark needs more than the rest. So the session looks at its gates after ``FIRST_LOOK`` process pairs and
every ``LOOK_EVERY`` after that (``verdicts.sequential``'s design, with process pairs as its trials); a
benchmark stops when each of its gates is decided, and the others get further pairs, up to the budget.

A gate is decided at a look when:

* **claim**: its sequential p (``sequential.sequential_p``: each look's p over the share of alpha it spends)
  is below ``alpha / m`` for the ``m`` gate decisions of the session, the strictest level Holm uses, and the
  upper end of its interval is over the threshold: it will fail whatever the others show;
* **futile**: even the upper end of its 99% interval is below the threshold: it cannot fail at its
  expected value, so more pairs are wasted on it. Stopping not to claim never adds a false alarm.

The final comparison (``verdicts.compare``, paired mode) divides each gate's p by the share of alpha of the
look its benchmark stopped at (the design is saved with the runs), so the error rate holds across the looks.

**The budget.** A benchmark may get up to ``MAX_PAIRS_FACTOR`` times the fixed session's process pairs, but the
session as a whole spends at most ``BUDGET_FACTOR`` times what the fixed session would (the caller's cost: wall
seconds in ``energybench ab``, benchmark-pairs in a simulation). When the undecided benchmarks cannot reach the
next look within what is left, this look becomes the last one (``truncate``): the design saved with the runs
ends there, and the open gates are judged with the last look's share of alpha (the interim shares already
spent plus that share still sum to one, so the error rate holds wherever the session ends).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from energybench.record import Run, Settings
from energybench.record.benchmark import Stopped
from energybench.stats.distributions import t_ppf
from energybench.verdicts.compare import DEFAULT_ALPHA, Comparison, compare_runs
from energybench.verdicts.gate import Gate, GateResult
from energybench.verdicts.sequential import Design, design, sequential_p

__all__ = ["BUDGET_FACTOR", "FIRST_LOOK", "FUTILITY_CONF", "LOOK_EVERY", "MAX_PAIRS_FACTOR", "Looks", "replay",
           "session_design", "up_to"]

#: Process pairs before the first look (the paired t needs a few units for its spread), and between looks.
FIRST_LOOK = 4
LOOK_EVERY = 3
#: A gate stops as futile when the upper end of this interval is below its threshold.
FUTILITY_CONF = 0.99
#: An undecided benchmark gets up to this many times the fixed session's process pairs ...
MAX_PAIRS_FACTOR = 4
#: ... while the whole session costs at most this many times the fixed session.
BUDGET_FACTOR = 2.0


def session_design(budget: int) -> Design:
    """Looks at ``FIRST_LOOK``, ``FIRST_LOOK + LOOK_EVERY``, ... and at ``budget`` process pairs."""
    if budget <= FIRST_LOOK:
        return Design((budget,), (1.0,))
    return design(budget, FIRST_LOOK, LOOK_EVERY)


@dataclass
class Looks:
    """The state of an adaptive session: each gate's p at the looks so far, and where each benchmark stopped."""

    design: Design
    p_history: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)
    stopped: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (process pairs, reason)

    def look_index(self, pairs: int) -> int | None:
        return self.design.looks.index(pairs) if pairs in self.design.looks else None

    def decide(self, cmp: Comparison, pairs: int,
               affordable: Callable[[int, int], bool] | None = None) -> Mapping[str, str]:
        """Decide every still-running benchmark after ``pairs`` process pairs; returns the new stops
        (key -> ``claim`` / ``futile`` / ``last look`` / ``budget``) and records them.

        ``affordable(rows, pairs)``: whether the budget left pays for ``rows`` benchmarks to run ``pairs`` more
        process pairs; when it does not pay for the undecided ones to reach the next look, this look is made
        the last (``truncate``) and they are judged now."""
        index = self.look_index(pairs)
        if index is None:
            return {}
        decided = self._decide_at(cmp, pairs, index, index == len(self.design.looks) - 1, "last look")
        if index < len(self.design.looks) - 1 and affordable is not None:
            still = [r for r in cmp.rows if r.gates and r.key not in self.stopped]
            if still and not affordable(len(still), self.design.looks[index + 1] - pairs):
                self.truncate(index)
                decided.update(self._decide_at(cmp, pairs, index, True, "budget"))
        return decided

    def stamp(self, run: Run) -> Run:
        """``run`` (the new side) with the design and where each benchmark stopped, so the comparison divides
        each p by the share of alpha its look spent; a benchmark never stopped ran to the end."""
        benches = []
        for bench in run.benchmarks:
            after, reason = self.stopped.get(bench.key, (len({r.process for r in bench.rounds}), "last look"))
            benches.append(replace(bench, stopped=Stopped(after, reason)))
        settings = replace(run.environment.settings or Settings(), looks=self.design.looks, spend=self.design.spend)
        return replace(run, benchmarks=tuple(benches), environment=replace(run.environment, settings=settings))

    def truncate(self, index: int) -> None:
        """End the design at look ``index``: it becomes the last, with what the earlier looks left of alpha."""
        looks = self.design.looks[: index + 1]
        interim = self.design.spend[:index]
        self.design = Design(looks, (*interim, 1.0 - sum(interim)))

    def _decide_at(self, cmp: Comparison, pairs: int, index: int, last: bool, reason_last: str) -> dict[str, str]:
        family = max(cmp.family, 1)
        decided: dict[str, str] = {}
        for row in cmp.rows:
            if row.key in self.stopped or not row.gates:
                continue
            outcomes = []
            for g in row.gates:
                history = self.p_history.setdefault((row.key, g.gate.text), [])
                history[:] = [h for h in history if h[0] != index] + [(index, g.p)]  # a look judged again
                outcomes.append(_gate_outcome(g, sequential_p(history, self.design), cmp.alpha / family))
            if last:
                reason = reason_last
            elif "continue" in outcomes:
                continue
            else:
                reason = "claim" if "claim" in outcomes else "futile"
            decided[row.key] = reason
            self.stopped[row.key] = (pairs, reason)
        return decided


def _gate_outcome(g: GateResult, p_seq: float, level: float) -> str:
    if not g.tested:
        return "continue"
    if p_seq <= level and g.ci_high > g.gate.threshold:
        return "claim"
    scale = 1.0 if g.gate.relative else g.base_median  # absolute gates: their change and threshold as fractions
    if not (scale > 0 and math.isfinite(g.se) and g.df >= 1 and g.change / scale > -1):
        return "continue"
    upper = math.log1p(g.change / scale) + t_ppf(FUTILITY_CONF, g.df) * g.se
    return "futile" if upper < math.log1p(g.gate.threshold / scale) else "continue"


def up_to(run: Run, pairs: Mapping[str, int]) -> Run:
    """``run`` with each benchmark's rounds from its first ``pairs[key]`` process pairs (a round without a
    process number counts as the first pair's)."""
    return replace(run, benchmarks=tuple(
        replace(b, rounds=tuple(r for r in b.rounds if (r.process or 0) < pairs[b.key])) for b in run.benchmarks))


def replay(base: Run, new: Run, gates: Sequence[Gate], max_pairs: int, fixed: int,
           alpha: float = DEFAULT_ALPHA) -> tuple[Comparison, Looks, int]:
    """An adaptive session played over the data of a session that ran every benchmark ``max_pairs`` process
    pairs: the looks as ``energybench ab`` takes them, the budget counted in benchmark-pairs (``BUDGET_FACTOR``
    times a fixed session of ``fixed`` pairs). For simulations of what a session would decide and cost: the
    final comparison, the looks, and the benchmark-pairs measured."""
    looks = Looks(session_design(max_pairs))
    keys = [b.key for b in new.benchmarks]
    spent = previous = 0

    def affordable(rows: int, pairs: int) -> bool:
        return spent + rows * pairs <= BUDGET_FACTOR * len(keys) * fixed

    for look in session_design(max_pairs).looks:
        if look not in looks.design.looks:
            break  # the budget ended the design at an earlier look
        spent += (look - previous) * (len(keys) - len(looks.stopped))
        previous = look
        now = {k: looks.stopped[k][0] if k in looks.stopped else look for k in keys}
        looks.decide(compare_runs(up_to(base, now), up_to(new, now), gates, alpha=alpha), look, affordable)
        if len(looks.stopped) == len(keys):
            break
    final = {k: looks.stopped.get(k, (max_pairs, ""))[0] for k in keys}
    cmp = compare_runs(up_to(base, final), looks.stamp(up_to(new, final)), gates, alpha=alpha)
    return cmp, looks, sum(final.values())
