"""Pure statistics for per-round figures: summaries, bootstrap CIs, stability and a rank test.

Why these and not a t-test: energy rounds on a shared machine are skewed by bursts of foreign load (a few
rounds much slower, never much faster), so medians and a rank test (Mann-Whitney U) are robust where means
and normal theory are not. Everything here is deterministic (bootstrap uses a fixed seed) so a gate
decision can be reproduced from the saved file. No scipy: the exact U distribution is a small DP.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

#: Relative spread (IQR / median) above which a benchmark is reported as unstable.
UNSTABLE_SPREAD = 0.10
#: Bootstrap resamples for confidence intervals; 2000 keeps a 95% interval stable to ~1% of its width.
BOOTSTRAP_RESAMPLES = 2000
#: Exact Mann-Whitney distribution up to this many values per side without ties; normal approximation above.
EXACT_MAX_N = 30


def per_item(joules: float, items: float | None) -> float:
    """Joules per item of one round; ``items`` may be fractional (MiniLM counts thousands of sentences), and
    a round that recorded no item count is one item. The one place this division is written."""
    return joules / items if items else joules


def _clean(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), for the small samples we have."""
    xs = sorted(_clean(values))
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    xs = _clean(values)
    return statistics.median(xs) if xs else math.nan


def spread(values: Sequence[float]) -> float:
    """Relative spread: interquartile range over median (robust to a single slow round)."""
    med = median(values)
    if not med or math.isnan(med):
        return math.nan
    return (quantile(values, 0.75) - quantile(values, 0.25)) / abs(med)


def bootstrap_ci(
    values: Sequence[float], conf: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the median."""
    import numpy as np

    xs = np.asarray(_clean(values), dtype=float)
    if xs.size == 0:
        return (math.nan, math.nan)
    if xs.size == 1:
        return (float(xs[0]), float(xs[0]))
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(xs, size=(resamples, xs.size), replace=True), axis=1)
    alpha = (1 - conf) / 2
    return (float(np.quantile(meds, alpha)), float(np.quantile(meds, 1 - alpha)))


def change_ci(
    base: Sequence[float],
    new: Sequence[float],
    *,
    relative: bool = True,
    conf: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap CI of the change in medians: ``new/base - 1`` (relative) or ``new - base`` (absolute)."""
    import numpy as np

    b = np.asarray(_clean(base), dtype=float)
    n = np.asarray(_clean(new), dtype=float)
    if b.size == 0 or n.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    mb = np.median(rng.choice(b, size=(resamples, b.size), replace=True), axis=1)
    mn = np.median(rng.choice(n, size=(resamples, n.size), replace=True), axis=1)
    if relative:
        with np.errstate(divide="ignore", invalid="ignore"):
            d = mn / mb - 1.0
        d = d[np.isfinite(d)]
        if d.size == 0:
            return (math.nan, math.nan)
    else:
        d = mn - mb
    alpha = (1 - conf) / 2
    return (float(np.quantile(d, alpha)), float(np.quantile(d, 1 - alpha)))


@dataclass(frozen=True)
class Summary:
    """Median with its 95% bootstrap CI and the usual spread figures, for one figure over rounds.

    ``n == 0`` (no finite value) leaves every figure NaN, so a reader never mistakes "nothing measured"
    for zero.
    """

    n: int
    median: float = math.nan
    mean: float = math.nan
    stdev: float = math.nan
    min: float = math.nan
    max: float = math.nan
    iqr: float = math.nan
    spread: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} if self.n else {"n": 0}


def summarize(values: Sequence[float], conf: float = 0.95) -> Summary:
    """Median, CI and spread of one figure's rounds (NaN rounds are left out and counted in ``n`` no more)."""
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return Summary(0)
    lo, hi = bootstrap_ci(xs, conf)
    return Summary(
        n=n,
        median=statistics.median(xs),
        mean=statistics.fmean(xs),
        stdev=statistics.stdev(xs) if n > 1 else 0.0,
        min=min(xs),
        max=max(xs),
        iqr=quantile(xs, 0.75) - quantile(xs, 0.25),
        spread=spread(xs),
        ci_low=lo,
        ci_high=hi,
    )


def stability_warning(values: Sequence[float], limit: float = UNSTABLE_SPREAD) -> str | None:
    """A one-line warning when the rounds disagree too much to trust small differences."""
    s = spread(values)
    if math.isnan(s) or s <= limit:
        return None
    return (
        f"spread {s:.0%} > {limit:.0%}: unstable (other load on the machine, or rounds too short); "
        "results are less trustworthy"
    )


@dataclass(frozen=True)
class RankTest:
    """One-sided Mann-Whitney U result for 'new is larger than base'."""

    u: float  # pairs (new > base), ties counted 1/2
    p: float
    n_base: int
    n_new: int
    method: str  # "exact" | "normal"


@lru_cache(maxsize=256)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """Number of orderings giving each U for sample sizes n1, n2 (no ties): classic recurrence."""
    # f[i][j] is a list indexed by u; build iteratively to avoid deep recursion.
    table: dict[tuple[int, int], list[int]] = {}
    for i in range(n1 + 1):
        for j in range(n2 + 1):
            if i == 0 or j == 0:
                table[(i, j)] = [1]
                continue
            a = table[(i - 1, j)]  # largest value is from sample 1: adds j to U
            b = table[(i, j - 1)]
            size = i * j + 1
            row = [0] * size
            for u, c in enumerate(a):
                row[u + j] += c
            for u, c in enumerate(b):
                row[u] += c
            table[(i, j)] = row
    return tuple(table[(n1, n2)])


def min_p_value(n_base: int, n_new: int) -> float:
    """Smallest one-sided p the rank test can give for these sample sizes (complete separation)."""
    if n_base == 0 or n_new == 0:
        return 1.0
    return 1.0 / math.comb(n_base + n_new, n_base)


def mann_whitney_greater(base: Sequence[float], new: Sequence[float]) -> RankTest:
    """One-sided Mann-Whitney U test of H1: values in ``new`` tend to be larger than in ``base``.

    Exact distribution for small samples without ties; otherwise the normal approximation with tie and
    continuity corrections (what scipy's ``method="asymptotic"`` does).
    """
    b = _clean(base)
    n = _clean(new)
    n1, n2 = len(n), len(b)
    if n1 == 0 or n2 == 0:
        return RankTest(u=math.nan, p=1.0, n_base=n2, n_new=n1, method="none")
    u = 0.0
    for x in n:
        for y in b:
            u += 1.0 if x > y else 0.5 if x == y else 0.0
    pooled = b + n
    ties = len(set(pooled)) != len(pooled)
    if not ties and max(n1, n2) <= EXACT_MAX_N:
        counts = _u_counts(n1, n2)
        total = math.comb(n1 + n2, n1)
        k = int(round(u))
        p = sum(counts[k:]) / total
        return RankTest(u=u, p=min(1.0, p), n_base=n2, n_new=n1, method="exact")
    mu = n1 * n2 / 2.0
    # tie correction on the variance
    from collections import Counter

    tie_term = sum(t**3 - t for t in Counter(pooled).values())
    nn = n1 + n2
    var = n1 * n2 / 12.0 * ((nn + 1) - tie_term / (nn * (nn - 1)))
    if var <= 0:
        return RankTest(u=u, p=1.0 if u <= mu else 0.0, n_base=n2, n_new=n1, method="normal")
    z = (u - mu - 0.5) / math.sqrt(var)
    p = 0.5 * math.erfc(z / math.sqrt(2))
    return RankTest(u=u, p=p, n_base=n2, n_new=n1, method="normal")
