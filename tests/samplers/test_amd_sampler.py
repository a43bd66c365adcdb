"""The amdsmi sampler, driven through the fake amdsmi (the real binding's call shapes, synthetic and public
traces) and inside the real meter: window edges, wrap, a counter going backwards or standing still, missing
devices, permission denied and a GPU that vanishes mid-run."""

from __future__ import annotations

import math
import time

import pytest
from fake_amdsmi import FakeAmdSmi, ManualClock, load_trace
from sampler_doubles import ClockCounter
from vendor_meter import SlowEdge, domain, sampler_warnings, ticks

from energybench.errors import ConfigError, SamplerError
from energybench.measuring.meter import Meter
from energybench.samplers import amd, detect_samplers

TRACE = "amd_synthetic.json"
PUBLIC = "amdsmi_public_readings.json"


def options(fake: FakeAmdSmi, env: dict[str, str] | None = None, **extra: object) -> dict[str, object]:
    return {"amdsmi_module": fake, "environ": env or {}, "clock": fake.clock, **extra}


def by_key(samplers: list) -> dict:  # noqa: ANN001
    return {s.key: s for s in samplers}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(10.0)


@pytest.fixture
def fake(clock: ManualClock) -> FakeAmdSmi:
    return FakeAmdSmi(TRACE, clock=clock)


# ------------------------------------------------------------------------------------------ probe and create
def test_probe_lists_gpus_in_hip_order_with_their_method(fake: FakeAmdSmi) -> None:
    avail = amd.FACTORY.probe(options(fake))
    assert avail.available and avail.source == "measured" and avail.domains == ("gpu:0", "gpu:1", "gpu:2")
    gpus = avail.details["gpus"]
    assert gpus["gpu:0"]["name"] == "AMD Instinct MI210"  # hip_id 0, though amdsmi lists it second
    assert {k: v["method"] for k, v in gpus.items()} == {
        "gpu:0": amd.METHOD_POLLING, "gpu:1": amd.METHOD_COUNTER, "gpu:2": amd.METHOD_COUNTER}
    assert fake.init_count == 0


def test_probe_on_this_machine_names_what_is_missing() -> None:
    avail = amd.FACTORY.probe({})
    assert not avail.available
    assert "amd-smi-lib" in avail.reason or "energybench[amd]" in avail.reason or "no AMD GPU" in avail.reason
    assert "\n" not in avail.reason


@pytest.mark.parametrize(("code", "text"), [("AMDSMI_STATUS_DRIVER_NOT_LOADED", "amdgpu driver not loaded"),
                                            ("AMDSMI_STATUS_INIT_ERROR", "failed to initialise")])
def test_no_driver_is_a_stated_reason_and_a_one_line_error(code: str, text: str) -> None:
    fake = FakeAmdSmi({"init_error": code, "devices": []})
    avail = amd.FACTORY.probe(options(fake))
    assert not avail.available and text in avail.reason
    with pytest.raises(amd.AmdUnavailableError) as info:
        amd.FACTORY.create(options(fake))
    assert text in str(info.value) and "\n" not in str(info.value) and isinstance(info.value, SamplerError)


def test_no_gpu_at_all_is_a_stated_reason() -> None:
    assert amd.FACTORY.probe(options(FakeAmdSmi({"devices": []}))).reason == "amdsmi found no AMD GPU"


def test_counter_reads_joules_as_counts_times_resolution(fake: FakeAmdSmi, clock: ManualClock) -> None:
    gpu = by_key(amd.FACTORY.create(options(fake)))["gpu:1"]
    assert isinstance(gpu, amd.AmdEnergySampler) and gpu.kind == "counter"
    (dom,) = gpu.domains()
    assert dom.method == amd.METHOD_COUNTER and dom.source == "measured"
    assert dom.max_value == pytest.approx(2**64 * 15.3 / 1e6)  # wrap-aware at the register's width
    assert dom.max_power_w == 1500.0 and dom.details["counter_resolution_uj"] == 15.3
    a = gpu.read()["gpu:1"]
    clock.t = 20.0
    joules = gpu.read()["gpu:1"] - a
    truth = fake.devices[0].integral_j(20.0) - fake.devices[0].integral_j(10.0)
    assert joules == pytest.approx(truth, rel=1e-4) and 5500 < joules < 6500  # 600 +/- 50 W for 10 s


def test_polling_where_there_is_no_counter(fake: FakeAmdSmi, clock: ManualClock) -> None:
    gpu = by_key(amd.FACTORY.create(options(fake)))["gpu:0"]
    assert isinstance(gpu, amd.AmdPowerSampler) and gpu.kind == "power"
    assert gpu.domains()[0].details["power_source"] == "amdsmi_get_power_info['average_socket_power']"
    assert gpu.resolution_s == 1.0
    clock.t = 30.0
    assert 225 < gpu.read()["gpu:0"] < 255


def test_both_mode_adds_an_uncounted_polled_domain(fake: FakeAmdSmi) -> None:
    samplers = by_key(amd.FACTORY.create(options(fake, amd_mode="both", gpu_indices=[1])))
    assert set(samplers) == {"gpu:1", "gpu:1-polled"}
    assert samplers["gpu:1-polled"].domains()[0].counted is False
    assert samplers["gpu:1-polled"].field == "current_socket_power"  # instant power before the average


def test_counter_mode_on_a_gpu_without_counter_is_a_clear_error(fake: FakeAmdSmi) -> None:
    with pytest.raises(amd.AmdNotSupportedError, match="no amdsmi energy counter"):
        amd.FACTORY.create(options(fake, amd_mode="counter", gpu_indices=[0]))
    assert fake.init_count == 0
    with pytest.raises(ConfigError, match="amd_mode 'fast'"):
        amd.FACTORY.create(options(fake, amd_mode="fast"))


def test_identity_and_hardware_notes(fake: FakeAmdSmi) -> None:
    samplers = by_key(amd.FACTORY.create(options(fake)))
    meta = samplers["gpu:1"].metadata()
    assert meta["name"] == "AMD Instinct MI300X" and meta["power_cap_w"] == 750.0 and meta["hip_index"] == 1
    assert meta["bdf"] == "0000:05:00.0" and meta["compute_partition"] == "SPX"
    assert any("two dies of an MI250" in w for w in samplers["gpu:2"].take_warnings())
    for s in samplers.values():
        s.close()
        s.close()
    assert fake.init_count == 0


def test_a_cpx_partition_says_its_energy_is_the_whole_accelerators(clock: ManualClock) -> None:
    trace = load_trace(TRACE)
    trace["devices"][0]["compute_partition"] = "CPX"
    gpu = by_key(amd.FACTORY.create(options(FakeAmdSmi(trace, clock=clock))))["gpu:1"]
    assert any("CPX compute partition" in w and "whole accelerator" in w for w in gpu.take_warnings())


# ------------------------------------------------------------------------------------------ visibility
@pytest.mark.parametrize(("env", "expected"), [
    ({"ROCR_VISIBLE_DEVICES": "2,0"}, ["AMD Instinct MI250X", "AMD Instinct MI210"]),
    ({"ROCR_VISIBLE_DEVICES": "GPU-1a2b3c4d"}, ["AMD Instinct MI300X"]),
    ({"ROCR_VISIBLE_DEVICES": "0,2", "HIP_VISIBLE_DEVICES": "1"}, ["AMD Instinct MI250X"]),
    ({"CUDA_VISIBLE_DEVICES": "1"}, ["AMD Instinct MI300X"]),
    ({"HIP_VISIBLE_DEVICES": "2", "CUDA_VISIBLE_DEVICES": "0"}, ["AMD Instinct MI250X"]),  # HIP wins over CUDA
])
def test_visibility_variables_as_the_runtimes_apply_them(fake: FakeAmdSmi, env: dict, expected: list) -> None:
    samplers = amd.FACTORY.create(options(fake, env))
    assert [s.identity["name"] for s in samplers] == expected
    assert [s.key for s in samplers] == [f"gpu:{i}" for i in range(len(expected))]  # renumbered from 0
    assert samplers[0].identity["visible_devices"].items() <= env.items()  # the variables HIP applied


def test_an_empty_or_unknown_selector(fake: FakeAmdSmi) -> None:
    avail = amd.FACTORY.probe(options(fake, {"HIP_VISIBLE_DEVICES": ""}))
    assert not avail.available and "HIP_VISIBLE_DEVICES=''" in avail.reason and "hides every AMD GPU" in avail.reason
    samplers = amd.FACTORY.create(options(fake, {"ROCR_VISIBLE_DEVICES": "1,7,0"}))
    assert [s.identity["name"] for s in samplers] == ["AMD Instinct MI300X"]
    assert any("'7' matches no AMD GPU" in w for w in samplers[0].take_warnings())


def test_gpu_index_selects_process_indices_and_a_missing_one_is_an_error(fake: FakeAmdSmi) -> None:
    samplers = amd.FACTORY.create(options(fake, {"ROCR_VISIBLE_DEVICES": "2,1"}, gpu_indices=[1]))
    assert [(s.key, s.identity["name"]) for s in samplers] == [("gpu:1", "AMD Instinct MI300X")]
    samplers[0].close()
    with pytest.raises(ConfigError, match=r"--gpu-index 3 does not exist: this process sees 2 AMD GPU"):
        amd.FACTORY.create(options(fake, {"ROCR_VISIBLE_DEVICES": "2,1"}, gpu_indices=[3]))
    assert fake.init_count == 0


def test_gpu_index_is_satisfied_by_an_amd_gpu(fake: FakeAmdSmi) -> None:
    chosen = detect_samplers({"samplers": ["amd"], "amdsmi_module": fake, "environ": {}, "gpu_indices": [1]})
    assert [s.name for s in chosen] == ["amd:gpu:1"]


# ------------------------------------------------------------------------------------------ through the meter
def test_window_edges_nested_windows_and_another_samplers_slow_sync() -> None:
    origin = time.monotonic() - 5.0
    fake = FakeAmdSmi(TRACE, clock=lambda: time.monotonic() - origin)
    gpus = amd.FACTORY.create({"amdsmi_module": fake, "environ": {}, "gpu_indices": [1]})
    meter = Meter([ClockCounter(key="cpu:package-0", watts=30.0), SlowEdge(0.2), *gpus], counter_interval=0.02)
    meter.begin("outer")
    time.sleep(0.1)
    meter.begin("inner")
    time.sleep(0.4)
    inner = meter.end("inner")
    outer = meter.end("outer")
    meter.close()
    for result in (inner, outer):
        g = domain(result, "gpu:1")
        assert 0 < g.energy_j < 1500 * result.duration_s  # a wrap of the whole range would be 2.8e14 J
        assert not g.lower_bound and not result.partial, result.warnings
    assert domain(inner, "gpu:1").energy_j < domain(outer, "gpu:1").energy_j


def test_a_wrap_of_the_64_bit_accumulator_is_counted_once(clock: ManualClock) -> None:
    trace = load_trace(TRACE)
    trace["devices"][0]["energy_start_counts"] = 2**64 - 50_000_000  # 765 J before the wrap
    trace["devices"][0]["samples"] = [{"t": 0, "power_w": 400}]
    fake = FakeAmdSmi(trace, clock=ManualClock(0.0))
    clock = fake.clock
    gpus = amd.FACTORY.create({**options(fake), "gpu_indices": [1]})
    result = ticks(gpus, clock, 16)  # 4 s at 400 W: 1600 J, across the wrap at ~1.9 s
    g = domain(result, "gpu:1")
    assert g.energy_j == pytest.approx(1600.0, rel=1e-3) and not g.lower_bound, result.warnings
    assert not any("backwards" in w for w in result.warnings)


def test_the_counter_going_backwards_from_a_public_report_is_never_counted() -> None:
    """ROCm/amdsmi#115: one handle read 1 s apart stepped back 14 million counts. Not a wrap, not joules."""
    clock = ManualClock(0.0)
    fake = FakeAmdSmi(PUBLIC, clock=clock)
    (gpu,) = amd.FACTORY.create({**options(fake), "gpu_indices": [0]})
    result = ticks([gpu], clock, 2, step=0.5)
    g = domain(result, "gpu:0")
    assert math.isnan(g.energy_j) or (g.lower_bound and g.energy_j < 1e6), (g, result.warnings)
    assert any("went backwards" in w and "amdsmi#115" in w for w in sampler_warnings(result))


def test_a_counter_that_stands_still_is_said_so_from_a_public_report() -> None:
    """AMDResearch/hpcfund#21: an MI100's counter and timestamp stood still under load (old 'power' key)."""
    clock = ManualClock(0.0)
    fake = FakeAmdSmi(PUBLIC, clock=clock)
    (gpu,) = amd.FACTORY.create({**options(fake), "gpu_indices": [1]})
    assert isinstance(gpu, amd.AmdEnergySampler)  # the pre-6.2.1 key 'power' is read as the count
    result = ticks([gpu], clock, 4, step=1.0)
    assert any("have not moved" in w and "amdsmi#38" in w for w in sampler_warnings(result))


def test_permission_denied_is_a_one_line_error_with_the_fix(clock: ManualClock) -> None:
    trace = load_trace(TRACE)
    trace["devices"][0]["no_permission"] = True
    fake = FakeAmdSmi(trace, clock=clock)
    avail = amd.FACTORY.probe(options(fake))
    assert not avail.available and "permission denied" in avail.reason and "render,video" in avail.reason
    with pytest.raises(amd.AmdPermissionError) as info:
        amd.FACTORY.create(options(fake))
    assert "\n" not in str(info.value) and fake.init_count == 0


def test_permission_revoked_mid_run_loses_that_gpu_only(fake: FakeAmdSmi, clock: ManualClock) -> None:
    gpus = amd.FACTORY.create(options(fake, gpu_indices=[1, 2]))
    meter = Meter(gpus, counter_interval=3600, clock=clock)
    meter.begin("w")
    clock.t += 1.0
    fake.devices[0].spec["no_permission"] = True
    result = meter.end("w")
    meter.close()
    assert "gpu:1" in result.missing_domains and domain(result, "gpu:2").energy_j > 0
    assert any("permission denied" in w for w in result.warnings)


def test_a_gpu_that_vanishes_mid_run_keeps_the_others_figures(fake: FakeAmdSmi, clock: ManualClock) -> None:
    gpus = amd.FACTORY.create(options(fake))
    meter = Meter(gpus, counter_interval=3600, interval=3600, clock=clock)
    meter.begin("w")
    clock.t += 1.0
    fake.devices[2].spec["lost_at_s"] = 10.5
    result = meter.end("w")
    meter.close()
    assert "gpu:2" in result.missing_domains and domain(result, "gpu:1").energy_j > 0
    lost = [w for w in result.warnings if "gpu:2" in w and "not reachable" in w]
    assert lost and "amd-smi list" in lost[0]
    assert fake.init_count == 0


def test_short_window_is_never_reported_as_zero_joules(fake: FakeAmdSmi, clock: ManualClock) -> None:
    gpus = amd.FACTORY.create(options(fake, gpu_indices=[1]))
    result = ticks(gpus, clock, 0)
    g = domain(result, "gpu:1")
    assert math.isnan(g.energy_j) or g.energy_j > 0
    assert any(w.startswith("gpu:1:") and "counter" in w for w in result.warnings)


def test_on_edge_synchronises_the_hip_device_this_process_uses(fake: FakeAmdSmi,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    synced: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 2)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda i: 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda i: synced.append(i))
    for s in amd.FACTORY.create(options(fake)):
        s.on_edge()
    assert synced == [2]


# ------------------------------------------------------------------------------------------ scripts/amd_check.py
def test_amd_check_script_against_the_fake(tmp_path) -> None:  # noqa: ANN001
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    summary, record = tmp_path / "summary.json", tmp_path / "amd_trace.json"
    cmd = [sys.executable, str(repo / "scripts" / "amd_check.py"), "--fake-amdsmi", str(repo / "tests" / "support" /
           "data" / TRACE), "--fake-start", "5.5", "--gpu-index", "1", "--seconds", "1", "--idle-seconds", "0.3",
           "--size", "64", "--no-sensors", "--check-windows", "2", "--share", "--json", str(summary),
           "--record", str(record)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=repo, timeout=180, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ("1 counter under load", "2 edge reads", "3 share of the GPU"):
        assert f"check {check}: PASS" in out.stdout, out.stdout
    data = json.loads(summary.read_text())
    assert data["gpu"]["name"] == "AMD Instinct MI300X" and all(c["passed"] for c in data["checks"].values())
    trace = json.loads(record.read_text())
    assert trace["synthetic"] is True and "NOT a device measurement" in trace["note"]
    assert len(trace["devices"][0]["recorded_answers"]) >= 3  # replayable by the fake


# ------------------------------------------------------------------------------------------ loading the binding
def test_a_missing_binding_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from energybench.samplers.amd import library

    def no_module(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(library, "_missing_library", [])
    monkeypatch.setattr(library.importlib, "import_module", no_module)
    reason = amd.FACTORY.probe({}).reason
    assert reason == ("the amdsmi Python binding is not installed: pip install 'energybench[amd]' (it also needs "
                      "ROCm's amd-smi-lib)")


def test_a_binding_without_rocm_is_remembered_and_prints_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from energybench.samplers.amd import library

    calls = []

    def broken(name: str) -> object:  # what amdsmi does without libamd_smi.so: print, then KeyError
        calls.append(name)
        print("Unable to find libamd_smi.so library try installing amd-smi-lib from your package manager")
        raise KeyError("libamd_smi.so")

    monkeypatch.setattr(library, "_missing_library", [])
    monkeypatch.setattr(library.importlib, "import_module", broken)
    first = amd.FACTORY.probe({}).reason
    second = amd.FACTORY.probe({}).reason
    assert "ROCm's libamd_smi.so cannot be loaded (KeyError: 'libamd_smi.so')" in first and first == second
    assert calls == ["amdsmi"]  # the failed import is tried once per process
    assert capsys.readouterr().out == ""  # stdout stays clean for `energybench sensors`
