"""energybench run's trial windows: long enough for the slowest energy counter, and partial trials marked,
shown and left out. The GPU is the fake NVML (an A100 with a 0.1 s counter) next to the real CPU model;
the runner, meter, torch workload and table are real."""

from __future__ import annotations

import io
import math
import time

import pytest
from fake_nvml import FakeNvml

from energybench.record import Benchmark, Round, Run
from energybench.render.run_table import format_table
from energybench.runner import RunConfig, Suite, run_suites
from energybench.samplers import cpu_model
from energybench.samplers import nvml as nv
from energybench.subjects import api


@pytest.fixture
def test_subjects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "BUILTIN_SUBJECTS", {"fast": "runner_subjects:FastSubject",
                                                   "fresh": "runner_subjects:FreshSubject"})


def samplers() -> list:
    origin = time.monotonic() - 5.0  # trace time 5 s on: the synthetic A100's ~285 W load
    fake = FakeNvml("nvml_synthetic.json", clock=lambda: time.monotonic() - origin)
    gpu = nv.FACTORY.create({"nvml_module": fake, "environ": {}, "clock": fake.clock, "gpu_indices": [0]})
    return [*cpu_model.create({"cpu_scope": "process"}), *gpu]


def run(subject: str, tmp_path) -> Run:  # noqa: ANN001
    cfg = RunConfig(trials=3, warmup=1, idle_s=0, samplers=samplers(), save=False, results_dir=str(tmp_path),
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
    result = run("fresh", tmp_path)
    (bench,) = result.benchmarks
    assert all(r.partial and r.missing == ("gpu:0",) for r in bench.rounds)
    assert all(math.isnan(r.domains["gpu:0"]) for r in bench.rounds)
    assert bench.values("energy_per_item_j") == [] and bench.summary("energy_j").n == 0
    table = format_table(result)
    row = next(line for line in table.splitlines() if line.startswith("fresh/infer"))
    assert " - " in row  # no median from partial trials
    assert "3 of 3 rounds partial (trial 0, 1, 2: no figure for gpu:0): left out of medians, ratios and gates" \
        in table
    assert "shorter than the counter's update period (0.1 s)" in table  # the trials' own warning is shown
    assert "cannot be repeated inside a window" in table  # the run's note says why
    assert "partial trial(s) in them: a lower bound" in table  # the CO2e line's joules miss the GPU


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
