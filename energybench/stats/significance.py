"""Significance tests behind every verdict and gate, each stating its n, its interval and its name.

* ``paired_ratio``: trials run interleaved (baseline, method, baseline, method...), so trial ``t`` of both
  sides shares whatever the machine was doing then. The per-trial log ratio cancels that shared drift; its
  mean, Student t interval and one-sample t-test give the ratio (a geometric mean), its CI and p. The
  interval is exact for log-normal noise and the tests check its coverage by simulation.
* ``mann_whitney_greater``: two independent samples (rounds of two separate runs): robust to the skew of
  foreign load. Exact for small samples without ties, normal approximation beyond; O(n log n) by ranks.
* ``prediction_test``: a new run against the spread of past runs' medians, so the variance between runs
  (drift) is part of the p-value.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from energybench.stats.distributions import normal_cdf, t_cdf, t_ppf, t_sf
from energybench.stats.summary import clean

#: Exact Mann-Whitney distribution up to this many values per side without ties; normal approximation above.
EXACT_MAX_N = 30


@dataclass(frozen=True)
class RankTest:
    """One-sided Mann-Whitney U result for 'new is larger than base'."""

    u: float  # pairs (new > base), ties counted 1/2
    p: float
    n_base: int
    n_new: int
    method: str  # "exact" | "normal" | "none"


@lru_cache(maxsize=256)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """Number of orderings giving each U for sample sizes n1, n2 (no ties): the classic recurrence."""
    table: dict[tuple[int, int], list[int]] = {}
    for i in range(n1 + 1):
        for j in range(n2 + 1):
            if i == 0 or j == 0:
                table[(i, j)] = [1]
                continue
            a, b = table[(i - 1, j)], table[(i, j - 1)]
            row = [0] * (i * j + 1)
            for u, c in enumerate(a):
                row[u + j] += c
            for u, c in enumerate(b):
                row[u] += c
            table[(i, j)] = row
    return tuple(table[(n1, n2)])


def min_p_value(n_base: int, n_new: int) -> float:
    """Smallest one-sided p the rank test can give for these sample sizes (complete separation); computed in
    logs, so hundreds of rounds per side never overflow."""
    if n_base == 0 or n_new == 0:
        return 1.0
    log_comb = math.lgamma(n_base + n_new + 1) - math.lgamma(n_base + 1) - math.lgamma(n_new + 1)
    return math.exp(-log_comb)


def _rank_sum(pooled: Sequence[float], first: int) -> tuple[float, list[int]]:
    """Sum of the average ranks (1-based) of ``pooled[first:]`` and the sizes of the tie groups: O(n log n)."""
    import numpy as np

    _, inverse, counts = np.unique(np.asarray(pooled, dtype=float), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average = ends - (counts - 1) / 2.0  # mean of the ranks a tie group spans
    return float(average[inverse[first:]].sum()), [int(c) for c in counts[counts > 1]]


def mann_whitney_greater(base: Sequence[float], new: Sequence[float]) -> RankTest:
    """One-sided Mann-Whitney U test of H1: values in ``new`` tend to be larger than in ``base``.

    Exact distribution for small samples without ties; otherwise the normal approximation with tie and
    continuity corrections (what scipy's ``method="asymptotic"`` does).
    """
    b, n = clean(base), clean(new)
    n1, n2 = len(n), len(b)
    if n1 == 0 or n2 == 0:
        return RankTest(u=math.nan, p=1.0, n_base=n2, n_new=n1, method="none")
    rank_sum, ties = _rank_sum(b + n, n2)
    u = rank_sum - n1 * (n1 + 1) / 2
    if not ties and max(n1, n2) <= EXACT_MAX_N:
        counts = _u_counts(n1, n2)
        k = int(round(u))
        p = sum(counts[k:]) / math.comb(n1 + n2, n1)
        return RankTest(u=u, p=min(1.0, p), n_base=n2, n_new=n1, method="exact")
    mu = n1 * n2 / 2.0
    nn = n1 + n2
    var = n1 * n2 / 12.0 * ((nn + 1) - sum(t**3 - t for t in ties) / (nn * (nn - 1)))
    if var <= 0:
        return RankTest(u=u, p=1.0 if u <= mu else 0.0, n_base=n2, n_new=n1, method="normal")
    z = (u - mu - 0.5) / math.sqrt(var)
    return RankTest(u=u, p=1.0 - normal_cdf(z), n_base=n2, n_new=n1, method="normal")


@dataclass(frozen=True)
class RatioTest:
    """A ratio new/base with its confidence interval and the p-values of both one-sided tests.

    ``test`` names the method (``paired t on log ratios``, ``Welch t on log values``, ``prediction t``);
    ``n`` is the number of pairs (paired) or of new values; ``df`` the degrees of freedom (NaN without a test).
    """

    ratio: float
    ci_low: float
    ci_high: float
    p_lower: float  # H1: new < base
    p_higher: float  # H1: new > base
    n: int
    df: float
    test: str
    conf: float = 0.95
    log_mean: float = math.nan  # the estimate and its standard error on the log scale (t-based tests)
    se: float = math.nan

    @property
    def p(self) -> float:
        """Two-sided p."""
        return min(1.0, 2 * min(self.p_lower, self.p_higher))

    def p_beyond(self, margin: float) -> float:
        """Two-sided p of a minimum-effect test: H1 is a change of more than ``margin`` either way (the ratio
        below 1/(1+margin) or above 1+margin), not merely a change. A claim on it is a claim that the change is
        at least that large, so a real 1% effect measured very precisely is not announced as a saving."""
        if margin <= 0 or not (math.isfinite(self.log_mean) and math.isfinite(self.se) and self.testable):
            return self.p
        shift = math.log1p(margin)
        if self.se == 0:
            return 0.0 if abs(self.log_mean) > shift else 1.0
        lower = t_cdf((self.log_mean + shift) / self.se, self.df)  # H1: log ratio < -shift
        higher = t_sf((self.log_mean - shift) / self.se, self.df)  # H1: log ratio > +shift
        return min(1.0, 2 * min(lower, higher))

    @property
    def testable(self) -> bool:
        return math.isfinite(self.df) and self.df >= 1


NO_TEST = "no test"


def _untestable(ratio: float, n: int, test: str) -> RatioTest:
    return RatioTest(ratio, math.nan, math.nan, 1.0, 1.0, n, math.nan, test)


def _t_result(mean: float, se: float, df: float, n: int, test: str, conf: float) -> RatioTest:
    if se == 0:
        p_lower = 0.0 if mean < 0 else 1.0
        p_higher = 0.0 if mean > 0 else 1.0
        return RatioTest(math.exp(mean), math.exp(mean), math.exp(mean), p_lower, p_higher, n, df, test, conf,
                         mean, se)
    t = mean / se
    half = t_ppf(0.5 + conf / 2, df) * se
    return RatioTest(math.exp(mean), math.exp(mean - half), math.exp(mean + half), t_cdf(t, df), t_sf(t, df), n,
                     df, test, conf, mean, se)


def paired_ratio(base: Sequence[float], new: Sequence[float], conf: float = 0.95,
                 between_sd: float = 0.0) -> RatioTest:
    """Ratio of paired values (the same trials): geometric mean of per-trial ratios, t interval, t-test.

    ``between_sd`` is the standard deviation of the log ratio between runs (``energybench.verdicts.spread``): a
    ratio drifts from run to run by more than its trials scatter inside one run (measured: 1.00, 1.08 and 1.16
    for one row in three runs, each with a +-3% interval), so a verdict that should hold for the next run too
    adds it to the standard error (a random effect with a known variance; Welch-Satterthwaite degrees of freedom).

    Pairs where either side has no positive finite figure are left out. With fewer than 2 pairs there is no
    interval and no test (``testable`` is False).
    """
    logs = [math.log(y / x) for x, y in zip(base, new, strict=True)
            if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0]
    test = "paired t on log ratios"
    if not logs:
        return _untestable(math.nan, 0, test)
    n = len(logs)
    mean = statistics.fmean(logs)
    if n < 2:
        return _untestable(math.exp(mean), n, test)
    se = statistics.stdev(logs) / math.sqrt(n)
    if between_sd > 0:
        total = math.sqrt(se * se + between_sd * between_sd)
        df = (n - 1) * (total / se) ** 4 if se > 0 else math.inf
        return _t_result(mean, total, min(df, 1000.0), n, f"{test} + between-run spread", conf)
    return _t_result(mean, se, n - 1, n, test, conf)


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _variance(xs: Sequence[float]) -> float:
    """Sample variance in floats (``statistics.variance`` is exact and slow: 300,000 rounds took a minute)."""
    m = _mean(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def welch_ratio(base: Sequence[float], new: Sequence[float], conf: float = 0.95,
                between_var: float = 0.0) -> RatioTest:
    """Ratio of geometric means of two independent samples, Welch t interval and test on the logs.

    ``between_var`` is the variance of the difference of two runs' log levels (``verdicts.drift``): when the
    samples are two separate runs, their levels differ by more than their values scatter, and a test that
    leaves this out fails identical code. It enters the standard error as a known variance (infinite degrees
    of freedom in Welch-Satterthwaite)."""
    lb = [math.log(x) for x in base if 0 < x < math.inf]  # NaN fails both comparisons
    ln = [math.log(x) for x in new if 0 < x < math.inf]
    test = "Welch t on log values"
    if not lb or not ln:
        return _untestable(math.nan, len(ln), test)
    mean = _mean(ln) - _mean(lb)
    if len(lb) < 2 or len(ln) < 2:
        return _untestable(math.exp(mean), len(ln), test)
    vb, vn = _variance(lb) / len(lb), _variance(ln) / len(ln)
    total = vb + vn + max(between_var, 0.0)
    se = math.sqrt(total)
    sampled = vb**2 / (len(lb) - 1) + vn**2 / (len(ln) - 1)
    df = min(total**2 / sampled, 1e6) if sampled > 0 else (1e6 if between_var > 0 else float(len(lb) + len(ln) - 2))
    if between_var > 0:
        test += " + between-run spread"
    return _t_result(mean, se, df, len(ln), test, conf)


def prediction_ratio(history: Sequence[float], new: float, conf: float = 0.95) -> RatioTest:
    """A new run's median against the medians of ``history`` runs: is it outside what run-to-run variation
    alone would give? (a t prediction interval on the log medians, ``K - 1`` degrees of freedom)."""
    logs = [math.log(x) for x in clean(history) if x > 0]
    test = "prediction t on log run medians"
    if not logs or not (new > 0 and math.isfinite(new)):
        return _untestable(math.nan, len(logs), test)
    centre = statistics.fmean(logs)
    mean = math.log(new) - centre
    k = len(logs)
    if k < 2:
        return _untestable(math.exp(mean), k, test)
    se = statistics.stdev(logs) * math.sqrt(1 + 1 / k)
    return _t_result(mean, se, k - 1, k, test, conf)
