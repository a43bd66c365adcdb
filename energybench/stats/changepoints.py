"""Change points in a benchmark's history: where its level shifted, not every wiggle.

PELT (pruned exact linear time, Killick, Fearnhead & Eckley, JASA 2012) minimises the sum of a Gaussian
(squared error) cost per segment plus a penalty per change. Costs are taken on log run medians, so a shift is
relative; the noise scale comes from the median absolute successive difference (robust to the shifts
themselves), and the penalty is BIC's (2 sigma^2 log n). The tests check the segmentation against ``ruptures``
(the reference implementation) on the same data and penalty.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def noise_scale(values: Sequence[float]) -> float:
    """Robust standard deviation of the noise around the level: MAD of successive differences / sqrt(2)."""
    diffs = [b - a for a, b in zip(values, values[1:], strict=False)]
    if not diffs:
        return 0.0
    # successive differences of a piecewise-constant series are noise except at the few steps: their median
    # absolute value (not centred, so a step cannot pull the centre) is a robust scale of sqrt(2) x the noise
    return 1.4826 * statistics.median(abs(d) for d in diffs) / math.sqrt(2)


def pelt(values: Sequence[float], penalty: float, min_size: int = 1) -> list[int]:
    """Indices where a new segment starts (PELT with an L2 cost); empty when the series has one level."""
    n = len(values)
    if n < 2 * min_size:
        return []
    s1 = [0.0] * (n + 1)
    s2 = [0.0] * (n + 1)
    for i, v in enumerate(values):
        s1[i + 1] = s1[i] + v
        s2[i + 1] = s2[i] + v * v

    def cost(a: int, b: int) -> float:  # squared error of values[a:b] around their mean
        m = b - a
        return s2[b] - s2[a] - (s1[b] - s1[a]) ** 2 / m

    best = [-penalty] + [math.inf] * n
    last = [0] * (n + 1)
    candidates = [0]
    for t in range(1, n + 1):
        scored = [(best[s] + cost(s, t) + penalty, s) for s in candidates if t - s >= min_size]
        if scored:
            best[t], last[t] = min(scored)
        # prune starts that can never be optimal again (PELT's condition, K = 0 for this cost)
        candidates = [s for s in candidates if t - s < min_size or best[s] + cost(s, t) <= best[t]]
        candidates.append(t)
    cuts = []
    t = n
    while t > 0:
        s = last[t]
        if s > 0:
            cuts.append(s)
        t = s
    return sorted(cuts)


def change_points(medians: Sequence[float], min_size: int = 2) -> list[int]:
    """Run indices where a benchmark's level changed, from its run medians (positive values)."""
    logs = [math.log(v) for v in medians if v > 0 and math.isfinite(v)]
    if len(logs) != len(medians) or len(logs) < 2 * min_size:
        return []
    sigma = noise_scale(logs)
    if sigma == 0:
        sigma = 1e-9
    return pelt(logs, penalty=2 * sigma * sigma * math.log(len(logs)), min_size=min_size)
