"""Figures that are never silently wrong: edge reads of nested windows, impossible counter values (RAPL in a
synthetic powercap tree, NVML in the fake), short power windows and carbon weighted by the power timeline.

Each fault is injected where users would meet it (a sysfs file, an NVML answer, a slow CUDA sync) and the
real meter and samplers must answer with the truth, n/a, or a figure flagged as a lower bound with the
reason: never a negative, absurd or silently wrapped figure labelled ``measured``.
"""

from __future__ import annotations

import math
import threading
import time

import pytest
from fake_nvml import FakeNvml, ManualClock, load_trace
from powercap_tree import FakePowercap
from sampler_doubles import ClockCounter

from energybench.measurement import Measurement
from energybench.measuring.meter import Meter
from energybench.samplers import nvml as nv
from energybench.samplers.base import BaseSampler, Domain
from energybench.samplers.powercap import PowercapSampler

TRACE = "nvml_synthetic.json"


class SlowEdge(BaseSampler):
    """A counter whose edge hook takes ``sync_s``, like a CUDA synchronize behind queued kernels."""

    kind = "counter"

    def __init__(self, sync_s: float = 0.2) -> None:
        self.name = "slow-edge"
        self.sync_s = sync_s
        self.t0 = time.monotonic()

    def domains(self) -> list[Domain]:
        return [Domain("acc:0", "measured", "test-slow-edge", counted=False)]

    def on_edge(self) -> None:
        time.sleep(self.sync_s)

    def read(self) -> dict[str, float]:
        return {"acc:0": time.monotonic() - self.t0}


def replay(trace: object = TRACE, start: float = 5.0) -> FakeNvml:
    origin = time.monotonic() - start
    return FakeNvml(trace, clock=lambda: time.monotonic() - origin)


def domain(result: Measurement, key: str):  # noqa: ANN201 - DomainEnergy
    return next(d for d in result.domains if d.key == key)


def assert_never_silently_wrong(result: Measurement, key: str, truth_j: float | None, bound_w: float) -> None:
    """The contract of every faulty window: n/a, a flagged lower bound, or the truth; never more than the
    device could draw, never negative."""
    d = domain(result, key)
    if math.isnan(d.energy_j):
        assert key in result.missing_domains and result.partial
        return
    assert 0 <= d.energy_j <= bound_w * (result.duration_s + 0.2)
    if d.lower_bound:
        assert result.partial and any("lower bound" in w for w in result.warnings)
        if truth_j is not None:
            assert d.energy_j <= truth_j * 1.01
    elif truth_j is not None:
        assert d.energy_j == pytest.approx(truth_j, rel=0.01, abs=0.05)


# ------------------------------------------------------------------------------------------ edge reads
def test_a_gpu_read_during_another_samplers_sync_is_not_a_reset_of_the_whole_counter() -> None:
    """Nested windows: while the outer window is open the poller reads the GPU during the inner window's
    edge (another sampler is synchronising); that reading is older than the GPU's own start reading and
    must not be taken as a counter reset (which would add the GPU's 500 MJ since driver load)."""
    trace = load_trace(TRACE)
    trace["devices"][0]["energy_start_mj"] = 5e11  # 500 MJ since the driver loaded
    fake = replay(trace)
    gpu = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": fake.clock, "gpu_indices": [0]})
    meter = Meter([ClockCounter(key="cpu:package-0", watts=30.0), SlowEdge(0.2), *gpu], counter_interval=0.02)
    meter.begin("outer")
    time.sleep(0.1)
    meter.begin("inner")
    time.sleep(0.5)
    inner = meter.end("inner")
    outer = meter.end("outer")
    meter.close()
    for result in (inner, outer):
        g = domain(result, "gpu:0")
        assert 0 < g.energy_j < 400 * result.duration_s  # the A100's trace draws ~285 W; 500 MJ would be absurd
        assert not g.lower_bound and not result.partial, result.warnings
        assert not any("backwards" in w or "impossible" in w for w in result.warnings), result.warnings
    assert domain(inner, "gpu:0").energy_j < domain(outer, "gpu:0").energy_j


def test_a_rapl_read_during_another_samplers_sync_is_not_a_wrap_of_the_whole_range(powercap_tree) -> None:
    powercap_tree.add_package(0, 40.0, max_power_w=125)  # the default 262 kJ range
    rapl = PowercapSampler(powercap_tree.root)
    meter = Meter([ClockCounter(key="acc:1", watts=5.0), SlowEdge(0.2), rapl], counter_interval=0.02)
    with powercap_tree.running(tick_s=0.001):
        meter.begin("outer")
        time.sleep(0.1)
        with powercap_tree.frozen():
            truth0 = powercap_tree.total_j("intel-rapl:0")
        meter.begin("inner")
        time.sleep(0.4)
        with powercap_tree.frozen():
            inner = meter.end("inner")
            truth1 = powercap_tree.total_j("intel-rapl:0")
        meter.end("outer")
    meter.close()
    pkg = domain(inner, "cpu:package-0")
    assert pkg.energy_j < 40.0 * (inner.duration_s + 0.3)  # a wrap would add 262 kJ
    assert not pkg.lower_bound and "wrap" not in " ".join(inner.warnings)
    # the inner window starts after the slow sync: its RAPL figure is its own span, within the truth around it
    assert 0 < pkg.energy_j <= truth1 - truth0 + 0.05


def test_every_sync_comes_before_any_read_at_an_edge() -> None:
    """An edge is one instant for all samplers: the reads are back to back, not spread over the syncs."""
    fast, slow, other = ClockCounter(key="a:0"), SlowEdge(0.15), ClockCounter(key="b:0", name="other")
    read_at: dict[str, list[float]] = {"clock-counter": [], "slow-edge": [], "other": []}
    for s in (fast, slow, other):
        real = s.read

        def spy(real=real, name=s.name):  # type: ignore[no-untyped-def]
            read_at[name].append(time.monotonic())
            return real()

        s.read = spy  # type: ignore[method-assign]
    meter = Meter([fast, slow, other], counter_interval=3600)
    meter.begin("w")
    spread = max(v[0] for v in read_at.values()) - min(v[0] for v in read_at.values())
    meter.end("w")
    meter.close()
    assert spread < 0.05  # the 0.15 s sync happened before the first read, not between them


# ------------------------------------------------------------------------------------------ RAPL faults
def rapl_meter(tree: FakePowercap) -> tuple[Meter, PowercapSampler]:
    sampler = PowercapSampler(tree.root)
    return Meter([sampler], counter_interval=3600), sampler


def tick(meter: Meter, tree: FakePowercap, seconds: float) -> None:
    """Let ``seconds`` pass at the zone's power and take one reading (an inner window's edges)."""
    time.sleep(seconds)
    tree.advance(seconds)
    meter.begin("tick")
    meter.end("tick")


@pytest.mark.parametrize(
    ("fault", "where", "expect"),
    [
        ("above-range", "mid", "exact"),
        ("negative", "mid", "exact"),
        ("huge", "mid", "exact"),
        ("backwards-glitch", "mid", "exact"),
        ("above-range", "end", "lower"),
        ("negative", "end", "lower"),
        ("backwards-glitch", "end", "lower"),
        ("not-a-number", "end", "n/a"),
    ],
)
def test_a_faulty_rapl_reading_is_never_counted_as_measured(powercap_tree, fault, where, expect) -> None:
    zone = powercap_tree.add_package(0, 40.0, max_power_w=125, start_uj=50_000_000)
    meter, _ = rapl_meter(powercap_tree)
    meter.begin("w")
    start_j = zone.total_uj / 1e6
    tick(meter, powercap_tree, 0.05)
    time.sleep(0.05)
    powercap_tree.advance(0.05)
    good = zone.counter_uj()
    faulty = {
        "above-range": str(zone.max_range_uj + 12_345),
        "negative": "-5",
        "huge": str(2**64),
        "backwards-glitch": str(good - 3_000_000),  # 3 J back, 0 s after a good read: no plausible wrap
        "not-a-number": "garbage",
    }[fault]
    zone.energy_path.write_text(faulty + "\n")
    if where == "mid":
        meter.begin("tick")
        meter.end("tick")
        powercap_tree.advance(0.0)  # the counter is right again at the next read
        tick(meter, powercap_tree, 0.05)
    result = meter.end("w")
    meter.close()
    truth = zone.total_uj / 1e6 - start_j
    if expect == "n/a":  # an unreadable file loses the sampler: its domains are missing, never 0 J
        assert "cpu:package-0" in result.missing and math.isnan(result.energy_j)
        assert any("not microjoules" in w for w in result.warnings)
        return
    d = domain(result, "cpu:package-0")
    assert_never_silently_wrong(result, "cpu:package-0", truth, 187.5)
    if expect == "exact":
        assert not d.lower_bound and d.energy_j == pytest.approx(truth, rel=0.01)
    else:
        assert d.lower_bound and d.energy_j < truth
        assert any("lower bound" in w for w in result.warnings)
    assert "at least" in str(result) or expect == "exact"


class StallingPowercap(PowercapSampler):
    """RAPL whose next background read stalls (a busy machine descheduling the meter's thread)."""

    stall_s = 0.0

    def read(self) -> dict[str, float]:
        if self.stall_s and threading.current_thread().name == "energybench-poller":
            stall, self.stall_s = self.stall_s, 0.0
            time.sleep(stall)
        return super().read()


def test_a_missed_wrap_makes_the_figure_a_lower_bound(powercap_tree) -> None:
    """Reads further apart than the wrap period at maximum power may have missed a whole wrap: the meter
    says so instead of reporting a figure one range too low as exact (the cause of the old flaky test)."""
    powercap_tree.add_package(0, 50.0, max_range_uj=6_000_000, max_power_w=60)  # bound 90 W: 67 ms wrap period
    sampler = StallingPowercap(powercap_tree.root)
    meter = Meter([sampler], counter_interval=0.01)
    with powercap_tree.running(tick_s=0.001):
        with powercap_tree.frozen():
            truth0 = powercap_tree.total_j("intel-rapl:0")
            sampler.stall_s = 0.25  # the first poll after the start edge comes 0.25 s late: 12.5 J, two ranges
            meter.begin("w")
        time.sleep(0.4)
        with powercap_tree.frozen():
            result = meter.end("w")
            truth = powercap_tree.total_j("intel-rapl:0") - truth0
    meter.close()
    d = domain(result, "cpu:package-0")
    assert d.lower_bound and d.energy_j < truth
    assert any("a whole wrap may be missing" in w for w in result.warnings)
    assert result.partial and str(result).split(": ", 1)[1].startswith("at least")


# ------------------------------------------------------------------------------------------ NVML faults
@pytest.mark.parametrize(
    ("glitch", "expect"),
    [
        ({"t": 10.45, "until": 10.55, "energy_mj": 2**64 - 1}, "exact"),  # one absurd answer mid-window
        ({"t": 10.45, "until": 10.55, "energy_mj": 5}, "exact"),  # a bogus "reset" that heals at once
        ({"t": 10.95, "until": 99.0, "energy_mj": 2**64 - 1}, "lower"),  # absurd at the end edge
        ({"t": 10.0, "until": 99.0, "energy_mj": 2**63}, "n/a"),  # absurd throughout: nothing plausible
    ],
)
def test_a_faulty_nvml_counter_is_never_counted_as_measured(glitch: dict, expect: str) -> None:
    trace = load_trace(TRACE)
    trace["devices"][0]["glitches"] = [glitch]
    clock = ManualClock(10.0)
    fake = FakeNvml(trace, clock=clock)
    samplers = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": clock, "gpu_indices": [0]})
    meter = Meter(samplers, counter_interval=3600, clock=clock)
    meter.begin("w")
    for _ in range(4):
        clock.t += 0.25
        meter.begin("tick")
        meter.end("tick")
    result = meter.end("w")
    meter.close()
    dev = FakeNvml(load_trace(TRACE)).devices[0]
    truth = (dev.energy_mj(11.0) - dev.energy_mj(10.0)) / 1000
    assert_never_silently_wrong(result, "gpu:0", truth, 800.0)
    d = domain(result, "gpu:0")
    if expect == "exact":
        assert not d.lower_bound and d.energy_j == pytest.approx(truth)
    elif expect == "lower":
        assert d.lower_bound and d.energy_j < truth and "at least" in str(result)
    else:
        assert math.isnan(d.energy_j) and result.missing_domains == ("gpu:0",)
        assert any("gave no figure in this window" in w for w in result.warnings)


def test_an_absurd_power_reading_is_ignored_not_integrated() -> None:
    trace = load_trace(TRACE)
    fake = replay(trace)
    now = fake.clock()
    trace_glitch = [{"t": now + 0.2, "until": now + 0.3, "power_mw": 4_294_967_295}]  # NVML's "not available"
    fake.devices[1].glitches = trace_glitch
    samplers = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": fake.clock, "gpu_indices": [1]})
    meter = Meter(samplers, interval=0.02)
    with meter.window("w") as w:
        time.sleep(0.6)
    meter.close()
    result = w.result
    g = domain(result, "gpu:1")  # the P100 is polled: nvmlDeviceGetPowerUsage
    assert 0 < g.energy_j < 250 * 2 * result.duration_s  # 4.3 MW for 0.1 s would be 430 kJ
    assert any("power reading(s) below 0 or above 500 W" in x for x in result.warnings)


# ------------------------------------------------------------------------------------------ power-polled windows
def test_a_window_shorter_than_the_power_averaging_period_is_warned() -> None:
    """nvmlDeviceGetPowerUsage is a 1 s running average: a 52 ms window mostly reports power from before it."""
    fake = replay()
    samplers = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": fake.clock, "gpu_indices": [1]})
    meter = Meter(samplers, interval=0.01)
    with meter.window("short") as w:
        time.sleep(0.052)
    meter.close()
    assert any("shorter than the power reading's averaging period (1 s)" in x for x in w.result.warnings)


class StepPower(BaseSampler):
    """Polled power that jumps from ``low`` to ``high`` watts at ``switch`` (monotonic seconds)."""

    kind = "power"

    def __init__(self, low: float, high: float, switch: float) -> None:
        self.name = "step-power"
        self.low, self.high, self.switch = low, high, switch

    def domains(self) -> list[Domain]:
        return [Domain("gpu:0", "measured", "test-step-power")]

    def read(self) -> dict[str, float]:
        return {"gpu:0": self.high if time.monotonic() >= self.switch else self.low}


def test_with_only_power_samplers_carbon_follows_the_power_timeline(tmp_path) -> None:
    """10 W while the grid is at 100 g/kWh, then 1 kW at 300 g/kWh: almost every gram is priced at 300."""
    wall_now, mono_now = time.time(), time.monotonic()
    csv = tmp_path / "grid.csv"
    change = wall_now + 0.4
    csv.write_text(f"timestamp,g_per_kwh\n{wall_now - 3600:.3f},100\n{change:.3f},300\n{wall_now + 3600:.3f},300\n")
    meter = Meter([StepPower(10.0, 1000.0, mono_now + 0.4)], intensity_csv=str(csv), interval=0.01)
    with meter.window("w") as w:
        time.sleep(0.8)
    meter.close()
    c = w.result.carbon
    assert c is not None and c.method == "timeseries"
    expected = w.result.energy_j / 3.6e6 * (c.intensity_g_per_kwh)
    assert c.co2e_g == pytest.approx(expected, rel=1e-6)
    assert c.intensity_g_per_kwh > 290  # an even spread over the window would say ~200
