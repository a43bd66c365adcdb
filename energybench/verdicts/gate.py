"""Regression gates: ``energy:+5%``-style expressions and their decision on per-round figures (data only).

Shared by the pytest plugin (``--energy-compare-fail``) and ``energybench compare --fail-on`` so both
decide the same way. A gate fails only when a one-sided test says the figure grew significantly (alpha 0.01
by default, corrected across the comparison) AND the growth may be as large as the threshold: a threshold
alone fires on noise, a test alone fires on tiny but real changes nobody cares about.

"May be as large as the threshold" is read from an honest interval: the upper end of the change's interval
must pass the threshold. Honest means the interval holds what moves between the two sides: in an A/B session
drift cancels pair by pair; with a history of baseline runs it is in their medians' spread; two separate runs
add this machine's between-run spread (``verdicts.drift``). This is what makes a +5% regression against a +5%
gate a catch rather than a coin flip: the median of a true +5% lands below 5% half the time, its interval's
upper end almost never (``benchmarks/bench_gate_accuracy.py``, docs/performance.md). Each gate also states
what it can see (``verdicts.power``): its minimum detectable effect, and whether it is blind.
With too few rounds for any test, the threshold decides alone and the result says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from energybench import stats
from energybench.errors import ConfigError, ResultsError
from energybench.verdicts import power
from energybench.verdicts.power import BLIND_MDE

DEFAULT_ALPHA = 0.01


@dataclass(frozen=True)
class Metric:
    """A gateable figure: its per-round field, its base unit and the absolute units a gate may use."""

    name: str
    field: str
    unit: str
    units: Mapping[str, float]
    label: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("energy", "energy_per_call_j", "J", {"J": 1.0, "mJ": 1e-3, "kJ": 1e3, "Wh": 3600.0}, "energy per call"),
        Metric("energy_per_item", "energy_per_item_j", "J", {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "kJ": 1e3},
               "energy per item"),
        Metric("co2e", "co2e_per_call_g", "g", {"g": 1.0, "mg": 1e-3, "ug": 1e-6, "kg": 1e3}, "CO2e per call"),
        Metric("power", "power_w", "W", {"W": 1.0, "mW": 1e-3, "kW": 1e3}, "mean power"),
        Metric("duration", "duration_per_call_s", "s", {"s": 1.0, "ms": 1e-3, "us": 1e-6}, "duration per call"),
    )
}

GRAMMAR = (
    "gate grammar: METRIC:+N% or METRIC:+N<unit>, METRIC one of "
    + ", ".join(METRICS)
    + "; units J/mJ/kJ (energy), g/mg/kg (co2e), W (power), s/ms (duration); e.g. energy:+5% or energy:+0.5J"
)

_GATE = re.compile(r"^\s*(?P<metric>[^:\s]*)\s*:\s*(?P<sign>[+-]?)\s*(?P<num>[^%a-zA-Z\s]*)\s*(?P<unit>\S*)\s*$")


@dataclass(frozen=True)
class Gate:
    """A parsed gate: fail when ``metric`` grows by more than ``threshold`` (a fraction if ``relative``)."""

    metric: Metric
    threshold: float  # fraction (0.05) when relative, else in the metric's base unit
    relative: bool
    text: str

    def describe(self) -> str:
        if self.relative:
            return f"{self.metric.name}:+{self.threshold * 100:g}%"
        return f"{self.metric.name}:+{self.threshold:g}{self.metric.unit}"


def parse_gate(text: str) -> Gate:
    """Parse one expression; a ``ConfigError`` names the bad part and shows the grammar."""
    m = _GATE.match(text or "")
    if not m or ":" not in text:
        raise ConfigError(f"bad gate {text!r}: expected METRIC:THRESHOLD; {GRAMMAR}")
    name, sign, num, unit = m["metric"], m["sign"], m["num"], m["unit"]
    metric = METRICS.get(name)
    if metric is None:
        raise ConfigError(f"bad gate {text!r}: unknown metric {name!r}; {GRAMMAR}")
    if sign == "-":
        raise ConfigError(f"bad gate {text!r}: threshold must be an increase (+N), not {sign}{num}; {GRAMMAR}")
    try:
        value = float(num)
    except ValueError:
        what = f"threshold {num!r} is not a number" if num else "the threshold has no number after '+'"
        raise ConfigError(f"bad gate {text!r}: {what}; {GRAMMAR}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"bad gate {text!r}: threshold {num!r} must be a finite number >= 0; {GRAMMAR}")
    if unit == "%":
        return Gate(metric, value / 100.0, True, text.strip())
    if not unit:
        raise ConfigError(f"bad gate {text!r}: missing unit after {num!r} (% or {metric.unit}); {GRAMMAR}")
    scale = metric.units.get(unit)
    if scale is None:
        raise ConfigError(
            f"bad gate {text!r}: unit {unit!r} does not fit {metric.name} (use % or "
            f"{'/'.join(metric.units)}); {GRAMMAR}"
        )
    return Gate(metric, value * scale, False, text.strip())


def parse_gates(texts: Iterable[str] | None) -> list[Gate]:
    """Parse several expressions; each argument may also hold comma-separated gates."""
    gates = []
    for text in texts or ():
        for part in str(text).split(","):
            if part.strip():
                gates.append(parse_gate(part))
    return gates


#: How the baseline is compared: two separate runs (rounds vs rounds, with the between-run spread), an A/B
#: session (trial pairs measured interleaved), or a history of baseline runs (their medians' spread).
MODES = {
    "independent": "Welch t on the log rounds of two separate runs, with the between-run spread of this machine",
    "paired": "paired t on per-trial log ratios of an A/B session (drift cancels)",
    "history": "prediction t on log run medians (the baseline's run-to-run spread is in it)",
}


@dataclass(frozen=True)
class GateResult:
    """The decision of one gate on one benchmark, with every figure a message about it quotes.

    ``reason`` is one of ``regression`` (over the threshold and significant), ``untested-regression`` (over
    the threshold, too few rounds to test), ``not-significant`` (possibly over the threshold, not significant)
    and ``within`` (within the threshold). ``p`` is the test's own one-sided p; ``p_adjusted`` after correcting
    across every gate decision of the comparison (what decides, and the one p every output shows). ``se`` and
    ``df`` are the test's on the log scale; ``mde`` the change it catches 80% of the time across ``family``
    gate decisions (``verdicts.power``), in the gate's terms (a fraction, or the metric's unit).
    """

    gate: Gate
    benchmark: str
    passed: bool
    base_median: float
    new_median: float
    change: float  # fraction when relative, else base unit
    ci_low: float
    ci_high: float
    p: float
    n_base: int
    n_new: int
    tested: bool  # False: too few rounds, decided on the threshold alone
    reason: str
    alpha: float = DEFAULT_ALPHA
    mode: str = "independent"
    p_adjusted: float = math.nan
    se: float = math.nan
    df: float = math.nan
    family: int = 1
    mde: float = math.inf
    between_sd: float = 0.0  # the between-run spread a separate-run test allowed for (0: none needed)

    @property
    def mde_relative(self) -> float:
        """The MDE as a fraction of the baseline (absolute gates convert with the baseline's median)."""
        if self.gate.relative:
            return self.mde
        return self.mde / self.base_median if self.base_median > 0 else math.inf

    @property
    def blind(self) -> bool:
        """It could not fail: no test, or it would miss even a doubling (``power.BLIND_MDE``)."""
        return self.passed and (not self.tested or not self.mde_relative < BLIND_MDE)

    @property
    def enforces(self) -> bool:
        """Whether a regression of the threshold's size is caught at least 80% of the time."""
        return self.tested and self.mde <= self.gate.threshold

    def decided(self, p_adjusted: float, family: int = 1) -> GateResult:
        """This result decided on the corrected p (the comparison corrects across all its ``family`` gate
        decisions), with the minimum detectable effect at that family's strictest level."""
        over = self.reason != "within"
        significant = p_adjusted < self.alpha
        passed = not (over and (significant or not self.tested))
        if not over:
            reason = "within"
        elif not self.tested:
            reason = "untested-regression"
        elif significant:
            reason = "regression"
        else:
            reason = "not-significant"
        family = max(family, 1)
        log_effect = power.log_mde(self.se, self.df, self.alpha / family) if self.tested else math.inf
        if self.gate.relative:
            effect = math.expm1(log_effect) if log_effect < 700 else math.inf
        else:
            effect = self.base_median * math.expm1(log_effect) if log_effect < 700 else math.inf
        return replace(self, passed=passed, reason=reason, p_adjusted=p_adjusted, family=family, mde=effect)


def _change(mb: float, mn: float, relative: bool) -> float:
    if relative:
        return mn / mb - 1.0 if mb > 0 else (math.inf if mn > 0 else 0.0)
    return mn - mb


def unjudged(gate: Gate, benchmark: str, alpha: float = DEFAULT_ALPHA, mode: str = "paired") -> GateResult:
    """A gate on a benchmark no pair of which stands (``reason`` ``no-pairs``): it passes without a test, so it
    is blind and the comparison exits ``power.EXIT_BLIND``, never a plain pass."""
    return GateResult(gate, benchmark, True, math.nan, math.nan, math.nan, math.nan, math.nan, 1.0, 0, 0, False,
                      "no-pairs", alpha, mode, p_adjusted=1.0)


def separate_test(base: Sequence[float], new: Sequence[float], between_sd: float, aligned: bool) -> stats.RatioTest:
    """Two separate runs' rounds, with the between-run spread (the difference of two run levels carries twice
    its variance). ``aligned``: round k of one run is the same calls in the same place as round k of the other,
    counted the same way (counted runs), so they are compared round by round: a first round that costs more in
    every session (a benchmark's first allocations: 6% in a measured one) is not mistaken for scatter, which
    with two rounds a side left such a gate blind."""
    if aligned and len(base) == len(new):
        return stats.paired_ratio(base, new, between_sd=math.sqrt(2.0) * between_sd)
    return stats.welch_ratio(base, new, between_var=2.0 * between_sd * between_sd)


def evaluate_gate(
    gate: Gate,
    base: Sequence[float],
    new: Sequence[float],
    *,
    alpha: float = DEFAULT_ALPHA,
    benchmark: str = "",
    mode: str = "independent",
    between_sd: float = 0.0,
    aligned: bool = False,
) -> GateResult:
    """Test one gate on one benchmark, uncorrected (``GateResult.decided`` applies a corrected p).

    ``independent``: ``base`` and ``new`` are the rounds of two runs, and ``between_sd`` the standard deviation
    of one run's level around the machine's (``verdicts.drift``): the difference of two runs carries twice its
    variance; ``aligned`` rounds (counted runs: ``separate_test``) are compared round by round. ``paired``: they
    are aligned trial by trial (an A/B session). ``history``: ``base`` holds one median per past baseline run.
    """
    if mode not in MODES:
        raise ValueError(f"unknown gate mode {mode!r}")
    if not base or not new:
        side = "baseline" if not base else "new run"
        raise ResultsError(
            f"gate {gate.text!r} on {benchmark!r}: the {side} has no {gate.metric.field} figures"
            + (" (run with --energy-region / --region for CO2e)" if gate.metric.name == "co2e" else "")
        )
    mb, mn = stats.median(base), stats.median(new)
    change = _change(mb, mn, gate.relative)
    if mode == "independent":
        test = separate_test(base, new, between_sd, aligned)
    elif mode == "paired":
        test = stats.paired_ratio(base, new)
    else:
        test = stats.prediction_ratio(base, mn)
    p, tested = test.p_higher, test.testable and test.n >= (2 if mode == "independent" else 3)
    scale = 1.0 if gate.relative else mb  # a ratio's interval, in the metric's unit for absolute gates
    lo, hi = scale * (test.ci_low - 1.0), scale * (test.ci_high - 1.0)
    if math.isfinite(test.ratio):  # the test's own estimate: drift cancelled (paired), vs the runs' centre
        change = scale * (test.ratio - 1.0)
    # an honest interval (drift is in it): a growth as large as the threshold is still possible when its upper
    # end passes it; without a test, the change itself decides
    over = (hi if tested and math.isfinite(hi) else change) > gate.threshold
    result = GateResult(gate, benchmark, True, mb, mn, change, lo, hi, p, len(base), len(new), tested,
                        "not-significant" if over else "within", alpha, mode, se=test.se, df=test.df,
                        between_sd=between_sd if mode == "independent" else 0.0)
    return result.decided(p)
