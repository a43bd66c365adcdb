"""Your share of a shared GPU: two processes on one fake GPU (NVML and amdsmi), the split of its energy by
utilisation, idle spans, MIG slices, and the per-process utilisation call of the fake NVML."""

from __future__ import annotations

import pynvml
import pytest
from fake_amdsmi import FakeAmdSmi
from fake_amdsmi import ManualClock as AmdClock
from fake_nvml import FakeNvml, ManualClock, load_trace

from energybench.measuring.meter import Meter
from energybench.samplers import amd, gpu_share
from energybench.samplers import nvml as nv

MINE, NEIGHBOUR = 1001, 2002
MIG_A = "MIG-01234567-89ab-cdef-0123-456789abcdef"


def two_process_nvml(clock: ManualClock, shares: tuple[int, int] = (75, 25)) -> FakeNvml:
    trace = load_trace("nvml_synthetic.json")
    trace["devices"][0]["processes"] = [{"pid": MINE, "sm_util": shares[0]}, {"pid": NEIGHBOUR, "sm_util": shares[1]}]
    return FakeNvml(trace, clock=clock)


def run_window(samplers: list, clock, seconds: float = 10.0, step: float = 0.5):  # noqa: ANN001, ANN201
    """One window over ``seconds`` of the trace's load, read every ``step`` (inner windows' edges)."""
    meter = Meter(samplers, counter_interval=3600, clock=clock)
    meter.begin("w")
    for _ in range(int(seconds / step)):
        clock.t += step
        meter.begin("tick")
        meter.end("tick")
    result = meter.end("w")
    meter.close()
    return result


def domain(result, key: str):  # noqa: ANN001, ANN201
    return next(d for d in result.domains if d.key == key)


# ------------------------------------------------------------------------------------------ the acceptance case
def test_two_processes_75_25_on_one_nvml_gpu_split_its_counter_energy() -> None:
    clock = ManualClock(10.0)
    fake = two_process_nvml(clock)
    samplers = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": clock, "gpu_indices": [0],
                                  "gpu_share": True, "gpu_share_pids": lambda: {MINE}})
    result = run_window(samplers, clock)
    device_j = domain(result, "gpu:0").energy_j
    share = domain(result, "gpu:0:process-share")
    assert device_j > 2000  # ~285 W for 10 s
    assert share.source == "estimated" and not share.counted
    assert share.details["label"] == "estimated (shared GPU: share of utilisation)"
    assert share.energy_j == pytest.approx(0.75 * device_j, rel=0.02)
    assert result.energy_j == device_j  # the share is reported, never added to the total
    stats = result.metadata["samplers"]["nvml:gpu:0"]["window"]["shared_gpu"]
    processes = stats["processes"]
    assert processes[MINE]["share"] == pytest.approx(0.75, abs=0.02)
    assert processes[NEIGHBOUR]["share"] == pytest.approx(0.25, abs=0.02)
    assert stats["device_j"] == pytest.approx(device_j, rel=1e-9)
    assert processes[MINE]["energy_j"] + processes[NEIGHBOUR]["energy_j"] + stats["unattributed_j"] == \
        pytest.approx(device_j, rel=1e-9)
    assert stats["unattributed_j"] == 0.0 and stats["this_process_tree_j"] == pytest.approx(share.energy_j)
    print(f"nvml 75/25: device {device_j:.3f} J, mine {processes[MINE]['energy_j']:.3f} J "
          f"({processes[MINE]['share']:.4f}), neighbour {processes[NEIGHBOUR]['energy_j']:.3f} J "
          f"({processes[NEIGHBOUR]['share']:.4f})")


def test_two_processes_75_25_on_one_amd_gpu_split_its_counter_energy() -> None:
    clock = AmdClock(10.0)
    trace = {"devices": [{"market_name": "AMD Instinct MI300X", "uuid": "u-0", "hip_id": 0, "power_cap_uw": 750e6,
                          "counter_resolution": 15.3, "samples": [{"t": 0, "power_w": 500}, {"t": 60, "power_w": 700}],
                          "processes": [{"pid": MINE, "gfx_fraction": 0.6}, {"pid": NEIGHBOUR, "gfx_fraction": 0.2}]}]}
    fake = FakeAmdSmi(trace, clock=clock)
    samplers = amd.FACTORY.create({"amdsmi_module": fake, "environ": {}, "clock": clock, "gpu_share": True,
                                   "gpu_share_pids": lambda: {MINE}})
    result = run_window(samplers, clock)
    device_j = domain(result, "gpu:0").energy_j
    stats = result.metadata["samplers"]["amd:gpu:0"]["window"]["shared_gpu"]
    mine, neighbour = stats["processes"][MINE], stats["processes"][NEIGHBOUR]
    assert mine["share"] == pytest.approx(0.75, abs=0.02) and neighbour["share"] == pytest.approx(0.25, abs=0.02)
    assert mine["energy_j"] + neighbour["energy_j"] + stats["unattributed_j"] == pytest.approx(device_j, rel=1e-9)
    assert domain(result, "gpu:0:process-share").energy_j == pytest.approx(mine["energy_j"], rel=1e-9)
    assert "privileged user" in domain(result, "gpu:0:process-share").details["note"]


# ------------------------------------------------------------------------------------------ the rule
def test_apportion_splits_by_weight_and_adds_up_exactly() -> None:
    parts = gpu_share.apportion(10.0, {1: 3.0, 2: 1.0, 3: 0.0, 4: -2.0})
    assert parts == pytest.approx({1: 7.5, 2: 2.5}) and sum(parts.values()) == 10.0
    assert gpu_share.apportion(10.0, {}) == {} and gpu_share.apportion(10.0, {1: 0.0}) == {}


def test_idle_spans_follow_the_last_busy_split_and_are_unattributed_before_any() -> None:
    t = [0.0]
    busy: list[dict[int, float]] = [{}, {}, {1: 30.0, 2: 10.0}, {}, {}]
    share = gpu_share.GpuShare("gpu:0", lambda: busy.pop(0), mine=lambda: {1}, clock=lambda: t[0])
    for joules in (0.0, 10.0, 20.0, 30.0, 40.0):  # 10 J per span
        share.advance(joules)
        t[0] += 1.0
    stats = share.window_stats(0.0, 10.0)
    assert stats is not None
    assert stats["unattributed_j"] == pytest.approx(10.0)  # the span before anyone was busy
    assert stats["processes"][1]["energy_j"] == pytest.approx(22.5)  # 3 spans x 10 J x 0.75
    assert stats["processes"][2]["energy_j"] == pytest.approx(7.5)
    assert stats["device_j"] == pytest.approx(40.0)


def test_a_counter_reset_is_not_split() -> None:
    t = [0.0]
    share = gpu_share.GpuShare("gpu:0", lambda: {1: 50.0}, mine=lambda: {1}, clock=lambda: t[0])
    for joules in (100.0, 110.0, 5.0, 15.0):
        share.advance(joules)
        t[0] += 1.0
    assert share.advance(25.0) == pytest.approx(30.0)  # 10 + (reset: 0) + 10 + 10


def test_a_counter_fault_is_not_split() -> None:
    """A step back on a wrapping counter (ROCm/amdsmi#115) would be a whole wrap: more than the GPU can draw."""
    t = [0.0]
    share = gpu_share.GpuShare("gpu:0", lambda: {1: 50.0}, mine=lambda: {1}, max_value=1000.0, clock=lambda: t[0])
    share.max_power_w = 100.0
    share.advance(500.0)
    t[0] = 1.0
    assert share.advance(400.0) == 0.0  # as a wrap: 900 J in 1 s, impossible at 100 W
    t[0] = 2.0
    assert share.advance(450.0) == pytest.approx(50.0)


def test_polled_gpu_share_is_watts_times_the_current_split() -> None:
    clock = ManualClock(10.0)
    trace = load_trace("nvml_synthetic.json")
    trace["devices"][1]["processes"] = [{"pid": MINE, "sm_util": 40}, {"pid": NEIGHBOUR, "sm_util": 40}]
    fake = FakeNvml(trace, clock=clock)
    (gpu1,) = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": clock, "gpu_indices": [1],
                                 "gpu_share": True, "gpu_share_pids": lambda: {MINE}})
    assert gpu1.kind == "power"
    gpu1.read()
    clock.t = 12.0
    values = gpu1.read()
    assert values["gpu:1:process-share"] == pytest.approx(values["gpu:1"] / 2)


def test_the_share_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gpu_share.ENV, raising=False)
    fake = two_process_nvml(ManualClock(10.0))
    (gpu0,) = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "gpu_indices": [0]})
    assert [d.key for d in gpu0.domains()] == ["gpu:0"]
    monkeypatch.setenv(gpu_share.ENV, "1")
    (gpu0,) = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "gpu_indices": [0]})
    assert [d.key for d in gpu0.domains()] == ["gpu:0", "gpu:0:process-share"]


# ------------------------------------------------------------------------------------------ visibility and MIG
def test_the_share_follows_cuda_visible_devices() -> None:
    clock = ManualClock(10.0)
    fake = two_process_nvml(clock)
    samplers = nv.FACTORY.create({"nvml_module": fake, "environ": {"CUDA_VISIBLE_DEVICES": "1,0"}, "clock": clock,
                                  "gpu_share": True, "gpu_share_pids": lambda: {MINE}})
    by_key = {s.key: s for s in samplers}
    assert by_key["gpu:1"].identity["physical_index"] == 0  # the busy A100 is cuda:1 in this process
    result = run_window([by_key["gpu:1"]], clock, seconds=3.0)
    assert domain(result, "gpu:1:process-share").energy_j == pytest.approx(0.75 * domain(result, "gpu:1").energy_j,
                                                                            rel=0.02)


def test_mig_slices_say_what_they_can_and_cannot_read() -> None:
    fake = FakeNvml("nvml_synthetic.json", clock=ManualClock(10.0))
    (gpu,) = nv.FACTORY.create({"nvml_module": fake, "environ": {"CUDA_VISIBLE_DEVICES": MIG_A},
                                "gpu_share": True})
    slices = gpu.identity["mig_slices"]
    assert [s["uuid"] for s in slices] == [MIG_A]
    assert {"energy", "power", "process utilisation"} <= set(slices[0]["not_readable"])
    warnings = gpu.take_warnings()
    assert any(w.startswith(f"gpu:0 MIG slice {MIG_A}: NVML reads per slice:") and "whole GPU's" in w
               for w in warnings)
    assert any("gpu:0:process-share n/a" in w and "per-process utilisation" in w for w in warnings)
    assert [d.key for d in gpu.domains()] == ["gpu:0"]  # no share without per-process figures


def test_a_mig_gpu_selected_by_index_reports_every_slice() -> None:
    fake = FakeNvml("nvml_synthetic.json", clock=ManualClock(10.0))
    (gpu2,) = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "gpu_indices": [2]})
    assert len(gpu2.identity["mig_slices"]) == 2


# ------------------------------------------------------------------------------------------ the fake's call
def test_fake_process_utilisation_has_the_real_shape_and_not_found() -> None:
    clock = ManualClock(1.0)
    fake = two_process_nvml(clock)
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    samples = fake.nvmlDeviceGetProcessUtilization(handle, 0)
    assert isinstance(samples[0], pynvml.c_nvmlProcessUtilizationSample_t)
    newest = max(s.timeStamp for s in samples)
    with pytest.raises(pynvml.NVMLError_NotFound):  # nothing newer: what the driver answers
        fake.nvmlDeviceGetProcessUtilization(handle, newest)
    clock.t = 2.0
    fresh = fake.nvmlDeviceGetProcessUtilization(handle, newest)
    assert {s.pid for s in fresh} == {MINE, NEIGHBOUR} and all(s.timeStamp > newest for s in fresh)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        fake.nvmlDeviceGetProcessUtilization(fake.nvmlDeviceGetHandleByIndex(2), 0)  # MIG-enabled


def test_a_gpu_lost_during_the_share_read_is_a_lost_gpu() -> None:
    clock = ManualClock(10.0)
    fake = two_process_nvml(clock)
    (gpu0,) = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": clock, "gpu_indices": [0],
                                 "gpu_share": True, "gpu_share_pids": lambda: {MINE}})
    gpu0.read()
    fake.devices[0].spec["lost_at_s"] = 11.0
    clock.t = 12.0
    with pytest.raises(nv.NvmlGpuLostError):
        gpu0.read()
