"""What a gate can see: its minimum detectable effect, and whether it is blind.

Why: a gate that passes says "no regression as large as the threshold", but only if it could have caught
one. With few rounds, a noisy machine, drift between runs and thirty gates sharing one error rate, the
smallest change a gate catches can be many times its threshold; with a rank test on five rounds per side
across three gates it is infinite (the smallest reachable p, 1/252, times 3 never passes 0.01). So each gate
states its minimum detectable effect (MDE): the change it catches 80% of the time at its n, noise,
between-run spread and family size. The family's first Holm step tests at ``alpha / m``, the level a lone
regression among ``m`` gate decisions must reach, so the MDE is computed there:

    log(1 + MDE) = (t(1 - alpha/m, df) + t(POWER, df)) * se

A gate is *blind* when it could not catch even a doubling (MDE >= ``BLIND_MDE``, or no test at all): it
cannot fail, and the comparison exits ``EXIT_BLIND`` instead of passing unless the user allows it.
"""

from __future__ import annotations

import math

from energybench.stats.distributions import t_ppf

__all__ = ["BLIND_MDE", "EXIT_BLIND", "POWER", "log_mde", "mde", "rounds_needed"]

#: The power the minimum detectable effect is stated at (the usual planning figure).
POWER = 0.8
#: A gate whose MDE is at least this (relative: +100%, a doubling) is blind: it would pass almost anything.
BLIND_MDE = 1.0
#: Exit code of a comparison whose gates passed only because some could not fail (``--allow-blind``: 0).
EXIT_BLIND = 6


def log_mde(se: float, df: float, level: float, power: float = POWER) -> float:
    """The log-scale effect a one-sided t test at ``level`` detects with ``power`` (inf without a test)."""
    if not (math.isfinite(se) and se >= 0 and df >= 1 and 0 < level < 1):
        return math.inf
    df = min(df, 1e6)
    return (t_ppf(1.0 - level, df) + t_ppf(power, df)) * se


def mde(se: float, df: float, level: float, power: float = POWER) -> float:
    """The relative increase (0.05 = +5%) detected with ``power`` at one-sided ``level``."""
    d = log_mde(se, df, level, power)
    return math.expm1(d) if d < 700 else math.inf


def rounds_needed(within_sd: float, between_var: float, level: float, target: float, sides: int = 2,
                  limit: int = 10_000) -> int | None:
    """Rounds per side for a two-sample test (``sides`` samples of ``n`` rounds with per-round log spread
    ``within_sd`` plus a fixed variance ``between_var``) to detect ``target`` (relative); None when no number
    of rounds can, because the between-run part alone is too large."""
    goal = math.log1p(target)
    if not (math.isfinite(within_sd) and goal > 0):
        return None
    if log_mde(math.sqrt(between_var), 1e6, level) >= goal:
        return None
    n = 2
    while n <= limit:
        within = within_sd * within_sd * sides / n
        total = within + between_var
        df = total * total / (sides * (within_sd**2 / n) ** 2 / (n - 1)) if within > 0 else 1e6
        if log_mde(math.sqrt(total), df, level) < goal:
            return n
        n = n + 1 if n < 20 else int(n * 1.25)
    return None
