"""Intel GPUs via the i915/xe hwmon energy counters, against fake /sys/class/drm trees (no Intel GPU in CI),
and inside the real meter: window edges, the 32-bit register's range, a counter going backwards, missing
devices, permission denied and a device that vanishes mid-run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from drm_tree import FakeDrm
from fake_amdsmi import ManualClock
from sampler_doubles import ClockCounter
from vendor_meter import SlowEdge, domain, sampler_warnings, ticks

from energybench.errors import ConfigError, SamplerError
from energybench.measuring.meter import Meter
from energybench.samplers import detect_samplers, intel_gpu
from energybench.samplers.intel_gpu import IntelGpuSampler, probe, resolve_root


@pytest.fixture
def drm(tmp_path: Path) -> FakeDrm:
    return FakeDrm(tmp_path / "drm")


def battlemage_and_arc(drm: FakeDrm) -> None:
    """An xe card with card and package counters (labelled), an i915 card with two tiles, an amdgpu card."""
    drm.add_card(0, "xe", {1: ("card", 120.0), 2: ("pkg", 95.0)}, rated_w=250.0)
    drm.add_card(1, "i915", {1: (None, 60.0)}, rated_w=None, gts={0: 25.0, 1: 20.0})
    drm.add_other_driver(2, "amdgpu")


# ------------------------------------------------------------------------------------------ discovery
def test_domains_keys_overlap_and_provenance(drm: FakeDrm) -> None:
    battlemage_and_arc(drm)
    domains = {d.key: d for d in IntelGpuSampler(drm.root).domains()}
    assert set(domains) == {"gpu:card0", "gpu:card0:pkg", "gpu:card1", "gpu:card1:gt0", "gpu:card1:gt1"}
    assert {k for k, d in domains.items() if d.counted} == {"gpu:card0", "gpu:card1"}  # tiles and pkg inside
    assert all(d.source == "measured" and d.method == "hwmon-energy" and d.max_value is None
               for d in domains.values())  # the driver widens the register to 64 bits: it never wraps
    assert domains["gpu:card0"].max_power_w == pytest.approx(500.0)  # 2 x power1_rated_max
    assert domains["gpu:card1"].max_power_w == intel_gpu.PHYSICAL_MAX_W  # no rating stated
    # the meter must read often enough that the driver never misses a wrap of the 32-bit register
    assert domains["gpu:card0"].details["wrap_period_s_at_max_power"] == pytest.approx(262_144 / 500.0)
    assert domains["gpu:card0"].details["driver"] == "xe" and domains["gpu:card1:gt1"].details["driver"] == "i915_gt1"


def test_a_package_only_card_counts_its_package(drm: FakeDrm) -> None:
    drm.add_card(3, "xe", {2: ("pkg", 40.0)})
    (dom,) = IntelGpuSampler(drm.root).domains()
    assert (dom.key, dom.counted) == ("gpu:card3", True)


def test_the_meter_reads_at_least_four_times_per_wrap_period(drm: FakeDrm) -> None:
    drm.add_card(0, "xe", {1: ("card", 120.0)}, rated_w=50_000.0)  # an absurd rating: a 2.6 s wrap period
    meter = Meter([IntelGpuSampler(drm.root)])
    assert meter.counter_interval == pytest.approx(262_144 / 100_000.0 / 4)
    meter.close()


def test_root_from_option_then_env_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(intel_gpu.ROOT_ENV, raising=False)
    assert resolve_root({}) == Path("/sys/class/drm")
    monkeypatch.setenv(intel_gpu.ROOT_ENV, str(tmp_path / "env"))
    assert resolve_root({}) == tmp_path / "env"
    assert resolve_root({"drm_root": str(tmp_path / "opt")}) == tmp_path / "opt"


# ------------------------------------------------------------------------------------------ missing and denied
def test_probe_reasons(tmp_path: Path, drm: FakeDrm) -> None:
    assert probe({"drm_root": str(tmp_path / "nope")}).reason == f"no {tmp_path / 'nope'}: no DRM devices here"
    drm.add_other_driver(0, "amdgpu")
    reason = probe({"drm_root": str(drm.root)}).reason
    assert reason.startswith(f"no Intel GPU with hwmon energy counters under {drm.root}")
    with pytest.raises(SamplerError, match="no i915/xe hwmon energy counter"):
        IntelGpuSampler(drm.root)


def test_probe_on_this_machine_says_why_not() -> None:
    avail = probe({})
    if avail.available:  # pragma: no cover - a machine with an Intel discrete GPU
        pytest.skip("this machine has an Intel GPU")
    assert "no" in avail.reason and "\n" not in avail.reason


def test_permission_denied_is_a_stated_reason_and_a_sampler_error(drm: FakeDrm,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    drm.add_card(0, "xe", {1: ("card", 120.0)})
    sampler = IntelGpuSampler(drm.root)  # built while readable; access is revoked afterwards
    denied = drm.counters["card0/energy1"].path
    real_read = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    expected = (f"permission denied on {denied}: run as root or grant read access (sudo chmod a+r "
                f"{drm.root}/card*/device/hwmon/hwmon*/energy*_input, or a udev rule that does so at boot)")
    assert probe({"drm_root": str(drm.root)}).reason == expected
    with pytest.raises(SamplerError) as err:
        sampler.read()
    assert str(err.value) == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_permission_denied_for_real_when_not_root(drm: FakeDrm) -> None:  # pragma: no cover - CI runs as a user
    drm.add_card(0, "xe", {1: ("card", 120.0)})
    drm.counters["card0/energy1"].path.chmod(0)
    assert probe({"drm_root": str(drm.root)}).reason.startswith("permission denied on ")


def test_garbage_counter_is_a_clear_error(drm: FakeDrm) -> None:
    drm.add_card(0, "xe", {1: ("card", 120.0)})
    sampler = IntelGpuSampler(drm.root)
    drm.counters["card0/energy1"].path.write_text("banana\n")
    with pytest.raises(SamplerError, match="holds 'banana', not microjoules"):
        sampler.read()


def test_detection_by_env_root(drm: FakeDrm, monkeypatch: pytest.MonkeyPatch) -> None:
    battlemage_and_arc(drm)
    monkeypatch.setenv(intel_gpu.ROOT_ENV, str(drm.root))
    assert [s.name for s in detect_samplers({"samplers": ["intel-gpu"]})] == ["intel-gpu"]
    monkeypatch.setenv(intel_gpu.ROOT_ENV, str(drm.root / "absent"))
    with pytest.raises(ConfigError, match="--sampler intel-gpu cannot read here: no .*absent"):
        detect_samplers({"samplers": ["intel-gpu"]})


# ------------------------------------------------------------------------------------------ through the meter
def test_counters_through_the_meter_past_the_32_bit_register_range(drm: FakeDrm) -> None:
    """The file is the driver's 64-bit sum: it runs on past 2**32 uJ (4.3 kJ) with no wrap to undo."""
    drm.add_card(0, "xe", {1: ("card", 300.0), 2: ("pkg", 250.0)}, rated_w=350.0, start_uj=2**32 - 1_000_000)
    clock = ManualClock(0.0)
    result = ticks([IntelGpuSampler(drm.root)], clock, 8, before_tick=lambda i: drm.advance(0.25))
    card = domain(result, "gpu:card0")
    assert card.energy_j == pytest.approx(drm.truth_j("card0/energy1"), rel=1e-6) == pytest.approx(600.0)
    assert drm.counters["card0/energy1"].value_uj() > 2**32 and not card.lower_bound
    assert result.energy_j == pytest.approx(600.0)  # the package is inside the card: not added


def test_window_edges_nested_windows_and_another_samplers_slow_sync(drm: FakeDrm) -> None:
    drm.add_card(0, "xe", {1: ("card", 100.0)}, start_uj=2**40)

    class FollowingSampler(IntelGpuSampler):  # each read sees the counter as the wall clock says, as sysfs does
        t0 = time.monotonic()

        def read(self) -> dict[str, float]:
            counter = drm.counters["card0/energy1"]
            counter.total_uj = 100.0 * (time.monotonic() - self.t0) * 1e6
            drm._write(counter)
            return super().read()

    meter = Meter([ClockCounter(key="cpu:package-0", watts=30.0), SlowEdge(0.2), FollowingSampler(drm.root)],
                  counter_interval=0.02)
    meter.begin("outer")
    time.sleep(0.1)
    meter.begin("inner")
    time.sleep(0.4)
    inner = meter.end("inner")
    outer = meter.end("outer")
    meter.close()
    for result in (inner, outer):
        g = domain(result, "gpu:card0")
        assert 0 < g.energy_j < 200 * (result.duration_s + 0.2) and not g.lower_bound and not result.partial
    assert domain(inner, "gpu:card0").energy_j < domain(outer, "gpu:card0").energy_j


def test_a_counter_going_backwards_is_a_reset_warned_and_a_lower_bound(drm: FakeDrm) -> None:
    drm.add_card(0, "xe", {1: ("card", 100.0)}, start_uj=50_000_000_000)
    clock = ManualClock(0.0)

    def step(i: int) -> None:
        drm.advance(0.25)
        if i == 3:
            drm.reset("card0/energy1")  # the xe driver reloaded

    result = ticks([IntelGpuSampler(drm.root)], clock, 8, before_tick=step)
    card = domain(result, "gpu:card0")
    assert card.lower_bound and 0 < card.energy_j < 200.0, result.warnings  # never +50 kJ, never a wrap
    assert any("went backwards" in w and "xe driver was reloaded" in w for w in sampler_warnings(result))


def test_a_card_that_vanishes_mid_run_loses_its_figure_and_says_why(drm: FakeDrm) -> None:
    drm.add_card(0, "xe", {1: ("card", 100.0)})
    clock = ManualClock(0.0)
    other = ClockCounter(key="acc:1", watts=5.0)
    result = ticks([other, IntelGpuSampler(drm.root)], clock, 4,
                   before_tick=lambda i: drm.remove_card(0) if i == 2 else drm.advance(0.25))
    assert "gpu:card0" in result.missing_domains
    assert any("vanished" in w and "unbound" in w for w in result.warnings)
    assert domain(result, "acc:1").energy_j > 0  # the others keep their figures


def test_on_edge_synchronises_xpu_devices_this_process_uses(drm: FakeDrm, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import torch

    synced: list[int] = []
    xpu = types.SimpleNamespace(is_initialized=lambda: True, device_count=lambda: 3,
                                memory_reserved=lambda i: 1 if i == 1 else 0, synchronize=synced.append)
    monkeypatch.setattr(torch, "xpu", xpu, raising=False)
    drm.add_card(0, "xe", {1: ("card", 100.0)})
    IntelGpuSampler(drm.root).on_edge()
    assert synced == [1]


def test_intel_gpu_check_script_against_a_fake_tree(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    summary = tmp_path / "summary.json"
    cmd = [sys.executable, str(repo / "scripts" / "intel_gpu_check.py"), "--fake-drm", "--seconds", "0.6",
           "--idle-seconds", "0.3", "--size", "64", "--no-sensors", "--check-windows", "2", "--json", str(summary)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, timeout=180, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ("1 counters move", "2 read rate", "3 edge reads"):
        assert f"check {check}: PASS" in out.stdout, out.stdout
    assert json.loads(summary.read_text())["counters_j"]["gpu:card1"] > 0
