"""End to end: NVML and TPU samplers inside the real meter (``energybench.measure``), and scripts/gpu_check.py.

The GPU is the fake NVML replaying the synthetic trace on the real clock (trace time 5 s onward is the
~285 W load part); everything else (meter thread, integration, warnings) is the real code.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_nvml import FakeNvml, load_trace

import energybench
from energybench.samplers import nvml as nv
from energybench.samplers import tpu

REPO = Path(__file__).resolve().parents[2]
TRACE = "nvml_synthetic.json"


def replay(trace: object = TRACE, start: float = 5.0) -> FakeNvml:
    origin = time.monotonic() - start
    return FakeNvml(trace, clock=lambda: time.monotonic() - origin)


def create(fake: FakeNvml, **extra: object) -> list[nv.NvmlGpuSampler]:
    return nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": fake.clock, **extra})


def test_counter_and_polled_power_agree_over_one_window() -> None:
    fake = replay()
    samplers = create(fake, nvml_mode="both", gpu_indices=[0])
    with energybench.measure(samplers=samplers, interval=0.02, name="load") as m:
        time.sleep(1.5)
    result = m.result
    counter, polled = result.energy_by_domain()["gpu:0"], result.energy_by_domain()["gpu:0-polled"]
    assert counter == pytest.approx(polled, rel=0.12)  # the counter moves in 0.1 s steps
    assert 255 * result.duration_s < polled < 315 * result.duration_s  # the trace's 285 +/- 25 W load
    assert result.energy_j == counter  # the polled copy is reported, not added
    by_key = {d.key: d for d in result.domains}
    assert by_key["gpu:0"].method == nv.METHOD_COUNTER and by_key["gpu:0"].source == "measured"
    assert by_key["gpu:0-polled"].method == nv.METHOD_POLLING
    meta = result.metadata["samplers"]["nvml:gpu:0"]
    assert meta["power_limit_w"] == 400.0 and meta["uuid"].startswith("GPU-1111")
    assert meta["window"]["samples"] >= 2 and meta["window"]["gpu_util_mean_pct"] == pytest.approx(97)
    assert fake.init_count == 0  # the meter closed every sampler


def test_lost_gpu_keeps_the_other_gpus_figures() -> None:
    trace = load_trace(TRACE)
    fake = replay(trace)
    trace_now = fake.clock()
    fake.devices[1].spec["lost_at_s"] = trace_now + 0.3
    samplers = create(fake)
    with energybench.measure(samplers=samplers, interval=0.02) as m:
        time.sleep(0.8)
    energy = m.result.energy_by_domain()
    assert energy["gpu:0"] > 100 and energy["gpu:2"] > 100
    assert "gpu:1" not in energy
    lost = [w for w in m.result.warnings if "gpu:1" in w]
    assert lost and "GPU is lost" in lost[0]


def test_short_window_is_never_reported_as_zero_joules() -> None:
    samplers = create(replay(), gpu_indices=[0])
    with energybench.measure(samplers=samplers, name="tiny") as m:
        pass
    (gpu,) = [d for d in m.result.domains if d.key == "gpu:0"]
    assert math.isnan(gpu.energy_j) or gpu.energy_j > 0
    assert any(w.startswith("gpu:0:") and "counter" in w for w in m.result.warnings)


def test_counter_reset_mid_window_is_warned() -> None:
    trace = load_trace(TRACE)
    fake = replay(trace)
    fake.devices[0].resets.append(fake.clock() + 0.4)
    samplers = create(fake, gpu_indices=[0])
    meter = energybench.Meter(samplers, interval=0.02, counter_interval=0.1)
    with meter.window("reset") as w:
        time.sleep(1.0)
    meter.close()
    assert any("went backwards" in x for x in w.result.warnings)
    assert any("went backwards" in x for x in w.result.metadata["samplers"]["nvml:gpu:0"]["warnings"])


def test_tpu_estimate_through_the_meter() -> None:
    class Monitoring:
        def list_supported_metrics(self) -> list[str]:
            return ["duty_cycle_pct"]

        def get_metric(self, name: str) -> object:
            return type("M", (), {"data": lambda self: ["50.0", "25.0"]})()

    (sampler,) = tpu.FACTORY.create({"tpu_client": tpu.LibtpuSdkClient(Monitoring()), "tpu_generation": "v4"})
    with energybench.measure(samplers=[sampler], interval=0.02) as m:
        time.sleep(0.5)
    result = m.result
    energy = result.energy_by_domain()
    assert energy["tpu:0"] == pytest.approx(0.5 * 192 * result.duration_s, rel=0.02)
    assert energy["tpu:1"] == pytest.approx(0.25 * 192 * result.duration_s, rel=0.02)
    assert result.source == "estimated" and {d.method for d in result.domains} == {tpu.METHOD}


def test_gpu_check_script_against_the_fake(tmp_path: Path) -> None:
    summary, record = tmp_path / "summary.json", tmp_path / "nvml_trace_fake.json"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "gpu_check.py"),
        *("--fake-nvml", str(REPO / "tests" / "support" / "data" / TRACE), "--fake-start", "1.2"),
        *("--seconds", "1", "--idle-seconds", "0.5", "--size", "64", "--interval", "0.02"),
        *("--json", str(summary), "--record", str(record), "--no-sensors", "--check-windows", "2"),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=180, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "counter energy (nvml-energy-counter)" in out.stdout and "ratio counter / power-integrated" in out.stdout
    for check in ("1 trial windows", "2 only the job's GPUs", "4 edge reads"):
        assert f"check {check}: PASS" in out.stdout, out.stdout
    assert "seen, not measured: gpu:1, gpu:2" in out.stdout  # the fake has three GPUs; the job uses one
    data = json.loads(summary.read_text())
    assert all(c["passed"] for c in data["checks"].values()) and len(data["checks"]) == 3
    assert 0.8 < data["ratio_counter_over_polled"] < 1.2
    assert data["idle_power_counter_w"] == pytest.approx(62, rel=0.1)  # the trace's idle part
    assert data["load_power_w"] > 150 and data["workload"]["device"] == "cpu"
    trace = json.loads(record.read_text())
    assert trace["synthetic"] is True and "NOT a device measurement" in trace["note"]
    replayed = FakeNvml(trace)
    replayed.nvmlInit()
    h = replayed.nvmlDeviceGetHandleByIndex(0)
    assert replayed.nvmlDeviceGetName(h).startswith("NVIDIA A100")
    assert len(trace["devices"][0]["samples"]) >= 10


def test_nested_windows_each_get_their_own_gpu_activity() -> None:
    """Utilisation and memory are summarised over each window's own span, not 'the last window'."""
    fake = replay()
    samplers = create(fake, gpu_indices=[0])
    meter = energybench.Meter(samplers=samplers, counter_interval=0.05)
    meter.begin("outer")
    time.sleep(0.4)
    meter.begin("inner")
    time.sleep(0.4)
    inner = meter.end("inner")
    time.sleep(0.4)
    outer = meter.end("outer")
    meter.close()
    inner_n = inner.metadata["samplers"]["nvml:gpu:0"]["window"]["samples"]
    outer_n = outer.metadata["samplers"]["nvml:gpu:0"]["window"]["samples"]
    assert inner_n >= 2 and outer_n > inner_n  # the outer window saw every sample of the inner one and more


def _gpu_check_module():  # noqa: ANN202
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_gpu_check_flags_a_counter_that_misbehaves_at_window_edges() -> None:
    """The script's edge-read check fails when a reading is impossible (here: the fake's counter answers a
    bogus value for a moment), so on a real GPU it would catch the old edge-read defect."""
    gpu_check = _gpu_check_module()
    prepared = gpu_check.prepare_matmuls(32, "float32", 0)
    fake = replay(load_trace(TRACE))
    samplers = create(fake, gpu_indices=[0], nvml_mode="counter")
    now = fake.clock()
    fake.devices[0].glitches = [{"t": now + 0.3, "until": now + 0.5, "energy_mj": 5}]  # a "reset" that heals
    ok, detail = gpu_check.check_nested_edges(samplers, "gpu:0", prepared, 2)
    assert not ok and "with a reset, wrap or impossible figure" in detail
    healthy = create(replay(), gpu_indices=[0], nvml_mode="counter")
    assert gpu_check.check_nested_edges(healthy, "gpu:0", prepared, 2)[0]
