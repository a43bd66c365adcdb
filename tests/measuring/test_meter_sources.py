"""The meter over real samplers and real carbon data: RAPL tree with wraps, CO2e by region and by time series."""

from __future__ import annotations

import time

import pytest
from sampler_doubles import ClockCounter

from energybench.carbon import lookup_region
from energybench.errors import IntensityDataError
from energybench.measuring.meter import Meter
from energybench.samplers.powercap import PowercapSampler


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class ClockedPowercap(PowercapSampler):
    """RAPL over a fake tree whose counters follow the clock at each read, like hardware registers."""

    def __init__(self, tree) -> None:  # noqa: ANN001 - a FakePowercap
        super().__init__(tree.root)
        self.tree = tree

    def read(self) -> dict[str, float]:
        self.tree.sync()
        return super().read()


def test_rapl_tree_with_wraps_matches_truth_or_says_it_is_a_lower_bound(powercap_tree):
    """50 W into a 6 J counter wraps every 0.12 s: several wraps in the window, caught by polls ~17 ms apart.

    The zone may draw at most 90 W (1.5 x its 60 W constraint), so a wrap takes at least 67 ms: two reads
    closer than that cannot have missed one. If the machine deschedules the poller for longer, the meter
    cannot know how many wraps it missed and flags the figure as a lower bound (``test_meter_sanity``
    forces that case); either way the figure is never silently low. The fake's counters follow the clock
    at each read (``ClockedPowercap``): a writer thread starved of the GIL would make them lag and jump,
    which real RAPL, updated by the hardware every millisecond, never does.
    """
    powercap_tree.add_package(0, 50.0, dram_w=6.0, max_range_uj=6_000_000, start_uj=5_500_000, max_power_w=60)
    sampler = ClockedPowercap(powercap_tree)
    meter = Meter([sampler], counter_interval=0.02)
    powercap_tree.follow_clock()
    with powercap_tree.frozen():  # the start edge's reads and the truth at the same instant
        meter.begin("train")
        truth0 = {z: powercap_tree.total_j(z) for z in powercap_tree.zones}
    time.sleep(0.6)  # not a busy loop: the poller's reads should be quick here (see test_meter_sanity)
    with powercap_tree.frozen():
        result = meter.end("train")
        truth1 = {z: powercap_tree.total_j(z) for z in powercap_tree.zones}
    meter.close()
    truth = sum(truth1[z] - truth0[z] for z in truth0)
    assert truth > 3 * 6.0  # more than three full counter ranges: the window really wrapped several times
    assert result.source == "measured"
    assert {d.method for d in result.domains} == {"rapl-powercap"}
    assert not any("impossible" in w for w in result.warnings), result.warnings
    if result.partial:  # a poll came later than a wrap period: said, and below the truth
        assert result.lower_bound_domains and result.energy_j < truth
        assert any("a whole wrap may be missing" in w for w in result.warnings)
    else:
        assert result.energy_j == pytest.approx(truth, rel=1e-6)


def test_region_carbon_is_joules_times_the_regions_factor():
    meter = Meter([ClockCounter(watts=100.0)], region="DEU", pue=1.2)
    with meter.window("w") as w:
        busy(0.2)
    factor = lookup_region("DEU").intensity_g_per_kwh
    c = w.result.carbon
    assert c.region == "DEU" and c.pue == 1.2
    assert c.co2e_g == pytest.approx(w.result.energy_j / 3.6e6 * factor * 1.2, rel=1e-9)


def test_time_series_is_applied_interval_by_interval(tmp_path):
    now = time.time()
    change = now + 0.3
    csv = tmp_path / "grid.csv"
    csv.write_text(f"timestamp,g_per_kwh\n{now - 3600:.3f},100\n{change:.3f},300\n{now + 3600:.3f},300\n")
    meter = Meter([ClockCounter(watts=200.0)], intensity_csv=str(csv), counter_interval=0.01)
    with meter.window("w") as w:
        busy(0.6)
    start, end = w.result.start_time, w.result.start_time + w.result.duration_s
    expected_g = 200.0 * ((change - start) * 100 + (end - change) * 300) / 3.6e6
    assert w.result.carbon.method == "timeseries"
    assert w.result.carbon.co2e_g == pytest.approx(expected_g, rel=0.05)
    assert 100 < w.result.carbon.intensity_g_per_kwh < 300


def test_a_stale_series_fails_before_the_work_starts(tmp_path):
    csv = tmp_path / "old.csv"
    csv.write_text("timestamp,g_per_kwh\n2020-01-01T00:00:00Z,100\n2020-01-01T01:00:00Z,120\n")
    meter = Meter([ClockCounter()], intensity_csv=str(csv))
    with pytest.raises(IntensityDataError, match="covers"):
        meter.begin("w")


def test_a_series_that_ends_mid_window_keeps_the_joules(tmp_path):
    now = time.time()
    csv = tmp_path / "short.csv"
    # 0.1 s steps: the last row holds one more step, so the series ends about 0.1 s from now
    csv.write_text(f"{now - 0.2:.3f},100\n{now - 0.1:.3f},100\n{now:.3f},100\n")
    meter = Meter([ClockCounter(watts=10.0)], intensity_csv=str(csv))
    with meter.window("w") as w:
        busy(0.3)
    assert w.result.energy_j > 0
    assert w.result.carbon is None
    assert any(msg.startswith("no CO2e:") and "covers" in msg for msg in w.result.warnings)
