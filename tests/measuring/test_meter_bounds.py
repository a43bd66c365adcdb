"""The meter never gives a figure beyond what hardware can draw, and never one whose window has no known duration.

A sampler that declares no bound of its own (a plugin's) is held to its device kind's physical limit
(``record.bounds``): a counter in the wrong unit, a counter stepping backwards, a power reading of 1e300 W, and a
clock that jumps 10,000 s forward each end as n/a with the reason, a flagged lower bound, or a flagged window,
never as a "measured" figure, and every window's round can be written and read back.
"""

from __future__ import annotations

import math
import time

import pytest
from bad_samplers import KEY, WATTS, Absurd, Backwards, Estimate
from sampler_doubles import ClockCounter, ConstantPower

from energybench.measurement import Measurement
from energybench.measuring.meter import Meter
from energybench.record import Benchmark, Round, Run


def window(samplers: list, seconds: float, **kw: object) -> Measurement:
    with Meter(samplers, hooks=[], interval=0.02, counter_interval=0.05, **kw) as meter, meter.window("w") as w:
        time.sleep(seconds)
    assert w.result is not None
    return w.result


def domain(m: Measurement, key: str):  # noqa: ANN201 - DomainEnergy
    return next(d for d in m.domains if d.key == key)


def reads_back(m: Measurement) -> Run:
    """The window as a run file holds it, written and parsed again."""
    run = Run(name="x", created="", benchmarks=(Benchmark(name="w", rounds=(Round.from_measurement(m, index=0),)),))
    return Run.from_json(run.to_json())


@pytest.mark.parametrize("sampler", [Absurd(), ConstantPower(key=KEY, watts=1e300)], ids=["counter", "power"])
def test_an_absurd_figure_is_na_with_its_reason_never_measured(sampler) -> None:
    m = window([sampler, ClockCounter()], 0.3)
    assert math.isnan(domain(m, KEY).energy_j) and KEY in m.missing_domains and m.partial
    assert any(KEY in w and ("more than" in w or "above" in w) for w in m.warnings), m.warnings
    text = str(m)
    assert f"{KEY} n/a," in text and "EJ" not in text and "EW" not in text  # n/a has no provenance
    assert m.energy_j == pytest.approx(domain(m, "cpu:package-0").energy_j)  # the other sampler's figure stands
    back = reads_back(m).benchmarks[0].rounds[0]
    assert back.partial and math.isnan(back.domains[KEY])


def test_a_counter_going_backwards_is_a_lower_bound_never_megawatts() -> None:
    """A 10 MJ counter stepping back 10 kJ: read as a reset, each step would be 10 MJ of one window."""
    m = window([Backwards(every_s=0.15)], 0.5)
    d = domain(m, KEY)
    assert d.lower_bound and m.partial
    assert 0 <= d.energy_j <= WATTS * (m.duration_s + 0.05)
    assert m.mean_power_w < 2 * WATTS
    assert any("went back from" in w and "without a reset to zero" in w for w in m.warnings), m.warnings
    reads_back(m)


def test_a_forward_clock_jump_flags_the_window_and_voids_its_time_based_figures() -> None:
    """10,000 s that never happened (a suspended VM): a model's watts x time would be 15.8 kJ of one round."""
    jump = [0.0]

    def clock() -> float:
        return time.monotonic() + jump[0]

    counter = ClockCounter()  # a hardware counter's joules do not depend on the clock: they stand
    with Meter([Estimate(clock), counter], hooks=[], clock=clock, wall_clock=time.time) as meter:
        meter.begin("w")
        time.sleep(0.1)
        jump[0] = 10_000.0
        m = meter.end("w")
    assert m.flags == ("clocks disagree",) and "flagged: clocks disagree" in str(m)
    assert any("the clocks disagree" in w and "duration is unknown" in w for w in m.warnings), m.warnings
    assert math.isnan(domain(m, "cpu:model").energy_j) and "cpu:model" in m.missing_domains
    assert 0 < domain(m, "cpu:package-0").energy_j < 40.0 * 1.0
    r = Round.from_measurement(m, index=0)
    assert r.partial and r.flags == ("clocks disagree",)
    assert reads_back(m).benchmarks[0].rounds[0].flags == ("clocks disagree",)


def test_clocks_that_agree_flag_nothing() -> None:
    m = window([Estimate(), ClockCounter()], 0.2)
    assert not m.flags and not m.partial
    assert domain(m, "cpu:model").energy_j == pytest.approx(1.58 * m.duration_s, rel=0.2, abs=0.02)


def test_a_counter_that_falls_without_a_reset_counts_nothing_for_that_step() -> None:
    from energybench.integrate import accumulate_counter, counter_delta

    back = accumulate_counter([1e7, 1e7 + 5.0, 1e7 - 1e4 + 6.0, 1e7 - 1e4 + 10.0], None)
    assert back.rejected == 2 and back.resets == 0 and back.lower_bound  # the window's end is lost
    assert back.joules == pytest.approx(5.0)  # never the 1e7 J "since a reset"
    glitch = accumulate_counter([1e7, 1e7 - 1e4, 1e7 + 8.0], None)  # an outlier that comes and goes costs nothing
    assert glitch.rejected == 1 and glitch.joules == pytest.approx(8.0) and not glitch.lower_bound
    one = counter_delta(1e7, 9.99e6, None)
    assert one.joules == 0.0 and one.lower_bound and "without a reset" in one.reasons[0]
    reset = counter_delta(500.0, 20.0, None)  # back near zero: a reset, and its 20 J count
    assert reset.resets == 1 and reset.joules == pytest.approx(20.0)
