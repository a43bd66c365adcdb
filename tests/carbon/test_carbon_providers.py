"""Providers: fixed factor, region, time series; PUE; option parsing and precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from energybench.carbon import (
    FixedIntensity,
    TimeSeriesIntensity,
    lookup_region,
    parse_intensity,
    parse_pue,
    resolve_provider,
)
from energybench.errors import ConfigError, IntensityDataError, UnknownRegionError
from energybench.measurement import CarbonInfo

DATA = Path(__file__).parents[1] / "support" / "data"
T0 = 1714521600.0  # 2024-05-01T00:00:00Z, the first row of tests/support/data/intensity_hourly.csv


def test_no_option_means_no_provider():
    assert resolve_provider() is None
    assert resolve_provider(region="  ", intensity="") is None


def test_fixed_factor_grams_and_provenance():
    p = resolve_provider(intensity="250", pue="1.2")
    assert isinstance(p, FixedIntensity)
    info = p.carbon([(0.0, 1.0, 1.8e6), (1.0, 2.0, 1.8e6)])  # 1 kWh
    assert isinstance(info, CarbonInfo)
    assert info.co2e_g == pytest.approx(250 * 1.2)
    assert (info.intensity_g_per_kwh, info.pue, info.method, info.region) == (250.0, 1.2, "fixed", "custom")
    assert "--intensity" in info.source


def test_region_provider_states_region_year_source_and_default_pue():
    fra = lookup_region("fra")
    info = resolve_provider(region="fra").carbon([(0.0, 10.0, 7.2e6)])  # 2 kWh
    assert info.co2e_g == pytest.approx(2 * fra.intensity_g_per_kwh)
    assert (info.region, info.year, info.source, info.method) == ("FRA", fra.year, fra.source, "region")
    assert info.pue == 1.0


def test_user_factor_wins_over_region_which_becomes_a_label():
    info = resolve_provider(region="aws:us-east-1", intensity=400).carbon([(0.0, 1.0, 3.6e6)])
    assert info.co2e_g == pytest.approx(400)
    assert info.region == "aws:us-east-1" and info.method == "fixed"


def test_unknown_region_alone_is_an_error():
    with pytest.raises(UnknownRegionError, match="closest: FRA"):
        resolve_provider(region="FRAA")


def test_factor_and_csv_together_are_ambiguous():
    with pytest.raises(ConfigError, match="pass one"):
        resolve_provider(intensity=200, intensity_csv=DATA / "intensity_hourly.csv")


@pytest.mark.parametrize("text, value", [("250", 250.0), (" 12.5 ", 12.5), ("300 g/kWh", 300.0), (99, 99.0),
                                         ("0", 0.0), (0, 0.0), ("0 g/kWh", 0.0)])
def test_parse_intensity_accepts(text, value):
    assert parse_intensity(text) == value


@pytest.mark.parametrize("text", ["abc", "-5", "-0.001", "nan", "inf", "", "g/kWh", True])
def test_parse_intensity_rejects_with_the_fix(text):
    with pytest.raises(ConfigError) as info:
        parse_intensity(text)
    assert "--intensity 250" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text, value", [("1", 1.0), ("1.58", 1.58), (1.1, 1.1)])
def test_parse_pue_accepts(text, value):
    assert parse_pue(text) == value


@pytest.mark.parametrize("text", ["0.9", "0", "-1", "x", "nan"])
def test_parse_pue_rejects_with_the_fix(text):
    with pytest.raises(ConfigError, match=r"--pue 1\.2"):
        parse_pue(text)


def test_bad_pue_is_reported_before_the_region_is_looked_up():
    with pytest.raises(ConfigError, match="PUE"):
        resolve_provider(region="FRA", pue="0.5")


# ------------------------------------------------------------------------------------------- time series
def hourly() -> TimeSeriesIntensity:
    p = resolve_provider(intensity_csv=DATA / "intensity_hourly.csv", region="FRA", pue=1.5)
    assert isinstance(p, TimeSeriesIntensity)
    return p


def test_series_splits_a_segment_by_overlap():
    # 52 g/kWh from 00:00, 48.5 from 01:00: a segment from 00:30 to 01:30 is half of each.
    info = hourly().carbon([(T0 + 1800, T0 + 5400, 3.6e6)])
    assert info.co2e_g == pytest.approx(1.5 * (0.5 * 52 + 0.5 * 48.5))
    assert info.intensity_g_per_kwh == pytest.approx(50.25)
    assert (info.method, info.region, info.pue, info.year) == ("timeseries", "FRA", 1.5, None)
    assert "intensity_hourly.csv" in info.source


def test_effective_intensity_is_energy_weighted():
    # 3 kWh in the 52 g hour, 1 kWh in the 61 g hour: (3*52 + 61) / 4
    info = hourly().carbon([(T0, T0 + 600, 3 * 3.6e6), (T0 + 7200, T0 + 7800, 3.6e6)])
    assert info.intensity_g_per_kwh == pytest.approx((3 * 52 + 61) / 4)
    assert info.co2e_g == pytest.approx(1.5 * (3 * 52 + 61))


def test_many_small_segments_equal_one_long_one_at_constant_power():
    p = hourly()
    whole = p.carbon([(T0 + 100, T0 + 9100, 9000.0)]).co2e_g
    pieces = p.carbon([(T0 + 100 + i, T0 + 101 + i, 1.0) for i in range(9000)]).co2e_g
    assert pieces == pytest.approx(whole, rel=1e-9)


def test_last_value_holds_for_one_more_step():
    # rows at 00, 01, 02, 03 h: the last (75.25) covers 03:00-04:00.
    info = hourly().carbon([(T0 + 3 * 3600, T0 + 4 * 3600, 3.6e6)])
    assert info.intensity_g_per_kwh == pytest.approx(75.25)


def test_instant_and_zero_energy_segments():
    p = hourly()
    assert p.carbon([(T0 + 3700, T0 + 3700, 3.6e6)]).intensity_g_per_kwh == pytest.approx(48.5)
    idle = p.carbon([(T0 + 1800, T0 + 5400, 0.0)])
    assert idle.co2e_g == 0.0 and idle.intensity_g_per_kwh == pytest.approx(50.25)


@pytest.mark.parametrize("start, end", [(T0 - 1, T0 + 10), (T0 + 3 * 3600, T0 + 4 * 3600 + 1)])
def test_series_not_covering_the_window_is_an_error_with_the_fix(start, end):
    with pytest.raises(IntensityDataError) as info:
        hourly().carbon([(start, end, 1.0)])
    msg = str(info.value)
    assert "covers 2024-05-01T00:00:00Z to 2024-05-01T04:00:00Z" in msg
    assert "add rows that cover the window" in msg and "\n" not in msg


def test_check_covers_lets_a_meter_fail_fast_before_running():
    hourly().check_covers(T0, T0 + 4 * 3600)
    with pytest.raises(IntensityDataError, match="covers 2024-05-01T00:00:00Z"):
        hourly().check_covers(T0 + 5 * 3600, T0 + 5 * 3600)
    resolve_provider(intensity=100).check_covers(0.0, 1e12)  # a fixed factor prices any time
