"""The runner end to end: real torch, real meter, real subprocesses, a real pip-installed plugin package."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from runner_subjects import TINY, write_suite

from energybench.errors import ConfigError
from energybench.record import Benchmark, BetweenRuns, Round, Run, storage
from energybench.render.run_table import format_table
from energybench.report import run_view
from energybench.run.runner import RunConfig, Suite, load_suites, run_suites, select
from energybench.subjects.api import PluginError
from energybench.verdicts.baseline import compare_to_baseline, vs_baseline

PLUGIN_SRC = Path(__file__).parents[1] / "support" / "plugin_pkg"


def test_compare_to_baseline_is_honest() -> None:
    """Paired trials: the verdict follows the per-trial ratios, not two piles of rounds."""
    from energybench.render.cells import verdict

    same = compare_to_baseline([1.0, 1.1, 0.9, 1.05], [1.02, 0.95, 1.08, 1.0])
    assert verdict(same) == "no significant saving" and same.ci_low < 1 < same.ci_high
    half = compare_to_baseline([1.0, 1.02, 0.98, 1.01], [0.5, 0.52, 0.49, 0.51])
    assert verdict(half).startswith("saves") and half.ci_high < 1
    assert half.ratio == pytest.approx(0.505, abs=0.01)
    worse = compare_to_baseline([1.0, 1.02, 0.98], [2.0, 2.1, 1.9])
    assert verdict(worse).startswith("costs")
    # drift that moves both sides of each trial alike cancels: a steady 10% saving under 30% drift is found
    drift = [1.0, 1.3, 0.8, 1.2, 0.9, 1.1]
    steady = compare_to_baseline(drift, [d * 0.9 for d in drift])
    assert steady.outcome == "saves" and steady.ratio == pytest.approx(0.9)
    # two trials are too few to test: said, not guessed
    two = compare_to_baseline([1.0, 1.0], [0.5, 0.5])
    assert two.outcome == "untestable" and "cannot be tested: 2 trial pair(s)" in verdict(two)


def test_run_interleaves_saves_and_reports(tmp_path: Path) -> None:
    suites = [Suite("lm", methods=["prune-structured-0.5", "int8-dynamic", "distill-hard-s3"],
                    options={"lm": TINY})]
    err = io.StringIO()
    cfg = RunConfig(trials=2, quick=True, results_dir=str(tmp_path / "res"), cache_dir=str(tmp_path / "c"),
                    idle_s=0.2, threads=1, stream=err)
    run = run_suites(suites, cfg)
    saved = storage.load_run(tmp_path / "res" / f"{run.run_id}.json")
    assert saved.benchmarks == run.benchmarks
    assert saved.environment.settings.mha_fastpath is False
    assert saved.environment.settings.threads["torch"] == 1
    assert saved.environment.settings.threads["pinned"] == 1
    assert saved.idle.duration_s >= 0.2
    benches = {(b.name, b.method): b for b in saved.benchmarks}
    no_backward = benches[("lm/train-step", "int8-dynamic")]  # no backward pass: the cell says so, with no rounds
    assert no_backward.status == "not-applicable" and "no backward pass" in no_backward.status_reason
    assert not no_backward.rounds and not no_backward.ok
    assert any("int8-dynamic" in n and "not applicable" in n for n in saved.notes)
    assert all(len(b.rounds) == 2 for b in saved.benchmarks if b.ok)
    gen = benches[("lm/inference-generate", "int8-dynamic")]
    assert gen.family == "lm" and gen.workload == "inference-generate" and gen.method_name == "int8-dynamic"
    assert vs_baseline(saved, gen) is not None and gen.size.bytes > 0
    assert gen.quality.metric == "perplexity" and gen.quality.change is not None
    assert gen.rounds[0].energy_above_idle_j is not None
    distilled = benches[("lm/inference-generate", "distill-hard-s3")]
    assert distilled.one_off.extra["steps"] == 3 and distilled.one_off.energy_j >= 0
    assert distilled.params["steps"] == 3 and distilled.method_name == "distill-hard"
    assert saved.subjects["lm"]["corpus"]["sha256"]
    table = format_table(run_view(saved))
    assert "vs baseline" in table and "distillation training cost" in table
    assert "not-applicable: lm/train-step [int8-dynamic]: " in table
    assert max(len(line) for line in table.splitlines()) <= 100  # not a terminal here: 100 columns
    assert "ratio to baseline" in format_table(run_view(saved), wide=True)
    assert "CO2e: n/a" in table and "no region given" in table  # no --region: said, not a world average
    assert "trial 2/2 done" in err.getvalue()
    # the verdicts' rules are recorded: no saved runs of this machine yet, so the default spread
    assert saved.environment.min_change == 0.05
    assert saved.environment.between_runs == BetweenRuns(0.05, "default")
    assert "between-run spread 5% (default" in table and "beyond 5.0% (--min-change)" in table


def test_a_run_takes_its_between_run_spread_from_the_option_or_the_machines_saved_runs(tmp_path: Path) -> None:
    """The wiring: the option wins; without it, 3 saved runs of this name on this machine give the spread, fewer
    the default. (The saved runs are written here, so a loaded CI machine flagging trials cannot change it.)"""
    import math
    import random

    from energybench.measuring.machine import machine_info
    from energybench.record import Benchmark, Round, Run

    suites = [Suite("lm", methods=["bf16"], options={"lm": {**TINY}})]

    def run(results: Path, **kw: Any) -> Any:
        cfg = RunConfig(trials=3, quick=True, phase="inference", results_dir=str(results), idle_s=0,
                        cache_dir=str(tmp_path / "c"), stream=io.StringIO(), layers=False, **kw)
        return run_suites(suites, cfg)

    given = run(tmp_path / "a", between_run_sd=0.02, min_change=0.1)
    assert given.environment.between_runs == BetweenRuns(0.02, "option")
    assert given.environment.min_change == 0.1
    assert run(tmp_path / "a").environment.between_runs.source == "default"  # 1 saved run: not enough

    rng, here = random.Random(3), machine_info()
    for _ in range(3):  # three earlier runs of this machine, six rows each, ratios moving ~4% between runs
        benches = [Benchmark(name="w", method="baseline", rounds=tuple(
            Round(index=t, energy_j=1.0 + 0.01 * t, duration_s=1.0) for t in range(6)))]
        for m in range(6):
            level = (0.5 + 0.1 * m) * math.exp(rng.gauss(0, 0.04))
            benches.append(Benchmark(name="w", method=f"m{m}", rounds=tuple(
                Round(index=t, energy_j=level * (1.0 + 0.01 * t) * math.exp(rng.gauss(0, 0.01)), duration_s=1.0)
                for t in range(6))))
        storage.save_run(Run(name="compression", created="", machine=here, benchmarks=tuple(benches)),
                         tmp_path / "b")
    fourth = run(tmp_path / "b")
    assert fourth.environment.between_runs.source == "3 saved runs"
    assert 0.0 < fourth.environment.between_runs.sd < 0.15
    bench = next(b for b in fourth.benchmarks if b.method == "bf16")
    assert vs_baseline(fourth, bench).between.source == "3 saved runs"


def test_interleaved_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import energybench.run.trials as run_trials

    order: list[str] = []
    real = run_trials._run_once

    def spy(e, cfg, meter=None, trial=0, **kwargs):  # type: ignore[no-untyped-def]
        if meter is not None:
            order.append(e.bench.method)
        return real(e, cfg, meter=meter, trial=trial, **kwargs)

    monkeypatch.setattr(run_trials, "_run_once", spy)
    cfg = RunConfig(trials=2, quick=True, phase="inference", results_dir=str(tmp_path), save=False, idle_s=0,
                    cache_dir=str(tmp_path / "c"), subjects=None, stream=io.StringIO())
    run_suites([Suite("lm", methods=["bf16"], options={"lm": {**TINY}})], cfg)
    # 2 inference workloads x (baseline, bf16) = 4 windows per trial; trial 1 repeats trial 0's order
    assert len(order) == 8 and order[:4] == order[4:]
    assert order[:4] == ["baseline", "baseline", "bf16", "bf16"]


def test_the_run_file_is_rewritten_after_every_trial_not_after_every_window(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewriting a large run after each window cost ~30 s of the quick suite: inside a trial it is rewritten at
    most every SAVE_EVERY_S, always at a trial's end, and an interrupt still saves every finished window."""
    import energybench.run.state as run_state
    import energybench.run.trials as run_trials

    saved_rounds: list[int] = []
    real_save = run_state.RunSaver.save

    def counting_save(self, state):  # type: ignore[no-untyped-def]
        saved_rounds.append(state.rounds)
        return real_save(self, state)

    monkeypatch.setattr(run_state.RunSaver, "save", counting_save)

    def run(trials: int, **cfg_kw: object) -> Run:
        saved_rounds.clear()
        cfg = RunConfig(trials=trials, quick=True, phase="inference", results_dir=str(tmp_path / "res"), idle_s=0,
                        cache_dir=str(tmp_path / "c"), threads=1, layers=False, stream=io.StringIO(), **cfg_kw)
        return run_suites([Suite("lm", methods=["bf16"], options={"lm": {**TINY}})], cfg)

    monkeypatch.setattr(run_trials, "SAVE_EVERY_S", 1e9)
    run(3)
    # 4 windows per trial (2 workloads x baseline, bf16): one save before the trials, one per trial, the final one
    assert saved_rounds == [0, 4, 8, 12, 12]
    monkeypatch.setattr(run_trials, "SAVE_EVERY_S", 0.0)
    run(2)
    assert saved_rounds == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 8]  # every window, as before

    # an interrupt in the middle of a trial still saves every finished window
    monkeypatch.setattr(run_trials, "SAVE_EVERY_S", 1e9)
    real_once = run_trials._run_once
    calls = {"n": 0}

    def interrupted(e, cfg, meter=None, trial=0, **kwargs):  # type: ignore[no-untyped-def]
        if meter is not None:
            calls["n"] += 1
            if calls["n"] == 7:
                raise KeyboardInterrupt
        return real_once(e, cfg, meter=meter, trial=trial, **kwargs)

    monkeypatch.setattr(run_trials, "_run_once", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(3)
    assert saved_rounds[-1] == 6  # trial 1's four windows and two of trial 2's
    newest = max((tmp_path / "res").glob("*.json"))
    assert sum(len(b.rounds) for b in storage.load_run(newest).benchmarks) == 6


def test_select_and_load(tmp_path: Path) -> None:
    suites = load_suites(write_suite(tmp_path / "b", ["bf16", "int8-dynamic"]))
    assert [s.subject for s in suites] == ["lm", "toy"]  # bench_other.py (no SUITES) was not executed
    only = select(suites[:1], ["lm/bf16"])
    assert only[0].methods == ["bf16"]
    everywhere = select(suites[:1], ["int8-dynamic"])
    assert everywhere[0].methods == ["int8-dynamic"]
    with pytest.raises(ConfigError, match="unknown subject"):
        select(suites, ["nosuchmodel/bf16"])
    with pytest.raises(ConfigError, match="no SUITES"):
        load_suites(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    return d


# ---------------------------------------------------------------------------------------------------------
# Real subprocesses: the CLI, bad input, and an external plugin package installed with pip


def cli(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "energybench", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    target = tmp_path_factory.mktemp("plugin_target")
    build = tmp_path_factory.mktemp("plugin_build")
    import shutil

    shutil.copytree(PLUGIN_SRC, build / "src")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), str(build / "src")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return str(target)


def test_plugin_is_listed_and_runs(plugin_path: str, tmp_path: Path) -> None:
    env = {"PYTHONPATH": plugin_path, "ENERGYBENCH_CACHE": str(tmp_path / "cache")}
    listed = cli(["subjects"], env)
    assert listed.returncode == 0, listed.stderr
    assert "toy" in listed.stdout and "[plugin eb_toy_plugin:ToySubject]" in listed.stdout
    assert "toy-scale" in listed.stdout
    assert "toy-broken" in listed.stdout and "failed to load" in listed.stdout
    bench = write_suite(tmp_path / "b", ["bf16"])
    res = cli(["run", str(bench), "--subjects", "toy", "--trials", "2", "--idle", "0.2", "--results",
               str(tmp_path / "res")], env)
    assert res.returncode == 0, res.stderr
    assert "toy/inference" in res.stdout and "toy-scale-0.5" in res.stdout
    run = storage.load_run(next((tmp_path / "res").glob("*.json")))
    assert {b.method for b in run.benchmarks} == {"baseline", "toy-scale-0.5"}


def test_plugin_that_raises_keeps_finished_trials(plugin_path: str, tmp_path: Path) -> None:
    bench = tmp_path / "b"
    bench.mkdir()
    (bench / "s.py").write_text(
        "from energybench import Suite\n"
        "SUITES = [Suite('toy', methods=['toy-scale-0.5'], options={'toy': {'fail_at_setup': 4}})]\n"
    )
    env = {"PYTHONPATH": plugin_path}
    res = cli(["run", str(bench), "--trials", "4", "--idle", "0", "--results", str(tmp_path / "res")], env)
    assert res.returncode == 3
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("energybench: error")]
    assert lines == [lines[0]] and "toy plugin exploded on purpose" in lines[0]
    assert "Traceback" not in res.stderr
    run = storage.load_run(next((tmp_path / "res").glob("*.json")))
    # setup 1 is the warm-up, 2 the calibration (skipped when a loaded machine made the warm-up run last the
    # window), then one per trial: the compressed model raises in its second (or third) trial; the trials it
    # finished are kept, and the baseline still runs all four
    cells = {b.method: b for b in run.benchmarks}
    assert cells["toy-scale-0.5"].status == "failed" and len(cells["toy-scale-0.5"].rounds) in (1, 2)
    assert cells["baseline"].ok and len(cells["baseline"].rounds) == 4
    boom = cli(["run", str(bench), "--subjects", "toy/toy-boom", "--idle", "0", "--no-save"], env)
    assert boom.returncode == 3 and "boom from the toy plugin" in boom.stderr and "Traceback" not in boom.stderr


def test_a_failing_cell_is_its_status_and_the_run_goes_on(plugin_path: str, tmp_path: Path) -> None:
    """The toy subject does not cast its inputs for bf16 (a real dtype error in its quality check), and toy-boom
    raises in apply: both cells are recorded as failed with the error's first line, every other cell is
    measured for all trials and saved, and the exit status still says a plugin failed."""
    bench = tmp_path / "b"
    bench.mkdir()
    (bench / "s.py").write_text(
        "from energybench import Suite\n"
        "SUITES = [Suite('toy', methods=['bf16', 'toy-scale-0.5', 'toy-boom'])]\n"
    )
    res = cli(["run", str(bench), "--trials", "3", "--idle", "0", "--results", str(tmp_path / "res")],
              {"PYTHONPATH": plugin_path})
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("energybench: error")]
    assert len(errors) == 1 and "2 cell(s) failed" in errors[0] and "measured and saved" in errors[0]
    run = storage.load_run(next((tmp_path / "res").glob("*.json")))
    cells = {b.method: b for b in run.benchmarks}
    assert set(cells) == {"baseline", "bf16", "toy-scale-0.5", "toy-boom"}
    for method in ("baseline", "toy-scale-0.5"):
        assert cells[method].ok and len(cells[method].rounds) == 3
    bf16 = cells["bf16"]
    assert bf16.status == "failed" and not bf16.rounds and bf16.name == "toy/inference"
    assert bf16.status_reason.startswith("quality of 'toy'/bf16 raised RuntimeError:")
    assert "dtype" in bf16.status_reason and "\n" not in bf16.status_reason
    boom = cells["toy-boom"]
    assert boom.status == "failed" and "ValueError: boom from the toy plugin" in boom.status_reason
    # the table shows every cell with its status, and the saving of the cell that worked is judged as usual
    assert "failed (below)" in res.stdout and "failed: toy/inference [bf16]: quality of 'toy'/bf16" in res.stdout
    assert vs_baseline(run, cells["toy-scale-0.5"]) is not None
    # a failure after some trials keeps them; the other cells still run every trial
    (bench / "s.py").write_text(
        "from energybench import Suite\n"
        "SUITES = [Suite('toy', methods=['toy-scale-0.5'], options={'toy': {'fail_at_setup': 4}}),\n"
        f"          Suite('lm', methods=['bf16'], options={{'lm': {TINY!r}}})]\n"
    )
    res = cli(["run", str(bench), "--trials", "3", "--idle", "0", "--phase", "inference", "--results",
               str(tmp_path / "res2"), "--cache-dir", str(tmp_path / "c")], {"PYTHONPATH": plugin_path})
    assert res.returncode == 3, res.stderr
    run = storage.load_run(next((tmp_path / "res2").glob("*.json")))
    toy = {b.method: b for b in run.benchmarks if b.family == "toy"}
    kept = len(toy["toy-scale-0.5"].rounds)  # 1, or 2 when the warm-up run was slow enough to skip calibration
    assert toy["toy-scale-0.5"].status == "failed" and kept in (1, 2)
    assert f"(in trial {kept + 1} of 3)" in toy["toy-scale-0.5"].status_reason
    assert all(b.ok and len(b.rounds) == 3 for b in run.benchmarks if b.family == "lm")


def test_schema1_files_still_load_with_every_cell_ok() -> None:
    paths = sorted((Path(__file__).parents[1] / "support" / "data" / "schema1").glob("*.json"))
    assert len(paths) >= 3
    for path in paths:
        assert all(b.ok and b.status_reason is None for b in storage.load_run(path).benchmarks)


def test_status_round_trips_and_stays_out_of_ok_cells() -> None:
    ok = Benchmark(name="t/x", rounds=(Round(index=0, energy_j=1.0, duration_s=1.0),))
    failed = Benchmark(name="t/x", method="bf16", status="failed", status_reason="quality raised RuntimeError: x")
    run = Run(name="r", created="2026-12-02", benchmarks=(ok, failed))
    assert "status" not in ok.to_dict()
    back = Run.from_json(run.to_json())
    assert back.benchmarks == run.benchmarks and back.benchmarks[1].status_reason == "quality raised RuntimeError: x"


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--subjects", "nosuch"], "unknown subject or method 'nosuch'"),
     (["--subjects", "lm/quantum"], "unknown compression method 'quantum'"),
     (["--subjects", "lm/prune-l1-1.5"], "strictly between 0 and 1"),
     (["--subjects", "lm/distill-soft-w1.5"], "student larger than its teacher"),
     (["--device", "cuda"], "no CUDA GPU"),
     (["--trials", "0"], "argument --trials: must be a whole number from 1")],
)
def test_bad_input_is_one_line(args: list[str], words: str, tmp_path: Path) -> None:
    import torch

    if args == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("a GPU is present here")
    bench = write_suite(tmp_path / "b", ["bf16"])
    res = cli(["run", str(bench), "--idle", "0", "--results", str(tmp_path / "res"), *args])
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert words in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "res").exists()  # refused before any work


def test_plugin_error_type_is_energybench_error() -> None:
    assert issubclass(PluginError, Exception) and PluginError("x").exit_code == 3


def test_json_output_is_a_run_record(tmp_path: Path) -> None:
    bench = write_suite(tmp_path / "b", ["int8-dynamic"])
    res = cli(["run", str(bench), "--subjects", "lm", "--phase", "inference", "--trials", "1", "--idle", "0",
               "--no-save", "--json", "--cache-dir", str(tmp_path / "c")])
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert {b["phase"] for b in record["benchmarks"]} == {"inference"}
    assert {b["method"] for b in record["benchmarks"]} == {"baseline", "int8-dynamic"}
    assert Run.from_dict(record).benchmarks[0].family == "lm"


def test_fractional_items_give_energy_per_item_not_per_round() -> None:
    """MiniLM counts thousands of sentences (0.128 per round in quick mode): the stored per-item figure must
    divide by that, exactly as load_results does, not clamp it to one item."""
    rounds = tuple(Round(index=i, energy_j=10.0, duration_s=1.0, items=0.128, source="estimated")
                   for i in range(3))
    bench = Benchmark(name="m/embed", phase="inference", rounds=rounds)
    assert bench.energy_per_item.median == pytest.approx(10.0 / 0.128)
    assert bench.stats_dict()["energy_per_item_j"]["median"] == pytest.approx(10.0 / 0.128)


def test_rows_a_changing_load_left_short_of_pairs_get_top_up_trials(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A neighbour that changed between the sides of every pair of the first five trials: after the design's
    six trials each row has one pair that stood, too few for a verdict. Top-up trials (the rows and their
    baselines alone) run until each has three, and the rows are judged at the last look on all of them. The
    machine's load is the one stand-in: the probe's reading is scripted per window."""
    import energybench.run.trials as run_trials

    class ScriptedProbe:
        current = ("baseline", 0)

        def start(self) -> None:
            pass

        def stop(self) -> tuple[dict[str, float], tuple[str, ...]]:
            method, trial = self.current
            busy = method != "baseline" and trial < 5
            return {"cpus": 2.0, "other_cpus": 1.5 if busy else 0.0, "window_s": 1.0}, ()

    real = run_trials._run_once

    def scripted(e, cfg, meter=None, trial=0, probe=None):  # type: ignore[no-untyped-def]
        if probe is not None:
            probe.current = (e.bench.method, trial)
        return real(e, cfg, meter=meter, trial=trial, probe=probe)

    monkeypatch.setattr(run_trials, "Probe", ScriptedProbe)
    monkeypatch.setattr(run_trials, "_run_once", scripted)
    stream = io.StringIO()
    cfg = RunConfig(max_trials=6, quick=True, phase="inference", results_dir=str(tmp_path / "res"), idle_s=0,
                    cache_dir=str(tmp_path / "c"), threads=1, layers=False, stream=stream)
    run = run_suites([Suite("lm", methods=["bf16"], options={"lm": {**TINY}})], cfg)
    assert run.environment.settings.looks == (3, 6)
    rows = [b for b in run.benchmarks if b.method == "bf16"]
    assert rows and all(len(b.rounds) == 8 and b.stopped.after == 8 and b.stopped.reason == "last look"
                        for b in rows), [(len(b.rounds), b.stopped) for b in rows]
    assert "top-up trial 8 done: 2 row(s) had fewer than 3 pairs" in stream.getvalue()
    for bench in rows:
        vs = vs_baseline(run, bench)
        assert vs is not None and vs.n == 3 and vs.outcome != "untestable", vs
