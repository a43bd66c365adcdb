"""The NVML sampler, driven through the fake NVML (real call shapes, synthetic trace) and the real pynvml."""

from __future__ import annotations

import subprocess
import sys

import pynvml
import pytest
from fake_nvml import FakeNvml, ManualClock, load_trace

from energybench.errors import ConfigError, SamplerError
from energybench.samplers import nvml as nv

TRACE = "nvml_synthetic.json"
MIG_A = "MIG-01234567-89ab-cdef-0123-456789abcdef"
MIG_B = "MIG-fedcba98-7654-3210-fedc-ba9876543210"


def options(fake: FakeNvml, env: dict[str, str] | None = None, **extra: object) -> dict[str, object]:
    return {"nvml_module": fake, "environ": env or {}, "clock": fake.clock, **extra}


def by_key(samplers: list[nv.NvmlGpuSampler]) -> dict[str, nv.NvmlGpuSampler]:
    return {s.key: s for s in samplers}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(10.0)


@pytest.fixture
def fake(clock: ManualClock) -> FakeNvml:
    return FakeNvml(TRACE, clock=clock)


# ------------------------------------------------------------------------------------------ probe
def test_probe_lists_every_gpu_with_its_method(fake: FakeNvml) -> None:
    avail = nv.FACTORY.probe(options(fake))
    assert avail.available and avail.source == "measured"
    assert avail.domains == ("gpu:0", "gpu:1", "gpu:2")
    methods = {k: v["method"] for k, v in avail.details["gpus"].items()}
    assert methods == {"gpu:0": nv.METHOD_COUNTER, "gpu:1": nv.METHOD_POLLING, "gpu:2": nv.METHOD_COUNTER}
    assert fake.init_count == 0  # the probe gives its NVML reference back


def test_probe_on_this_machine_says_the_library_is_missing() -> None:
    """The real pynvml, no NVIDIA driver here: a stated reason, not an exception."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:  # pragma: no cover - only on a machine with a GPU
        pynvml.nvmlShutdown()
        pytest.skip("this machine has a working NVML")
    avail = nv.FACTORY.probe({})
    assert not avail.available
    assert avail.reason.startswith("NVML library not found") or avail.reason.startswith("NVIDIA driver")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML library not found"),
        ("NVML_ERROR_DRIVER_NOT_LOADED", "NVIDIA driver not loaded"),
    ],
)
def test_library_present_but_no_driver(code: str, reason: str) -> None:
    fake = FakeNvml({"driver_version": "1", "init_error": code, "devices": []})
    avail = nv.FACTORY.probe(options(fake))
    assert not avail.available and avail.reason.startswith(reason)
    with pytest.raises(nv.NvmlUnavailableError) as info:
        nv.FACTORY.create(options(fake))
    assert reason in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, SamplerError)


def test_empty_cuda_visible_devices_hides_every_gpu(fake: FakeNvml) -> None:
    avail = nv.FACTORY.probe(options(fake, {"CUDA_VISIBLE_DEVICES": ""}))
    assert not avail.available and "hides every GPU" in avail.reason
    assert nv.FACTORY.create(options(fake, {"CUDA_VISIBLE_DEVICES": ""})) == []


# ------------------------------------------------------------------------------------------ counter path
def test_counter_path_reads_joules_from_the_energy_counter(fake: FakeNvml, clock: ManualClock) -> None:
    samplers = by_key(nv.FACTORY.create(options(fake)))
    gpu0 = samplers["gpu:0"]
    assert isinstance(gpu0, nv.NvmlEnergySampler) and gpu0.kind == "counter" and gpu0.resolution_s == 0.1
    (domain,) = gpu0.domains()
    assert (domain.source, domain.method, domain.max_value) == ("measured", nv.METHOD_COUNTER, None)
    assert domain.details["resolution_s"] == 0.1
    h = fake.nvmlDeviceGetHandleByIndex(0)  # the samplers hold NVML open
    start = gpu0.read()["gpu:0"]
    assert start == fake.nvmlDeviceGetTotalEnergyConsumption(h) / 1000
    clock.t = 20.0
    joules = gpu0.read()["gpu:0"] - start
    device = fake.devices[0]
    expected = (device.integral_mj(20.0) - device.integral_mj(10.0)) / 1000
    assert joules == pytest.approx(expected, abs=0.01)  # both reads fall on counter ticks; mJ truncation only
    assert 2000 < joules < 3300  # ~285 W for 10 s


def test_polling_path_reports_watts_for_gpus_without_a_counter(fake: FakeNvml, clock: ManualClock) -> None:
    gpu1 = by_key(nv.FACTORY.create(options(fake)))["gpu:1"]
    assert isinstance(gpu1, nv.NvmlPowerSampler) and gpu1.kind == "power"
    (domain,) = gpu1.domains()
    assert domain.method == nv.METHOD_POLLING and domain.source == "measured"
    assert domain.details["power_source"].startswith("nvmlDeviceGetPowerUsage")
    assert gpu1.resolution_s == nv.AVERAGE_POWER_RESOLUTION_S
    clock.t = 30.0
    watts = gpu1.read()["gpu:1"]
    assert watts == pytest.approx(fake.nvmlDeviceGetPowerUsage(fake.nvmlDeviceGetHandleByIndex(1)) / 1000)
    assert 170 < watts < 210


def test_polling_uses_the_instant_power_field_where_supported(fake: FakeNvml, clock: ManualClock) -> None:
    gpu0 = by_key(nv.FACTORY.create(options(fake, nvml_mode="polling")))["gpu:0"]
    (domain,) = gpu0.domains()
    assert domain.details["power_source"] == "NVML_FI_DEV_POWER_INSTANT"
    clock.t = 3.3
    assert gpu0.read()["gpu:0"] == pytest.approx(fake.devices[0].power_mw(3.3) / 1000, abs=0.001)


def test_both_mode_adds_an_uncounted_polled_domain(fake: FakeNvml) -> None:
    samplers = by_key(nv.FACTORY.create(options(fake, nvml_mode="both", gpu_indices=[0])))
    assert set(samplers) == {"gpu:0", "gpu:0-polled"}
    assert samplers["gpu:0"].domains()[0].counted is True
    assert samplers["gpu:0-polled"].domains()[0].counted is False


def test_counter_mode_on_a_gpu_without_counter_is_a_clear_error(fake: FakeNvml) -> None:
    with pytest.raises(nv.NvmlNotSupportedError, match="no NVML energy counter"):
        nv.FACTORY.create(options(fake, nvml_mode="counter", gpu_indices=[1]))
    assert fake.init_count == 0


# ------------------------------------------------------------------------------------------ failure modes
def test_counter_going_backwards_is_detected(clock: ManualClock) -> None:
    trace = load_trace(TRACE)
    trace["devices"][0]["counter_resets_at"] = [12.0]
    fake = FakeNvml(trace, clock=clock)
    gpu0 = by_key(nv.FACTORY.create(options(fake)))["gpu:0"]
    before = gpu0.read()["gpu:0"]
    clock.t = 14.0
    after = gpu0.read()["gpu:0"]
    assert after < before
    warnings = gpu0.take_warnings()
    assert any("went backwards" in w for w in warnings)
    assert gpu0.take_warnings() == []  # each warning is handed over once
    assert gpu0.domains()[0].max_value is None  # the meter treats backwards as a reset, not a wrap


def test_short_window_reads_zero_from_the_counter(fake: FakeNvml, clock: ManualClock) -> None:
    gpu0 = by_key(nv.FACTORY.create(options(fake)))["gpu:0"]
    a = gpu0.read()["gpu:0"]
    clock.t = 10.04
    b = gpu0.read()["gpu:0"]
    assert b - a == 0.0  # the counter has not ticked yet
    assert gpu0.domains()[0].details["resolution_s"] == 0.1  # what the meter's short-window check uses


def test_lost_gpu_raises_a_sampler_error_and_other_gpus_keep_reading(clock: ManualClock) -> None:
    trace = load_trace(TRACE)
    trace["devices"][1]["lost_at_s"] = 12.0
    fake = FakeNvml(trace, clock=clock)
    samplers = by_key(nv.FACTORY.create(options(fake)))
    clock.t = 13.0
    with pytest.raises(nv.NvmlGpuLostError) as info:
        samplers["gpu:1"].read()
    message = str(info.value)
    assert isinstance(info.value, SamplerError) and "\n" not in message
    assert "gpu:1" in message and "GPU is lost" in message and "nvidia-smi" in message
    assert samplers["gpu:0"].read()["gpu:0"] > 0
    for s in samplers.values():
        s.close()
    assert fake.init_count == 0


@pytest.mark.parametrize(
    ("code", "cls", "text"),
    [
        (pynvml.NVML_ERROR_GPU_IS_LOST, nv.NvmlGpuLostError, "GPU is lost"),
        (pynvml.NVML_ERROR_NO_PERMISSION, nv.NvmlPermissionError, "permission denied"),
        (pynvml.NVML_ERROR_NOT_SUPPORTED, nv.NvmlNotSupportedError, "not supported"),
        (pynvml.NVML_ERROR_UNKNOWN, nv.NvmlError, "Unknown Error"),
    ],
)
def test_nvml_errors_become_typed_one_line_errors(code: int, cls: type, text: str) -> None:
    err = nv.nvml_error(pynvml.NVMLError(code), "nvmlDeviceGetPowerUsage", "gpu:0 (A100, GPU-1)")
    assert type(err) is cls and text in str(err) and "nvmlDeviceGetPowerUsage" in str(err)
    assert "\n" not in str(err) and err.exit_code == 1


# ------------------------------------------------------------------------------------------ devices & MIG
def test_cuda_visible_devices_by_index_renumbers_gpus(fake: FakeNvml) -> None:
    samplers = by_key(nv.FACTORY.create(options(fake, {"CUDA_VISIBLE_DEVICES": "1,0"})))
    assert set(samplers) == {"gpu:0", "gpu:1"}
    assert samplers["gpu:0"].identity["physical_index"] == 1
    assert samplers["gpu:0"].identity["uuid"].startswith("GPU-6666")
    assert samplers["gpu:1"].identity["physical_index"] == 0
    assert samplers["gpu:1"].identity["cuda_visible_devices"] == "1,0"


def test_cuda_visible_devices_by_uuid_prefix(fake: FakeNvml) -> None:
    samplers = by_key(nv.FACTORY.create(options(fake, {"CUDA_VISIBLE_DEVICES": "GPU-bbbbbbbb,GPU-1111"})))
    assert samplers["gpu:0"].identity["physical_index"] == 2
    assert samplers["gpu:1"].identity["physical_index"] == 0


def test_cuda_visible_devices_stops_at_an_unknown_entry_like_cuda(fake: FakeNvml) -> None:
    samplers = nv.FACTORY.create(options(fake, {"CUDA_VISIBLE_DEVICES": "0,7,1"}))
    assert [s.key for s in samplers] == ["gpu:0"]
    assert any("'7' matches no GPU" in w for w in samplers[0].take_warnings())


def test_mig_slice_measures_the_whole_gpu_and_says_so(fake: FakeNvml, clock: ManualClock) -> None:
    env = {"CUDA_VISIBLE_DEVICES": f"{MIG_A},{MIG_B[:12]}"}  # full UUID and a prefix of the other slice
    samplers = nv.FACTORY.create(options(fake, env))
    assert [s.key for s in samplers] == ["gpu:0"]  # two slices of one GPU: one measurement
    gpu = samplers[0]
    assert gpu.identity["physical_index"] == 2 and gpu.identity["mig"] is True
    assert gpu.identity["mig_uuids"] == [MIG_A, MIG_B[:12]]
    assert "whole GPU" in gpu.domains()[0].details["mig_note"]
    gpu.on_edge()
    gpu.read()
    clock.t = 12.0
    gpu.on_edge()
    gpu.read()
    warnings = gpu.take_warnings()
    assert any("whole GPU's energy" in w for w in warnings)
    assert any("utilisation/memory not readable" in w for w in warnings)  # MIG: utilisation not supported
    assert gpu.window_stats(0.0, 100.0)["samples"] == 0  # MIG: no activity samples at all


def test_mig_enabled_gpu_selected_by_index_is_flagged(fake: FakeNvml) -> None:
    gpu2 = by_key(nv.FACTORY.create(options(fake, gpu_indices=[2])))["gpu:2"]
    assert gpu2.identity["mig"] is True and gpu2.identity["mig_uuids"] == []


def test_nonexistent_gpu_index_is_a_one_line_config_error(fake: FakeNvml) -> None:
    with pytest.raises(ConfigError) as info:
        nv.FACTORY.create(options(fake, {"CUDA_VISIBLE_DEVICES": "2"}, gpu_indices=[1]))
    message = str(info.value)
    assert "--gpu-index 1 does not exist" in message and "CUDA_VISIBLE_DEVICES='2'" in message
    assert "indices: 0" in message and "\n" not in message
    assert fake.init_count == 0  # nothing left open
    with pytest.raises(ConfigError, match="non-negative integers"):
        nv.FACTORY.create(options(fake, gpu_indices=["0"]))


def test_gpu_index_selects_process_indices(fake: FakeNvml) -> None:
    samplers = nv.FACTORY.create(options(fake, {"CUDA_VISIBLE_DEVICES": "2,0"}, gpu_indices=[1]))
    assert [(s.key, s.identity["physical_index"]) for s in samplers] == [("gpu:1", 0)]


# ------------------------------------------------------------------------------------------ metadata
def test_metadata_records_identity_and_window_activity(fake: FakeNvml, clock: ManualClock) -> None:
    gpu0 = by_key(nv.FACTORY.create(options(fake)))["gpu:0"]
    clock.t = 1.0  # idle part of the trace
    gpu0.on_edge()
    gpu0.read()
    clock.t = 6.0  # under load
    gpu0.read()  # a poll-like read in between
    clock.t = 8.0
    gpu0.on_edge()
    gpu0.read()
    info = gpu0.metadata()
    assert info["name"].startswith("NVIDIA A100") and info["uuid"].startswith("GPU-1111")
    assert info["driver_version"] == "550.54.15" and info["power_limit_w"] == 400.0
    assert info["mig"] is False and info["method"] == nv.METHOD_COUNTER and info["domain"] == "gpu:0"
    window = gpu0.window_stats(1.0, 8.0)  # the meter asks for each window's own span
    assert window["samples"] == 3
    assert window["gpu_util_mean_pct"] == pytest.approx((0 + 97 + 97) / 3)
    assert window["memory_total_bytes"] == 42949672960
    assert window["memory_used_max_bytes"] == pytest.approx(42949672960 * 0.42, rel=1e-6)
    assert gpu0.window_stats(5.0, 7.0)["samples"] == 1


def test_create_and_close_balance_nvml_init(fake: FakeNvml) -> None:
    samplers = nv.FACTORY.create(options(fake))
    assert fake.init_count == len(samplers) == 3
    for s in samplers:
        s.close()
        s.close()  # idempotent
    assert fake.init_count == 0


# ------------------------------------------------------------------------------------------ CUDA sync
def test_on_edge_does_not_import_torch() -> None:
    code = (
        "import sys; sys.path.insert(0, 'tests/support');"
        "from fake_nvml import FakeNvml; from energybench.samplers import nvml as nv;"
        "s = nv.FACTORY.create({'nvml_module': FakeNvml('nvml_synthetic.json'), 'environ': {}})[0];"
        "s.on_edge(); s.read(); assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_on_edge_synchronises_the_device_this_process_uses(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    synced: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda i: 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda i: synced.append(i))
    samplers = by_key(nv.FACTORY.create(options(fake)))
    for s in samplers.values():
        s.on_edge()
    assert synced == [1]  # the untouched devices 0 and 2 get no CUDA context


def test_on_edge_syncs_only_devices_cuda_uses(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    synced: list[int] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda index=None: synced.append(index))
    gpu = by_key(nv.FACTORY.create(options(fake)))["gpu:0"]
    assert not torch.cuda.is_initialized()
    gpu.on_edge()
    assert synced == []  # CUDA never initialised: nothing queued, and no context may be created
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    gpu.on_edge()
    assert synced == [0]  # the device this process uses: queued kernels land in the right window


# ------------------------------------------------------------------------------------------ packaging
@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ({"nvidia-ml-py": "13.615.71"}, None),
        ({"pynvml": "11.4.1"}, "pip uninstall -y pynvml && pip install nvidia-ml-py"),
        ({"pynvml": "12.0.0", "nvidia-ml-py": "12.560.30"}, "deprecated shim"),
        ({"nvidia-ml-py3": "7.352.0", "nvidia-ml-py": "12.560.30"}, "pip uninstall -y nvidia-ml-py3"),
        ({}, "pip install nvidia-ml-py"),
    ],
)
def test_deprecated_pynvml_distribution_is_named_with_its_fix(versions: dict, expected: str | None) -> None:
    problem = nv.distribution_problem(versions)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem and "\n" not in problem


def test_installed_package_is_nvidia_ml_py() -> None:
    assert "nvidia-ml-py" in nv.installed_versions()
    assert nv.distribution_problem() is None
