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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from energybench.stats.distributions import t_ppf
from energybench.verdicts.compare import Comparison
from energybench.verdicts.gate import GateResult
from energybench.verdicts.sequential import Design, design, sequential_p

__all__ = ["FIRST_LOOK", "FUTILITY_CONF", "LOOK_EVERY", "Looks", "session_design"]

#: Process pairs before the first look (the paired t needs a few units for its spread), and between looks.
FIRST_LOOK = 4
LOOK_EVERY = 3
#: A gate stops as futile when the upper end of this interval is below its threshold.
FUTILITY_CONF = 0.99


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

    def decide(self, cmp: Comparison, pairs: int) -> Mapping[str, str]:
        """Decide every still-running benchmark after ``pairs`` process pairs; returns the new stops
        (key -> ``claim`` / ``futile`` / ``last look``) and records them."""
        index = self.look_index(pairs)
        if index is None:
            return {}
        last = index == len(self.design.looks) - 1
        family = max(cmp.family, 1)
        decided: dict[str, str] = {}
        for row in cmp.rows:
            if row.key in self.stopped or not row.gates:
                continue
            outcomes = []
            for g in row.gates:
                history = self.p_history.setdefault((row.key, g.gate.text), [])
                history.append((index, g.p))
                outcomes.append(_gate_outcome(g, sequential_p(history, self.design), cmp.alpha / family))
            if last:
                reason = "last look"
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
