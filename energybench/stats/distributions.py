"""The normal and Student t distributions, written out so the core needs no scipy.

The t distribution's CDF is the regularized incomplete beta function, evaluated with Lentz's continued
fraction (Numerical Recipes, 3rd ed., 6.4): accurate to ~1e-12, which tests check against scipy. Beyond
``LARGE_DF`` degrees of freedom (a test whose variance is mostly a known between-run spread) the continued
fraction needs thousands of terms; there the t is within 1e-8 of its normal expansions (Abramowitz and
Stegun 26.7.8 for the CDF, Cornish-Fisher for the quantile), which are used instead.
"""

from __future__ import annotations

import math


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def normal_ppf(p: float) -> float:
    """Quantile of the standard normal (Acklam's rational approximation, refined by one Newton step)."""
    if not 0 < p < 1:
        raise ValueError(f"normal_ppf needs 0 < p < 1, got {p}")
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    elif p <= 1 - low:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    e = normal_cdf(x) - p
    return x - e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


#: Degrees of freedom beyond which the t's normal expansions replace the continued fraction.
LARGE_DF = 1e4


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    if df > LARGE_DF:
        z = t * (1 - 1 / (4 * df)) / math.sqrt(1 + t * t / (2 * df))
        return 0.5 * math.erfc(z / math.sqrt(2))
    if t * t < df:  # near the centre: P(|T| < t) = I(t^2 / (df + t^2); 1/2, df/2) keeps its digits
        tail = 0.5 * (1.0 - betainc(0.5, df / 2, t * t / (df + t * t)))
    else:
        tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    return 1.0 - t_sf(t, df)


def t_pdf(t: float, df: float) -> float:
    return math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
                    - (df + 1) / 2 * math.log1p(t * t / df))


def _cornish_fisher(z: float, df: float) -> float:
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t: Newton steps on the CDF from the Cornish-Fisher expansion (a few CDF calls,
    exact to 1e-12), bisection where Newton would leave its bracket (few degrees of freedom, far tails)."""
    if not 0 < p < 1:
        raise ValueError(f"t_ppf needs 0 < p < 1, got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1 - p, df)
    if df > LARGE_DF:
        return _cornish_fisher(normal_ppf(p), df)
    q = 1.0 - p  # the upper tail, where the CDF would round to 1
    lo, hi = 0.0, max(1.0, normal_ppf(p))
    while t_sf(hi, df) > q:
        lo, hi = hi, hi * 2
    x = _cornish_fisher(normal_ppf(p), df) if df >= 3 else (lo + hi) / 2
    for _ in range(200):
        if not lo < x < hi:
            x = (lo + hi) / 2
        excess = t_sf(x, df) - q  # > 0: x is below the quantile
        if excess > 0:
            lo = x
        else:
            hi = x
        step = excess / t_pdf(x, df)
        x_next = x + step
        if abs(step) < 1e-13 * max(1.0, abs(x)) or hi - lo < 1e-13 * max(1.0, hi):
            return x_next if lo <= x_next <= hi else x
        x = x_next
    return x
