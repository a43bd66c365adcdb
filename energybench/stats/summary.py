"""Summaries of one figure over rounds: median, its confidence interval, spread, and the stability rule.

Medians, because energy rounds on a shared machine are skewed by bursts of foreign load (a few rounds much
slower, never much faster). The interval is a percentile bootstrap (fixed seed, so a decision can be
reproduced from the saved file) while that is cheap, and the distribution-free order-statistic interval of
the median beyond ``BOOTSTRAP_MAX_N`` values, so a results file of 300,000 rounds costs milliseconds and a
few MB, not minutes and gigabytes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: Relative spread (IQR / median) above which a benchmark is reported as unstable.
UNSTABLE_SPREAD = 0.10
#: Bootstrap resamples for confidence intervals; 2000 keeps a 95% interval stable to ~1% of its width.
BOOTSTRAP_RESAMPLES = 2000
#: Above this many values the median's interval comes from order statistics instead of a bootstrap.
BOOTSTRAP_MAX_N = 2000


def per_item(joules: float, items: float | None) -> float:
    """Joules per item of one round; ``items`` may be fractional (MiniLM counts thousands of sentences), and
    a round that recorded no item count is one item. The one place this division is written."""
    return joules / items if items else joules


def clean(values: Sequence[float | None]) -> list[float]:
    """The finite values (NaN, inf and None are rounds without a figure)."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default)."""
    xs = sorted(clean(values))
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    xs = clean(values)
    return statistics.median(xs) if xs else math.nan


def spread(values: Sequence[float]) -> float:
    """Relative spread: interquartile range over median (robust to a single slow round)."""
    med = median(values)
    if not med or math.isnan(med):
        return math.nan
    return (quantile(values, 0.75) - quantile(values, 0.25)) / abs(med)


def _order_statistic_ci(xs: Sequence[float], conf: float) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (normal approximation of the binomial)."""
    from energybench.stats.distributions import normal_ppf

    s = sorted(xs)
    n = len(s)
    z = normal_ppf(0.5 + conf / 2)
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2 + half))
    return s[lo], s[hi]


def bootstrap_ci(
    values: Sequence[float], conf: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """CI of the median: percentile bootstrap up to ``BOOTSTRAP_MAX_N`` values, order statistics beyond."""
    import numpy as np

    xs = clean(values)
    if not xs:
        return (math.nan, math.nan)
    if len(xs) == 1:
        return (xs[0], xs[0])
    if len(xs) > BOOTSTRAP_MAX_N:
        return _order_statistic_ci(xs, conf)
    arr = np.asarray(xs, dtype=float)
    rng = np.random.default_rng(seed)
    meds = np.median(rng.choice(arr, size=(resamples, arr.size), replace=True), axis=1)
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
    """CI of the change in medians between two independent samples: ``new/base - 1`` (relative) or
    ``new - base``. Bootstrap while cheap; beyond, each median's order-statistic interval gives its standard
    error and the two combine (on the log scale for a relative change)."""
    import numpy as np

    b, n = clean(base), clean(new)
    if not b or not n:
        return (math.nan, math.nan)
    if max(len(b), len(n)) > BOOTSTRAP_MAX_N:
        return _large_change_ci(b, n, relative, conf)
    rng = np.random.default_rng(seed)
    mb = np.median(rng.choice(np.asarray(b), size=(resamples, len(b)), replace=True), axis=1)
    mn = np.median(rng.choice(np.asarray(n), size=(resamples, len(n)), replace=True), axis=1)
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


def _large_change_ci(b: list[float], n: list[float], relative: bool, conf: float) -> tuple[float, float]:
    from energybench.stats.distributions import normal_ppf

    z = normal_ppf(0.5 + conf / 2)
    mb, mn = statistics.median(b), statistics.median(n)
    (bl, bh), (nl, nh) = _order_statistic_ci(b, conf), _order_statistic_ci(n, conf)
    if relative:
        if mb <= 0 or mn <= 0 or bl <= 0 or nl <= 0:
            return (math.nan, math.nan)
        se = math.hypot(math.log(bh / bl), math.log(nh / nl)) / (2 * z)
        centre = math.log(mn / mb)
        return (math.exp(centre - z * se) - 1.0, math.exp(centre + z * se) - 1.0)
    se = math.hypot(bh - bl, nh - nl) / (2 * z)
    return (mn - mb - z * se, mn - mb + z * se)


@dataclass(frozen=True)
class Summary:
    """Median with its 95% CI and the usual spread figures, for one figure over rounds.

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
    """Median, CI and spread of one figure's rounds (rounds without a figure are left out of ``n``)."""
    xs = clean(values)
    n = len(xs)
    if n == 0:
        return Summary(0)
    lo, hi = bootstrap_ci(xs, conf)
    return Summary(
        n=n, median=statistics.median(xs), mean=statistics.fmean(xs), stdev=statistics.stdev(xs) if n > 1 else 0.0,
        min=min(xs), max=max(xs), iqr=quantile(xs, 0.75) - quantile(xs, 0.25), spread=spread(xs), ci_low=lo,
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
