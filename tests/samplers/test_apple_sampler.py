"""The Apple-silicon sampler, driven through a fake ``zeus_apple_silicon`` (the binding's call shapes, checked
against the recorded 1.1.0 API and the real module where it imports) and inside the real meter."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import time
from pathlib import Path

import pytest
from fake_amdsmi import ManualClock
from fake_apple import FIELDS, M2_MAX, AppleEnergyMetrics, FakeAppleModule
from sampler_doubles import ClockCounter
from vendor_meter import SlowEdge, domain, sampler_warnings, ticks

from energybench.errors import SamplerError
from energybench.measuring.meter import Meter
from energybench.samplers import apple, detect_samplers

API = json.loads((Path(__file__).parents[1] / "support" / "data" / "zeus_apple_silicon_api.json").read_text())
REAL = importlib.util.find_spec("zeus_apple_silicon")


def make(trace: dict | None = None, t: float = 0.0) -> tuple[FakeAppleModule, ManualClock]:
    clock = ManualClock(t)
    return FakeAppleModule(trace, clock=clock), clock


# ------------------------------------------------------------------------------------------ the fake's shapes
def test_fake_has_the_bindings_fields_and_methods() -> None:
    assert list(FIELDS) == API["AppleEnergyMetrics"]
    module, _ = make()
    monitor = module.AppleEnergyMonitor()
    for method, params in API["AppleEnergyMonitor"].items():
        sig = inspect.signature(getattr(monitor, method))
        assert [[p.name, "positional", p.default is not inspect.Parameter.empty] for p in sig.parameters.values()] \
            == params, method
    assert all(hasattr(module, name) for name in API["module_exports"])


@pytest.mark.skipif(REAL is None, reason="zeus-apple-silicon builds only on macOS: checked against the recorded API")
def test_fake_matches_the_installed_binding() -> None:  # pragma: no cover - on a Mac with the [apple] extra
    import zeus_apple_silicon as real

    metrics = real.AppleEnergyMetrics()
    assert all(hasattr(metrics, f) for f in FIELDS)
    assert all(hasattr(real.AppleEnergyMonitor, m) for m in API["AppleEnergyMonitor"])


def test_fake_windows_behave_like_the_bindings() -> None:
    module, clock = make()
    monitor = module.AppleEnergyMonitor()
    monitor.begin_window("a")
    with pytest.raises(RuntimeError, match="already exists"):
        monitor.begin_window("a")
    clock.t = 2.0
    result = monitor.end_window("a")
    assert isinstance(result, AppleEnergyMetrics) and result.gpu_mj == 28_000 and result.efficiency_cores_mj is None


# ------------------------------------------------------------------------------------------ probe and create
def test_probe_on_this_machine_says_why_not() -> None:
    avail = apple.FACTORY.probe({})
    if apple.platform.system() == "Darwin" and apple.platform.machine() == "arm64":  # pragma: no cover
        pytest.skip("an Apple-silicon Mac: the real probe may succeed")
    assert not avail.available and avail.reason.startswith("not an Apple-silicon Mac (")


def test_domains_keys_overlap_and_provenance() -> None:
    module, _ = make()
    avail = apple.FACTORY.probe({"apple_module": module})
    assert avail.available and avail.domains == ("cpu:package-0", "gpu:0", "ane:0", "cpu:dram-0", "gpu:0:sram")
    (sampler,) = apple.FACTORY.create({"apple_module": module})
    domains = {d.key: d for d in sampler.domains()}
    assert {k for k, d in domains.items() if d.counted} == {"cpu:package-0", "gpu:0", "ane:0", "cpu:dram-0"}
    assert all(d.source == "measured" and d.method == "ioreport-energy-model" for d in domains.values())
    assert "activity-based" in domains["gpu:0"].details["accuracy"] and domains["gpu:0"].max_value is None


def test_a_chip_without_a_block_leaves_it_out() -> None:
    module, _ = make({"blocks": {**M2_MAX, "ane_mj": None, "gpu_sram_mj": None}})
    (sampler,) = apple.FACTORY.create({"apple_module": module})
    assert [d.key for d in sampler.domains()] == ["cpu:package-0", "gpu:0", "cpu:dram-0"]


def test_a_refused_subscription_is_a_stated_reason() -> None:
    module, _ = make({"blocks": M2_MAX, "subscription_error": True})
    avail = apple.FACTORY.probe({"apple_module": module})
    assert not avail.available and avail.reason.startswith("IOReport refused a subscription")
    with pytest.raises(SamplerError, match="IOReport refused"):
        apple.FACTORY.create({"apple_module": module})


def test_apple_covers_the_cpu_so_no_estimate_doubles_it() -> None:
    module, _ = make()
    chosen = detect_samplers({"samplers": ["apple", "cpu-model"], "apple_module": module})
    assert [s.name for s in chosen] == ["apple"]


# ------------------------------------------------------------------------------------------ through the meter
def test_read_returns_cumulative_joules_per_block() -> None:
    module, clock = make()
    (sampler,) = apple.FACTORY.create({"apple_module": module})
    result = ticks([sampler], clock, 8)  # 2 s
    for field, key in (("cpu_total_mj", "cpu:package-0"), ("gpu_mj", "gpu:0"), ("dram_mj", "cpu:dram-0")):
        assert domain(result, key).energy_j == pytest.approx(M2_MAX[field] * 2.0, abs=0.002)
    assert result.energy_j == pytest.approx((6.0 + 14.0 + 0.5 + 1.5) * 2.0, abs=0.01)  # SRAM not added


def test_window_edges_nested_windows_and_another_samplers_slow_sync() -> None:
    origin = time.monotonic()
    module = FakeAppleModule(clock=lambda: time.monotonic() - origin)
    samplers = apple.FACTORY.create({"apple_module": module})
    meter = Meter([ClockCounter(key="acc:1", watts=5.0), SlowEdge(0.2), *samplers], counter_interval=0.02)
    meter.begin("outer")
    time.sleep(0.1)
    meter.begin("inner")
    time.sleep(0.4)
    inner = meter.end("inner")
    outer = meter.end("outer")
    meter.close()
    for result in (inner, outer):
        g = domain(result, "gpu:0")
        assert 0 < g.energy_j < 500 * result.duration_s and not g.lower_bound and not result.partial
    assert domain(inner, "gpu:0").energy_j < domain(outer, "gpu:0").energy_j


def test_a_counter_going_backwards_is_warned_and_never_counted_as_a_wrap() -> None:
    module, clock = make({"blocks": M2_MAX, "resets_at": [1.1]})
    (sampler,) = apple.FACTORY.create({"apple_module": module})
    result = ticks([sampler], clock, 8)
    g = domain(result, "gpu:0")
    assert g.lower_bound and g.energy_j < 14.0 * 2.0, result.warnings  # energy before the reset is missing
    assert any("went backwards" in w and "sleep/wake" in w for w in sampler_warnings(result))


def test_the_binding_failing_mid_run_keeps_the_other_samplers_figures() -> None:
    module, clock = make({"blocks": M2_MAX, "fail_at_s": 0.6})
    other = ClockCounter(key="acc:1", watts=5.0)
    meter = Meter([other, *apple.FACTORY.create({"apple_module": module})], counter_interval=3600, interval=3600,
                  clock=clock)
    meter.begin("w")
    clock.t = 1.0
    result = meter.end("w")
    meter.close()
    assert "gpu:0" in result.missing_domains and any("IOReport stopped answering" in w for w in result.warnings)
    assert domain(result, "acc:1").energy_j > 0


def test_a_block_that_stops_answering_is_nan_not_zero() -> None:
    module, clock = make()
    (sampler,) = apple.FACTORY.create({"apple_module": module})
    sampler.read()
    module.trace["blocks"] = {**M2_MAX, "ane_mj": None}
    clock.t = 1.0
    assert math.isnan(sampler.read()["ane:0"])
    assert any("stopped reporting ane_mj" in w for w in sampler.take_warnings())


def test_on_edge_synchronises_mps_only_when_this_process_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    synced: list[bool] = []
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "synchronize", lambda: synced.append(True))
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 0)
    module, _ = make()
    (sampler,) = apple.FACTORY.create({"apple_module": module})
    sampler.on_edge()
    assert synced == []
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 1 << 20)
    sampler.on_edge()
    assert synced == [True]


def test_apple_check_script_against_the_fake(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    summary = tmp_path / "summary.json"
    cmd = [sys.executable, str(repo / "scripts" / "apple_check.py"), "--fake-apple", "--seconds", "1",
           "--idle-seconds", "0.3", "--size", "64", "--no-sensors", "--check-windows", "2", "--json", str(summary)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, timeout=180, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ("1 binding agrees", "2 blocks carry load", "3 edge reads"):
        assert f"check {check}: PASS" in out.stdout, out.stdout
    assert json.loads(summary.read_text())["blocks_j"]["gpu:0"] > 0
