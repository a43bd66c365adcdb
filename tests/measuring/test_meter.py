"""The meter end to end over protocol-level doubles with a known truth."""

import math
import subprocess
import sys
import time

import pytest
from sampler_doubles import ClockCounter, ConstantPower, RecordingHook, VanishingCounter

from energybench.errors import ConfigError, WindowError
from energybench.measurement import Measurement
from energybench.measuring.meter import Meter, measure


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_counter_window_matches_truth():
    counter = ClockCounter(watts=40.0)
    meter = Meter([counter])
    meter.begin("w")
    busy(0.3)
    result = meter.end("w")
    assert result.energy_j == pytest.approx(40.0 * result.duration_s, rel=0.005)
    assert result.source == "measured"
    assert result.domains[0].method == "test-clock-counter"


def test_polled_power_integrates_to_power_times_time():
    meter = Meter([ConstantPower(watts=100.0)], interval=0.01)
    with meter.window("gpu") as w:
        busy(0.3)
    assert w.result.energy_j == pytest.approx(100.0 * w.result.duration_s, rel=0.005)
    assert w.result.domains[0].details["interval_s"] == 0.01


def test_overlapping_windows_each_get_their_own_span():
    meter = Meter([ClockCounter(watts=10.0)])
    meter.begin("outer")
    busy(0.1)
    meter.begin("inner")
    busy(0.1)
    outer = meter.end("outer")
    busy(0.1)
    inner = meter.end("inner")
    assert outer.energy_j == pytest.approx(10.0 * outer.duration_s, rel=0.01)
    assert inner.energy_j == pytest.approx(10.0 * inner.duration_s, rel=0.01)
    assert outer.duration_s == pytest.approx(0.2, abs=0.05)
    assert inner.duration_s == pytest.approx(0.2, abs=0.05)


def test_several_wraps_in_one_window_are_counted_when_polled():
    # 20 W into a 2 J counter wraps every 100 ms; polling every 5 ms sees each wrap even on a busy machine
    counter = ClockCounter(watts=20.0, max_j=2.0)
    meter = Meter([counter], counter_interval=0.005)
    with meter.window("long") as w:
        busy(0.8)
    assert w.result.energy_j == pytest.approx(20.0 * w.result.duration_s, rel=0.02)
    assert w.result.energy_j > 5 * 2.0  # more than five full ranges: several wraps happened


def test_window_misuse_is_a_clear_error():
    meter = Meter([ClockCounter()])
    meter.begin("a")
    with pytest.raises(WindowError, match="already open"):
        meter.begin("a")
    with pytest.raises(WindowError, match="never begun"):
        meter.end("b")
    meter.end("a")


@pytest.mark.parametrize("interval", [0, -1, float("nan"), "fast"])
def test_bad_interval_is_rejected(interval):
    with pytest.raises(ConfigError, match="interval"):
        Meter([ClockCounter()], interval=interval)


def test_a_vanishing_sampler_keeps_the_others_figures():
    good = ClockCounter(key="cpu:package-0", watts=30.0)
    lost = VanishingCounter(good_reads=1, key="gpu:0", watts=200.0, name="vanishing")
    meter = Meter([good, lost])
    with meter.window("w") as w:
        busy(0.1)
    keys = {d.key for d in w.result.domains}
    assert keys == {"cpu:package-0"}
    assert w.result.energy_j == pytest.approx(30.0 * w.result.duration_s, rel=0.01)
    assert any("gpu:0" in msg and "lost" in msg for msg in w.result.warnings)


def test_short_window_on_coarse_counter_is_not_reported_as_zero():
    counter = ClockCounter(watts=50.0, resolution_s=10.0)  # never updates within the test
    meter = Meter([counter])
    with meter.window("tiny") as w:
        busy(0.01)
    dom = w.result.domains[0]
    assert math.isnan(dom.energy_j)
    assert any("shorter than the counter's update period" in msg for msg in w.result.warnings)
    assert "n/a" in str(w.result) and " 0 J" not in str(w.result)
    assert math.isnan(w.result.energy_j)  # no total either: not 0 J
    assert w.result.source == "none"


def test_timeline_shows_power_over_the_window():
    meter = Meter([ClockCounter(watts=25.0)], counter_interval=0.02)
    with meter.window("t") as w:
        busy(0.3)
    timeline = w.result.timeline
    assert len(timeline) >= 5
    inner = [watts["cpu:package-0"] for _, watts in timeline[1:-1]]
    assert all(x == pytest.approx(25.0, rel=0.05) for x in inner)


def test_measure_as_decorator_keeps_every_call():
    @measure(samplers=[ClockCounter(watts=5.0)], name="step")
    def step(x):
        busy(0.02)
        return x * 2

    assert step(3) == 6
    assert step(4) == 8
    assert len(step.results) == 2
    assert step.last_result is step.results[-1]
    assert all(r.energy_j > 0 for r in step.results)


def test_measure_as_context_manager_and_round_trip():
    with measure(samplers=[ClockCounter(watts=12.0)], name="block") as m:
        busy(0.05)
    result = m.result
    assert isinstance(result, Measurement)
    again = Measurement.from_dict(result.to_dict())
    assert again.energy_j == pytest.approx(result.energy_j)
    assert again.domains == result.domains
    frame = result.to_dataframe()
    assert list(frame["domain"]) == ["cpu:package-0"]
    assert frame["energy_j"].sum() == pytest.approx(result.energy_j)
    assert "block:" in str(result) and "measured" in str(result)


def test_no_region_means_no_co2e_and_says_so():
    with measure(samplers=[ClockCounter()]) as m:
        busy(0.01)
    assert m.result.co2e_g is None
    assert any("no CO2e" in w for w in m.result.warnings)


def test_a_window_whose_body_raises_keeps_its_figures_and_ends_locally():
    """The exception propagates, the result is kept, and the window is closed without any collective step
    (under torch.distributed a raising rank must not wait for ranks that moved on)."""
    hook = RecordingHook()
    calls = hook.calls
    meter = Meter([ClockCounter(watts=10.0)], hooks=[hook])
    with pytest.raises(ZeroDivisionError):
        with meter.window("w") as w:
            busy(0.05)
            1 / 0  # noqa: B018 - the body raises
    assert w.result is not None and w.result.energy_j > 0
    assert calls == ["local: the window's body raised on this rank"]

    @measure(meter=meter, name="step")
    def step(fail):
        busy(0.02)
        if fail:
            raise ValueError("boom")

    step(False)
    with pytest.raises(ValueError):
        step(True)
    assert len(step.results) == 2 and all(r.energy_j > 0 for r in step.results)
    assert calls[1:] == ["collective", "local: the window's body raised on this rank"]


def test_registered_hooks_load_only_once_their_trigger_module_is_imported(monkeypatch):
    """The meter finds window hooks by name (it imports no implementation), and loads a factory only when
    the program already imported the library the hook serves; the factory may still decline."""
    import energybench.measuring.meter as meter_module

    monkeypatch.setattr(
        meter_module,
        "WINDOW_HOOKS",
        (
            ("no_such_library_imported", "no_such_module:factory"),
            ("sampler_doubles", "sampler_doubles:recording_hook_factory"),
        ),
    )
    meter = Meter([ClockCounter()])
    (hook,) = meter.hooks
    assert isinstance(hook, RecordingHook)
    meter.begin("w")
    meter.end("w")
    assert hook.calls == ["collective"]
    assert Meter([ClockCounter()], options={"no_hook": True}).hooks == []
    assert Meter([ClockCounter()], hooks=[]).hooks == []  # explicit hooks replace the registered ones


def test_a_plain_meter_loads_no_distributed_code():
    code = (
        "import sys; from energybench.measuring.meter import Meter, measure; sys.path.insert(0, 'tests/support');"
        "from sampler_doubles import ClockCounter\n"
        "with measure(samplers=[ClockCounter()]) as m: pass\n"
        "print(sorted(n for n in sys.modules if n.startswith(('energybench.distributed', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
