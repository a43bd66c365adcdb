"""Sequential trials: each row of a run is looked at every few trials and stops as soon as its verdict is
decided, with error rates that hold at every look.

Why: a clear effect (a 0.27x int8 model, a 5x fp16 emulation) is decided after three trials, while a
borderline one needs every trial the run allows; a fixed count spends the same on both. Stopping early is
only honest if looking more than once does not buy false claims, so:

* A design fixes in advance the trial counts at which rows are looked at (``looks``: every ``LOOK_EVERY``
  trials from ``FIRST_LOOK``) and the share of a row's alpha each look may spend (``spend``): a small
  ``INTERIM_SPEND`` at each interim look, the rest at the last (Haybittle-Peto: early stops need
  overwhelming evidence, the last look keeps almost all the power of a fixed design).
* A row's p-value is ``min over the looks it reached of p_look / spend_look`` (Bonferroni over looks): at
  whichever look a row stopped, the chance that this p falls below ``a`` for a row without an effect is at
  most ``a``, so the Holm correction across the table (``verdicts.baseline``) holds as for a fixed design.
* A row stops for a claim at a look when its p is below ``alpha / rows``, the strictest level Holm uses: it
  is then claimed whatever the other rows show. It stops for futility when even the end of its 99% interval
  nearest a claim would, at its expected value, not reach the last look's level: stopping *not* to claim
  never adds a false claim.

Data only; the runner decides when to stop (``run.trials``), and the run records the design (``Settings``)
and where each row stopped (``Benchmark.stopped``), so a saved run is judged by the design it was measured
under. A run of older files, or with ``--trials N`` (a fixed count), has one look: its p is the plain p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from energybench.stats.distributions import normal_ppf, t_ppf

__all__ = ["FIRST_LOOK", "INTERIM_SPEND", "LOOK_EVERY", "Design", "decide", "design", "fixed",
           "projected_stop", "sequential_p"]

#: Trials before a row is first looked at (the fewest pairs a verdict is tested on), and between looks.
FIRST_LOOK = 3
LOOK_EVERY = 3
#: The share of a row's alpha each interim look spends; the last look has what is left.
INTERIM_SPEND = 0.002
#: A row stops as futile when the end of this interval nearest a claim could not reach the last look's level.
FUTILITY_CONF = 0.99
#: The per-trial spread of a log ratio assumed before a row has three pairs and no other row has either (for the
#: progress line's forecast only): the order of what 0.1 s windows of CPU work scatter on a shared VM.
PRIOR_SD = 0.12


@dataclass(frozen=True)
class Design:
    """When rows are looked at (trial counts) and the share of alpha each look spends (summing to 1)."""

    looks: tuple[int, ...]
    spend: tuple[float, ...]

    @property
    def max_trials(self) -> int:
        return self.looks[-1]

    @property
    def sequential(self) -> bool:
        return len(self.looks) > 1

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        return {"looks": list(self.looks), "spend": list(self.spend)}


def design(max_trials: int, first: int = FIRST_LOOK, every: int = LOOK_EVERY) -> Design:
    """Looks at ``first``, ``first + every``, ... and at ``max_trials``; interim looks spend ``INTERIM_SPEND``."""
    looks = [n for n in range(first, max_trials, every)] + [max_trials]
    interim = [INTERIM_SPEND] * (len(looks) - 1)
    return Design(tuple(looks), (*interim, 1.0 - sum(interim)))


def fixed(trials: int) -> Design:
    """One look after every trial: a fixed design (``--trials N``, and runs saved before designs existed)."""
    return Design((trials,), (1.0,))


def sequential_p(p_at_looks: Sequence[tuple[int, float]], d: Design) -> float:
    """A row's p over the looks it reached: ``min(p_look / spend_look)``, capped at 1. ``p_at_looks`` holds
    (look index, p) pairs; a look the design does not have counts as the last one."""
    best = 1.0
    for index, p in p_at_looks:
        share = d.spend[min(index, len(d.spend) - 1)]
        if math.isfinite(p) and share > 0:
            best = min(best, p / share)
    return best


def decide(p: float, log_mean: float, se: float, df: float, look: int, d: Design, alpha: float, rows: int,
           margin: float, final_se: float) -> str:
    """At look ``look`` (an index into ``d.looks``): ``claim`` when the row's p over the looks so far is below
    ``alpha / rows``; ``futile`` when no value in its 99% interval could reach the last look's level at its
    expected value (``final_se``: the standard error it would have at the last look); else ``continue``."""
    if math.isfinite(p) and p <= alpha / max(rows, 1):
        return "claim"
    if not (math.isfinite(log_mean) and math.isfinite(se) and math.isfinite(final_se)) or look >= len(d.looks) - 1:
        return "continue"
    half = (t_ppf(0.5 + FUTILITY_CONF / 2, df) if math.isfinite(df) and df >= 1 else normal_ppf(0.995)) * se
    shift = math.log1p(margin)
    needed = normal_ppf(1 - alpha * d.spend[-1] / max(rows, 1) / 2) * final_se  # the last look's two-sided level
    if log_mean - half > -shift - needed and log_mean + half < shift + needed:
        return "futile"
    return "continue"


def projected_stop(log_mean: float, sd: float, done: int, d: Design, alpha: float, rows: int, margin: float,
                   between_sd: float) -> int:
    """The trial count at which a row is expected to stop, from its estimate so far (``sd``: the per-trial
    spread of its log ratio, ``PRIOR_SD`` when unknown): the first look where its expected evidence claims or is
    futile, else the last. For the progress line's forecast only; it decides nothing."""
    sd = sd if math.isfinite(sd) and sd > 0 else PRIOR_SD
    shift = math.log1p(margin)
    final_se = math.sqrt(sd * sd / d.max_trials + between_sd * between_sd)
    for i, look in enumerate(d.looks):
        if look < done or look < 2:  # one trial has no spread: nothing decides there
            continue
        within = sd / math.sqrt(look)
        se = math.sqrt(within * within + between_sd * between_sd)
        df = min((look - 1) * (se / within) ** 4, 1000.0)  # Welch-Satterthwaite, as the verdict's test
        beyond = max(abs(log_mean) - shift, 0.0) / se if math.isfinite(log_mean) else 0.0
        if beyond >= t_ppf(1 - alpha * d.spend[i] / max(rows, 1) / 2, df):
            return look
        if decide(math.nan, log_mean, se, df, i, d, alpha, rows, margin, final_se) == "futile":
            return look
    return d.max_trials
