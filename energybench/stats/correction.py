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
