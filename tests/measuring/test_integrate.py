"""Unit tests of the pure integration arithmetic: wraps, resets, edge interpolation."""

import math

import pytest

from energybench.integrate import (
    accumulate_counter,
    counter_delta,
    energy_above_idle,
    energy_between,
    interpolate,
    trapezoid,
)


def test_delta_without_wrap():
    assert counter_delta(10.0, 25.5, 100.0).joules == pytest.approx(15.5)


def test_delta_across_one_wrap():
    d = counter_delta(90.0, 5.0, 100.0)
    assert d.joules == pytest.approx(15.0)
    assert d.wraps == 1 and d.resets == 0


def test_backwards_on_non_wrapping_counter_is_a_reset_lower_bound():
    d = counter_delta(500.0, 20.0, None)
    assert d.resets == 1 and d.wraps == 0
    assert d.joules == pytest.approx(20.0)


def test_accumulate_counts_several_wraps_when_polled():
    # a counter of range 100 J advancing 60 J per poll wraps three times over five polls
    readings = [0.0, 60.0, 20.0, 80.0, 40.0, 0.0]
    total = accumulate_counter(readings, 100.0)
    assert total.joules == pytest.approx(300.0)
    assert total.wraps == 3


def test_accumulate_single_reading_is_zero():
    assert accumulate_counter([5.0], 100.0).joules == 0.0


def test_interpolate_inside_and_clamped_outside():
    times, values = [0.0, 1.0, 2.0], [0.0, 10.0, 30.0]
    assert interpolate(times, values, 0.5) == pytest.approx(5.0)
    assert interpolate(times, values, 1.5) == pytest.approx(20.0)
    assert interpolate(times, values, -1.0) == 0.0
    assert interpolate(times, values, 9.0) == 30.0


def test_trapezoid_constant_power_is_power_times_time():
    times = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert trapezoid(times, [40.0] * 6, 0.0, 0.5) == pytest.approx(20.0)


def test_trapezoid_linear_ramp_is_exact():
    times = [0.0, 1.0, 2.0]
    watts = [0.0, 10.0, 20.0]
    # integral of 10 t over [0.5, 1.5] = 5 * (1.5^2 - 0.5^2) = 10
    assert trapezoid(times, watts, 0.5, 1.5) == pytest.approx(10.0)


def test_trapezoid_empty_or_reversed_window():
    assert trapezoid([0.0, 1.0], [5.0, 5.0], 1.0, 1.0) == 0.0
    assert trapezoid([], [], 0.0, 1.0) == 0.0


def test_energy_above_idle_never_negative():
    assert energy_above_idle(100.0, 10.0, 5.0) == pytest.approx(50.0)
    assert energy_above_idle(10.0, 10.0, 5.0) == 0.0
    assert not math.isnan(energy_above_idle(0.0, 0.0, 0.0))


def test_energy_between_cuts_a_wrapping_counter_and_a_power_series_into_segments():
    # 10 W counter wrapping at 25 J, read every second: 0, 10, 20, 5 (wrapped), 15
    counter = energy_between([0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 10.0, 20.0, 5.0, 15.0], power=False, max_value=25.0)
    assert counter(0.0, 4.0) == pytest.approx(40.0)
    assert counter(2.5, 3.5) == pytest.approx(10.0)  # across the wrap, interpolated at both ends
    assert counter(0.0, 2.0) + counter(2.0, 4.0) == pytest.approx(counter(0.0, 4.0))
    power = energy_between([0.0, 2.0], [10.0, 30.0], power=True)
    assert power(0.0, 2.0) == pytest.approx(trapezoid([0.0, 2.0], [10.0, 30.0], 0.0, 2.0)) == pytest.approx(40.0)
    assert power(1.0, 2.0) == pytest.approx(25.0)


# -- counter sanity: no impossible reading or step is ever counted as measured joules ------------------------
def test_a_decrease_that_would_be_a_wrap_at_an_impossible_power_is_rejected_not_counted():
    # a RAPL range of 262 kJ: going back 5 J in 0.1 s is no wrap (that would be 2.6 MW), it is a bad read
    total = accumulate_counter([1000.0, 995.0, 1010.0], 262_143.0, times=[0.0, 0.1, 0.2], max_power_w=300.0)
    assert total.wraps == 0 and total.rejected == 1
    assert total.joules == pytest.approx(10.0)  # the outlier is skipped: 1000 -> 1010, not 262 kJ
    assert "more than 300 W could draw" in total.reasons[0]


def test_a_real_wrap_at_a_plausible_power_is_still_a_wrap():
    total = accumulate_counter([95.0, 5.0], 100.0, times=[0.0, 1.0], max_power_w=50.0)
    assert total.wraps == 1 and total.rejected == 0 and total.joules == pytest.approx(10.0)
    assert not total.lower_bound


def test_a_reset_to_a_huge_value_is_no_reset_and_a_glitch_that_comes_and_goes_costs_nothing():
    # NVML: a reading from before the window (or a driver glitch) would otherwise add the whole 500 MJ counter
    values = [5e8, 5e8 - 3.0, 5e8 + 40.0]  # joules: start, an older reading, end
    total = accumulate_counter(values, None, times=[0.0, 0.05, 0.2], max_power_w=800.0, slack_s=0.1)
    assert total.resets == 0 and total.rejected == 1
    assert total.joules == pytest.approx(40.0)
    assert not total.lower_bound  # the outlier healed: the counter is cumulative, nothing was lost
    at_end = accumulate_counter(values[:2], None, times=[0.0, 0.05], max_power_w=800.0, slack_s=0.1)
    assert at_end.rejected == 1 and at_end.steps == 0 and at_end.edge_lost and at_end.lower_bound


def test_readings_outside_the_range_are_ignored_and_a_lost_edge_makes_a_lower_bound():
    mid = accumulate_counter([10.0, -5.0, 20.0], 100.0, times=[0.0, 0.5, 1.0], max_power_w=50.0)
    assert mid.bad_readings == 1 and mid.joules == pytest.approx(10.0) and not mid.lower_bound
    edge = accumulate_counter([10.0, 20.0, 250.0], 100.0, times=[0.0, 0.5, 1.0], max_power_w=50.0)
    assert edge.bad_readings == 1 and edge.edge_lost and edge.lower_bound
    assert edge.joules == pytest.approx(10.0)
    nan = accumulate_counter([10.0, math.nan, 30.0], None, times=[0.0, 0.5, 1.0], max_power_w=50.0)
    assert nan.bad_readings == 1 and nan.joules == pytest.approx(20.0)


def test_reads_further_apart_than_a_wrap_period_at_max_power_are_a_lower_bound():
    # 6 J range, at most 60 W: a wrap every 0.1 s at full power, so 0.25 s between reads may hide one
    ok = accumulate_counter([1.0, 5.0], 6.0, times=[0.0, 0.08], max_power_w=60.0)
    assert not ok.lower_bound
    gap = accumulate_counter([1.0, 5.0], 6.0, times=[0.0, 0.25], max_power_w=60.0)
    assert gap.gaps == 1 and gap.lower_bound and gap.longest_gap_s == pytest.approx(0.25)


def test_a_window_with_no_plausible_step_has_no_figure():
    total = accumulate_counter([10.0, 1e12], None, times=[0.0, 0.1], max_power_w=500.0)
    assert total.steps == 0 and total.rejected == 1


def test_energy_between_leaves_rejected_steps_out_of_the_timeline():
    curve = energy_between([0.0, 1.0, 2.0], [0.0, 1e9, 20.0], power=False, max_value=None, max_power_w=100.0)
    assert curve(0.0, 2.0) == pytest.approx(20.0)
