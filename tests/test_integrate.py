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
