"""Statistics: the rank test agrees with scipy, the bootstrap CI covers the truth, spread flags noise."""

import random

import pytest
from scipy.stats import mannwhitneyu

from energybench import stats


@pytest.mark.parametrize("n_base,n_new,ties", [(5, 5, False), (3, 8, False), (10, 10, False), (40, 35, False),
                                               (8, 9, True)])
def test_mann_whitney_matches_scipy(n_base, n_new, ties):
    rng = random.Random(n_base * 100 + n_new)
    base = [rng.random() for _ in range(n_base)]
    new = [rng.random() + 0.15 for _ in range(n_new)]
    if ties:
        base, new = [round(x, 1) for x in base], [round(x, 1) for x in new]
    ours = stats.mann_whitney_greater(base, new)
    method = "exact" if ours.method == "exact" else "asymptotic"
    ref = mannwhitneyu(new, base, alternative="greater", method=method)
    assert ours.u == pytest.approx(ref.statistic)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-9)


def test_complete_separation_reaches_the_minimum_p():
    res = stats.mann_whitney_greater([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert res.p == pytest.approx(stats.min_p_value(5, 5)) == pytest.approx(1 / 252)
    assert stats.mann_whitney_greater([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]).p == pytest.approx(1.0)


def test_summary_and_bootstrap_ci_bracket_the_median():
    values = [10.0, 10.2, 9.9, 10.1, 10.05, 30.0]  # one slow round
    s = stats.summarize(values)
    assert s.n == 6 and s.median == pytest.approx(10.075)
    assert s.ci_low <= s.median <= s.ci_high
    assert s.ci_high < 30  # the median CI is not dragged by the outlier
    assert stats.bootstrap_ci(values) == stats.bootstrap_ci(values)  # deterministic


def test_change_ci_contains_a_known_shift():
    rng = random.Random(3)
    base = [100 + rng.gauss(0, 1) for _ in range(20)]
    new = [125 + rng.gauss(0, 1) for _ in range(20)]
    lo, hi = stats.change_ci(base, new)
    assert lo < 0.25 < hi and hi - lo < 0.05
    lo, hi = stats.change_ci(base, new, relative=False)
    assert lo < 25 < hi


def test_stability_warning_only_for_large_spread():
    assert stats.stability_warning([1.0, 1.01, 0.99, 1.0, 1.02]) is None
    msg = stats.stability_warning([1.0, 1.5, 0.7, 1.2, 0.9])
    assert msg and "unstable" in msg
