"""energybench run's trial windows: long enough for the slowest energy counter, and partial trials marked,
shown and left out. The GPU is the fake NVML (an A100 with a 0.1 s counter) next to the real CPU model;
the runner, meter, torch workload and table are real."""

from __future__ import annotations

import io
import math
import time

import pytest
from fake_nvml import FakeNvml, load_trace

from energybench.errors import ConfigError
from energybench.record import Benchmark, Round, Run
from energybench.render.run_table import format_table
from energybench.report import run_view
from energybench.run.runner import RunConfig, Suite, run_suites
from energybench.samplers import cpu_model
from energybench.samplers import nvml as nv
from energybench.subjects import api


@pytest.fixture
def test_subjects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "BUILTIN_SUBJECTS", {"fast": "runner_subjects:FastSubject",
                                                   "fresh": "runner_subjects:FreshSubject"})


def samplers(counter_period_s: float = 0.1) -> list:
    origin = time.monotonic() - 5.0  # trace time 5 s on: the synthetic A100's ~285 W load
    trace = load_trace("nvml_synthetic.json")
    trace["devices"][0]["counter_period_s"] = counter_period_s
    fake = FakeNvml(trace, clock=lambda: time.monotonic() - origin)
    gpu = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": fake.clock, "gpu_indices": [0]})
    return [*cpu_model.create({"cpu_scope": "process"}), *gpu]


def run(subject: str, tmp_path, counter_period_s: float = 0.1) -> Run:  # noqa: ANN001
    cfg = RunConfig(trials=3, warmup=1, idle_s=0, samplers=samplers(counter_period_s), save=False,
                    results_dir=str(tmp_path),
                    stream=io.StringIO(), cache_dir=str(tmp_path / "cache"))
    return run_suites([Suite(subject, methods=[])], cfg)


def test_a_fast_workload_is_repeated_until_the_gpu_counter_sees_every_trial(test_subjects, tmp_path) -> None:
    """A ~1 ms workload in a window of its own would read 0 J on the GPU's 0.1 s counter, leaving a
    CPU-only total stored as a normal trial. The runner repeats it until the window spans 10 updates."""
    (bench,) = run("fast", tmp_path).benchmarks
    assert len(bench.rounds) == 3
    for r in bench.rounds:
        assert not r.partial, r.warnings
        assert math.isfinite(r.domains["gpu:0"]) and r.domains["gpu:0"] > 0
        assert r.duration_s >= 1.0  # 10 x the counter's 0.1 s
        assert r.iterations is not None and r.iterations > 1
        assert r.items == 5 * 64 * r.iterations  # items of every repeat, so energy per item stays right
        assert r.domains["gpu:0"] == pytest.approx(285 * r.duration_s, rel=0.15)  # the trace's load power
    assert all(r.iterations >= bench.extra["min_runs_per_trial"] > 1 for r in bench.rounds)
    assert bench.summary("energy_per_item_j").n == 3


def test_a_workload_that_cannot_be_repeated_gives_partial_trials_shown_and_left_out(test_subjects, tmp_path):
    # the counter does not move during the test, so no millisecond window can catch an update by luck (or by a
    # load-stretched window): every trial reads 0 J on the GPU
    result = run("fresh", tmp_path, counter_period_s=1000.0)
    (bench,) = result.benchmarks
    assert all(r.partial and r.missing == ("gpu:0",) for r in bench.rounds)
    assert all(math.isnan(r.domains["gpu:0"]) for r in bench.rounds)
    assert bench.values("energy_per_item_j") == [] and bench.summary("energy_j").n == 0
    table = format_table(run_view(result))
    row = next(line for line in table.splitlines() if line.startswith("  baseline"))  # under its heading
    assert " - " in row  # no median from partial trials
    flat = " ".join(table.split())  # the footer wraps to the terminal
    assert "3 of 3 rounds partial (trial 0, 1, 2: no figure for gpu:0): left out of medians, ratios and gates" \
        in flat
    assert "shorter than the counter's update period (0.1 s)" in flat  # the trials' own warning is shown
    assert "cannot be repeated inside a window" in flat  # the run's note says why
    assert "partial trial(s) in them: a lower bound" in flat  # the CO2e line's joules miss the GPU


def rounds(*partial: bool) -> tuple[Round, ...]:
    return tuple(Round(index=i, energy_j=10.0 + i, duration_s=1.0, source="measured",
                       missing=("gpu:0",) if p else ()) for i, p in enumerate(partial))


def test_partial_rounds_are_left_out_of_values_and_summaries_and_survive_a_round_trip() -> None:
    bench = Benchmark("w", rounds=rounds(False, True, False, True))
    assert bench.values("energy_j") == [10.0, 12.0]
    assert bench.summary("energy_j").n == 2 and bench.summary("energy_j").median == 11.0
    assert [r.index for r in bench.partial_rounds] == [1, 3]  # the trials a paired test drops on both sides
    lower = Round(index=0, energy_j=5.0, duration_s=1.0, lower_bound=("cpu:package-0",))
    assert lower.partial and lower.partial_reason == "only a lower bound for cpu:package-0"
    run = Run(name="r", created="2026-12-02", benchmarks=(Benchmark("w", rounds=(*bench.rounds, lower)),))
    again = Run.from_json(run.to_json())
    assert again.benchmarks[0].rounds == run.benchmarks[0].rounds
    assert again.benchmarks[0].rounds[1].to_dict()["missing"] == ["gpu:0"]


def test_the_report_says_which_rounds_were_partial() -> None:
    from energybench.report.model import build_report

    run = Run(name="r", created="2026-12-02", benchmarks=(Benchmark("w", rounds=rounds(False, True, False)),))
    report = build_report([run], regions=())
    (entry,) = report.entries
    assert entry.rounds == 2
    assert any("1 of 3 rounds partial (trial 1: no figure for gpu:0)" in n.text for n in report.notices)


# ------------------------------------------------------------------------------------------ the run's GPUs only
def test_a_cpu_run_measures_no_gpu_and_says_which_it_left_out(test_subjects, tmp_path) -> None:
    """Three GPUs are visible (the fake NVML); a run on the CPU uses none of them, so none is added to its
    trials (their idle draw would pull every ratio towards 1), and the table says so."""
    fake = FakeNvml("nvml_synthetic.json")
    cfg = RunConfig(trials=2, warmup=1, idle_s=0, save=False, results_dir=str(tmp_path), stream=io.StringIO(),
                    sampler_options={"nvml_module": fake, "environ": {}})
    result = run_suites([Suite("fast", methods=[])], cfg)
    (bench,) = result.benchmarks
    assert all(not any(k.startswith("gpu") for k in r.domains) for r in bench.rounds)
    devices = result.environment.devices.to_dict()
    assert devices["gpus_measured"] == [] and devices["gpus_not_measured"] == ["gpu:0", "gpu:1", "gpu:2"]
    table = " ".join(format_table(run_view(result)).split())  # the footer wraps to the terminal
    assert ("GPUs measured: none (chosen by --device cpu); seen but not measured: gpu:0, gpu:1, gpu:2 "
            "(not used by this run)") in table
    assert fake.init_count == 0


def test_a_cuda_run_measures_its_own_gpu_through_cuda_visible_devices() -> None:
    from energybench.measuring.meter import Meter
    from energybench.run.devices import devices_record, sampler_options_for

    fake = FakeNvml("nvml_synthetic.json")
    options = sampler_options_for("cuda:0", {"nvml_module": fake, "environ": {"CUDA_VISIBLE_DEVICES": "2,0"},
                                             "samplers": ["nvml"]})
    meter = Meter(options=options)
    try:
        keys = [d.key for s in meter.samplers for d in s.domains()]
        assert keys == ["gpu:0"]  # this process's cuda:0 ...
        assert meter.samplers[0].domains()[0].details["physical_index"] == 2  # ... is physical GPU 2
        record = devices_record("cuda:0", options, meter.samplers, chosen_by="--device cuda:0")
    finally:
        meter.close()
    assert [g["key"] for g in record.gpus_measured] == ["gpu:0"]
    assert record.gpus_measured[0]["name"].startswith("NVIDIA A100-SXM4-80GB")
    assert record.gpus_not_measured == ("gpu:1",)  # the other visible one (physical 0)


def test_plain_cuda_means_the_gpu_of_the_processs_cuda_context(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from energybench.run.devices import parse_device, run_gpu_indices, sampler_options_for

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)  # no GPU here: the context's device, faked
    assert run_gpu_indices("cuda") == [1] and run_gpu_indices("cuda:3") == [3] and run_gpu_indices("cpu") == []
    assert sampler_options_for("cuda", {"gpu_indices": [0]})["gpu_indices"] == [0]  # --gpu-index wins
    for bad in ("gpu", "cuda:x", "cpu:0", "cuda:-1"):
        with pytest.raises(ConfigError, match="unknown device"):
            parse_device(bad)


def test_a_gpu_run_whose_gpu_cannot_be_measured_is_refused() -> None:
    from energybench.run.devices import devices_record

    with pytest.raises(ConfigError, match=r"--device cuda:0: the GPU cannot be measured here \(.*\); its energy"):
        devices_record("cuda:0", {"nvml_module": FakeNvml({"init_error": "NVML_ERROR_DRIVER_NOT_LOADED"})},
                       [], chosen_by="--device cuda:0")
