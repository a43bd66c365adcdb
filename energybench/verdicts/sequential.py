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

import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from energybench.stats.distributions import normal_ppf, t_ppf

__all__ = ["FIRST_LOOK", "INTERIM_SPEND", "LOOK_EVERY", "Design", "decide", "design", "fixed",
           "p_over_shares", "sequential_p", "simulated_futures"]

#: Trials before a row is first looked at (the fewest pairs a verdict is tested on), and between looks.
FIRST_LOOK = 3
LOOK_EVERY = 3
#: The share of a row's alpha each interim look spends; the last look has what is left.
INTERIM_SPEND = 0.002
#: A row stops as futile when the end of this interval nearest a claim could not reach the last look's level.
FUTILITY_CONF = 0.99
#: The per-trial spread of a log ratio assumed before a row has three pairs and no other row has either (for the
#: progress line's forecast only): the order of what 0.1 s windows of CPU work scatter on a shared VM (the
#: README's job on the 2-core VM, 2026-12-07: median row 12.7% quiet, 10.0% beside a steady neighbour). Why not
#: from the table's first pairs: in a compression table most rows change (first pairs from -1.7 to +2.2 in log
#: ratio), so their scatter says how far effects differ, not how noisy a pair is (0.54 there).
PRIOR_SD = 0.12
#: Futures drawn per forecast (``simulated_futures``): enough for the mean stop of a row to within a few percent.
FORECAST_DRAWS = 200


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
    return p_over_shares([(d.spend[min(index, len(d.spend) - 1)], p) for index, p in p_at_looks])


def p_over_shares(share_and_p: Sequence[tuple[float, float]]) -> float:
    """``sequential_p`` once each look's share of alpha is known: ``min(p / share)`` over (share, p) pairs,
    capped at 1; a look that spends nothing, or has no p, counts for nothing."""
    best = 1.0
    for share, p in share_and_p:
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


def simulated_futures(rows: Sequence[tuple[Sequence[float], float]], done: int, d: Design, alpha: float,
                      n_rows: int, margin: float, between_sd: float, draws: int = FORECAST_DRAWS, seed: int = 0, *,
                      usable: float = 1.0, min_pairs: int = FIRST_LOOK,
                      top_up_to: int = 0) -> tuple[list[list[int]], list[list[bool]]]:
    """Where each row may stop, in ``draws`` plausible futures, and whether it stops claiming a saving there:
    ``(stops[draw][row], saves[draw][row])``. For the progress line's forecast only (its trials, and which rows
    the per-layer pass of ``--quick`` will profile); it decides nothing.

    Each row is ``(log ratios so far, per-trial spread)``. A future draws the row's true effect from what its
    pairs and the table allow (``_effects``), its remaining trials around it, and applies the looks' rules to
    the running mean and the *sample* spread, as the run will. Why futures rather than one projection: at the
    first look a row has three pairs, and whether it stops depends on how small their spread happens to be (a
    t with 2 degrees of freedom); a projection from the assumed spread itself never stops a row there, and
    planned more trials than the run measured. Each future trial's pair stands with probability ``usable``
    (the share of pairs the noise guard kept so far): looks count trials, tests count the pairs that stood, and a
    row with fewer than ``min_pairs`` of them cannot stop, as in the run, and one still short of them at the last
    look gets top-up trials up to ``top_up_to`` in all (``run.trials``). Seeded: the same state gives the same
    forecast."""
    rng = random.Random(seed)
    shift = math.log1p(margin)
    futures: list[list[int]] = []
    savings: list[list[bool]] = []
    looks = [(i, look) for i, look in enumerate(d.looks) if look > done]
    spreads = [sd if math.isfinite(sd) and sd > 0 else PRIOR_SD for _, sd in rows]
    effects = _effects(rows, spreads)
    for _ in range(draws):
        stops, saves = [], []
        for (logs, _), sd, (centre, scatter) in zip(rows, spreads, effects, strict=True):
            effect = rng.gauss(centre, scatter)
            total, squares, count = math.fsum(logs), math.fsum(x * x for x in logs), len(logs)
            trials = max(done, count)
            stop, saving = d.max_trials, False
            for i, look in looks:
                while trials < look:
                    trials += 1
                    if usable >= 1.0 or rng.random() < usable:
                        x = rng.gauss(effect, sd)
                        total, squares, count = total + x, squares + x * x, count + 1
                if count < max(min_pairs, 2):
                    continue
                mean = total / count
                s = math.sqrt(max(squares - count * mean * mean, 0.0) / (count - 1))
                if (why := _stops_at(mean, s, count, i, d, alpha, n_rows, shift, margin, between_sd)) is not None:
                    stop, saving = look, why == "claim" and mean < 0
                    break
            while stop == d.max_trials and count < min_pairs and trials < top_up_to:
                trials += 1
                count += rng.random() < usable
                stop = trials
            stops.append(stop)
            saves.append(saving)
        futures.append(stops)
        savings.append(saves)
    return futures, savings


def _effects(rows: Sequence[tuple[Sequence[float], float]], spreads: Sequence[float]) -> list[tuple[float, float]]:
    """Each row's true effect as its pairs so far and the table allow: mean and standard deviation (empirical
    Bayes with limited translation). One pair says little about a row, but a table's rows together say how far
    true effects spread: robustly (the median absolute deviation of the rows' means, less their sampling
    variance), since a few large effects would otherwise make every row look far from the rest. A row whose mean
    is within two of its standard deviations of the table's median is drawn towards it by its share of noise (a
    first pair of -10% on a table of mostly equal rows is expected nearer 0); a row further out keeps its own."""
    stats = [(math.fsum(logs) / len(logs), sd * sd / len(logs)) if logs else None
             for (logs, _), sd in zip(rows, spreads, strict=True)]
    known = sorted(m for m, _ in filter(None, stats))
    noises = sorted(v for _, v in filter(None, stats))
    centre = known[len(known) // 2] if known else 0.0
    mad = sorted(abs(m - centre) for m in known)[len(known) // 2] if known else 0.0
    spread = max((1.4826 * mad) ** 2 - (noises[len(noises) // 2] if noises else 0.0), 0.0)
    out = []
    for stat, sd in zip(stats, spreads, strict=True):
        if stat is None:
            out.append((centre, math.sqrt(spread + sd * sd)))
            continue
        mean, noise = stat
        if len(known) >= 3 and abs(mean - centre) <= 2 * math.sqrt(spread + noise):
            weight = spread / (spread + noise) if spread + noise > 0 else 0.0
            out.append((centre + weight * (mean - centre), math.sqrt(weight * noise)))
        else:
            out.append((mean, math.sqrt(noise)))
    return out


def _stops_at(mean: float, s: float, n: int, index: int, d: Design, alpha: float, rows: int, shift: float,
              margin: float, between_sd: float) -> str | None:
    """Whether a row with this running mean and sample spread after ``n`` trials claims (``"claim"``) or is
    futile (``"futile"``) at look ``index``, else None (the rules of ``decide``, with the claim's t quantile
    for the test's p)."""
    within = max(s, 1e-12) / math.sqrt(n)
    se = math.sqrt(within * within + between_sd * between_sd)
    df = min(round((n - 1) * (se / within) ** 4), 1000)
    if max(abs(mean) - shift, 0.0) / se >= _t(1 - alpha * d.spend[index] / max(rows, 1) / 2, df):
        return "claim"
    if index >= len(d.looks) - 1:
        return None
    final_se = math.sqrt(s * s / d.max_trials + between_sd * between_sd)
    half = _t(0.5 + FUTILITY_CONF / 2, df) * se
    needed = normal_ppf(1 - alpha * d.spend[-1] / max(rows, 1) / 2) * final_se
    return "futile" if mean - half > -shift - needed and mean + half < shift + needed else None


@functools.lru_cache(maxsize=4096)
def _t(p: float, df: int) -> float:
    return t_ppf(p, df)
