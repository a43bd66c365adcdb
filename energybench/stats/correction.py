"""Multiple comparisons: a table of 35 verdicts at p <= 0.05 each claims something false 83% of the time
under no effect at all. Benjamini-Hochberg keeps the expected share of false claims at ``alpha`` (and, when
nothing differs, the chance of any false claim at ``alpha``: a whole A/A table stays quiet 95% of the
time); Holm keeps the chance of any false claim at ``alpha`` whatever differs, at some cost in power."""

from __future__ import annotations

import math
from collections.abc import Sequence

METHODS = {"bh": "Benjamini-Hochberg", "holm": "Holm"}
#: Verdicts and gates are promises: Holm keeps the chance of ANY false claim in a table at alpha whatever else is
#: true (Benjamini-Hochberg would let the share of false claims grow with the number of true ones, and false
#: claims are what makes two identical runs disagree).
DEFAULT = "holm"


def adjust(pvalues: Sequence[float], method: str = DEFAULT) -> list[float]:
    """Adjusted p-values (compare each with alpha); NaN stays NaN and is not counted in the family."""
    if method not in METHODS:
        raise ValueError(f"unknown correction {method!r}; one of {', '.join(METHODS)}")
    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    if m == 0:
        return out
    order = sorted(idx, key=lambda i: pvalues[i])
    if method == "bh":
        running = 1.0
        for rank in range(m, 0, -1):  # step-up: from the largest p down
            i = order[rank - 1]
            running = min(running, pvalues[i] * m / rank)
            out[i] = min(1.0, running)
    else:
        running = 0.0
        for rank, i in enumerate(order):  # step-down
            running = max(running, pvalues[i] * (m - rank))
            out[i] = min(1.0, running)
    return out


def claim_limit(pvalues: Sequence[float], row: int, alpha: float, method: str = DEFAULT) -> float:
    """The largest p that row ``row`` could have and still be claimed at ``alpha``, every other row's p held as
    it is: how far the row stands from its claim's edge (``verdicts.repeat``); 0.0 when no p would do.

    The corrected p of one row, as its own p grows, steps where it passes another row's p and otherwise grows
    linearly up to ``alpha``, so the limit is one of: another row's p (or just below it), or ``alpha`` times a
    rank factor (``k / m`` for Benjamini-Hochberg, ``1 / k`` for Holm). A binary search over those candidates
    finds it, the claim being monotone in the row's p."""
    others = [p for i, p in enumerate(pvalues) if i != row and p is not None and not math.isnan(p)]
    m = len(others) + 1
    exact = {alpha * k / m for k in range(1, m + 1)} | {alpha / k for k in range(1, m + 1)} | set(others)
    # (each also just below itself: at a tie, or where rounding lifts k * alpha / k above alpha, it is not claimed)
    ordered = sorted({c * f for c in exact for f in (1.0, 1 - 1e-9) if 0 < c * f <= alpha})
    values = list(pvalues)

    def claimed(p: float) -> bool:
        values[row] = p
        return adjust(values, method)[row] <= alpha

    lo, hi = -1, len(ordered)  # ordered[lo] is claimed (or none), ordered[hi] is not (or none)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if claimed(ordered[mid]):
            lo = mid
        else:
            hi = mid
    return ordered[lo] if lo >= 0 else 0.0
