"""Results files: atomic numbered saves (also under concurrency), validation, resolution and the DataFrame."""

import json
import multiprocessing
import os

import pytest

from energybench.errors import ResultsError
from energybench.record import SCHEMA, Benchmark, Machine, Round, Run, storage
from energybench.record.frames import load_results


def make_run(energies=(1.0, 1.1, 0.9), name="bench", items=2, method="baseline", params=None):
    rounds = tuple(
        Round(index=i, energy_j=e, duration_s=0.5, items=items, co2e_g=e * 1e-4, source="estimated",
              domains={"cpu:package": e * 0.9, "cpu:dram": e * 0.1})
        for i, e in enumerate(energies)
    )
    family, _, workload = name.partition("/")
    bench = Benchmark(name=name, method=method, method_name=method.rsplit("-", 1)[0], family=family,
                      workload=workload or name, phase="inference", params=params or {}, rounds=rounds)
    return Run(name="run", created="2026-01-01T00:00:00+00:00", machine=Machine(cpu_model="X"), benchmarks=(bench,))


def test_save_numbers_runs_and_round_trips(tmp_path):
    p1 = storage.save_run(make_run(), tmp_path, "main")
    p2 = storage.save_run(make_run(), tmp_path, "feature/x y")
    assert p1.name == "0001_main.json" and p2.name == "0002_feature-x-y.json"
    loaded = storage.load_run(p2)
    assert loaded.run_id == "0002_feature-x-y" and json.loads(p2.read_text())["schema"] == SCHEMA
    assert loaded.benchmarks == make_run().benchmarks  # every figure survives the round trip
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temp or claim files left


def _save_many(args):
    directory, worker = args
    return [storage.save_run(make_run(), directory, f"w{worker}").name for _ in range(5)]


def test_concurrent_saves_never_clobber(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        names = [n for chunk in pool.map(_save_many, [(str(tmp_path), w) for w in range(4)]) for n in chunk]
    assert len(names) == 20
    numbers = sorted(int(n[:4]) for n in names)
    assert numbers == list(range(1, 21))  # every run got its own number
    for f in storage.list_runs(tmp_path):
        storage.load_run(f)  # and every file is whole


def test_resolve_by_id_counter_name_and_latest(tmp_path):
    storage.save_run(make_run(), tmp_path, "main")
    storage.save_run(make_run(), tmp_path, "pr")
    assert storage.resolve_run("latest", tmp_path).name == "0002_pr.json"
    assert storage.resolve_run("latest-1", tmp_path).name == "0001_main.json"
    assert storage.resolve_run("1", tmp_path).name == "0001_main.json"
    assert storage.resolve_run("0002_pr", tmp_path).name == "0002_pr.json"
    assert storage.resolve_run("main", tmp_path).name == "0001_main.json"
    with pytest.raises(ResultsError, match="no run 'nope'"):
        storage.resolve_run("nope", tmp_path)


@pytest.mark.parametrize(
    "content,match",
    [
        ("{", "corrupt results file"),
        (json.dumps({"schema": "energybench/run", "version": 99, "benchmarks": []}), "version 99 is not supported"),
        (json.dumps({"schema": "other"}), "not an energybench results file"),
        (json.dumps({"schema": "energybench/run", "version": 1, "benchmarks": [{"name": "a"}]}),
         r"benchmarks\[0\]\.rounds: missing"),
        (json.dumps({"schema": "energybench/run", "version": 2, "benchmarks": [
            {"name": "a", "rounds": [{"energy_j": "1", "duration_s": 1}]}]}),
         r"benchmarks\[0\]\.rounds\[0\]\.energy_j: expected a number, got a string"),
        (json.dumps({"schema": "energybench/run", "version": 2, "benchmarks": [
            {"name": "a", "rounds": [{"energy_j": -3.0, "duration_s": 1}]}]}),
         r"energy_j: must be >= 0, got -3"),
        ('{"schema": "energybench/run", "version": 2, "benchmarks": [], "x": ' + "[" * 5000 + "]" * 5000 + "}",
         "nested"),
    ],
)
def test_loader_refuses_bad_files_with_one_line(tmp_path, content, match):
    f = tmp_path / "0001_x.json"
    f.write_text(content)
    with pytest.raises(ResultsError, match=match) as exc:
        storage.load_run(f)
    assert "\n" not in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        storage.load_run(tmp_path / "nope.json")


def test_load_results_one_row_per_round(tmp_path):
    storage.save_run(make_run(), tmp_path, "a")
    storage.save_run(make_run((2.0, 2.2), name="other", method="pruned-0.5"), tmp_path, "b")
    df = load_results(tmp_path)
    for col in ("run", "benchmark", "family", "workload", "method", "method_name", "phase", "round", "energy_j",
                "duration_s", "items", "energy_per_item_j", "co2e_g", "source"):
        assert col in df.columns
    assert len(df) == 5
    assert set(df["run"]) == {"0001_a", "0002_b"}
    assert df.loc[df.run == "0001_a", "energy_per_item_j"].tolist() == pytest.approx([0.5, 0.55, 0.45])
    assert df["domain:cpu:dram"].iloc[0] == pytest.approx(0.1)
    assert len(load_results(storage.list_runs(tmp_path)[0])) == 3


def test_load_results_empty_dir_says_so(tmp_path):
    with pytest.raises(ResultsError, match="no results files"):
        load_results(tmp_path)


def test_groupby_benchmark_and_method_keeps_every_row(tmp_path):
    """Baseline rows have method 'baseline' (not NaN), so a groupby never drops them; parameters and the
    family have their own columns, and both int8 variants share a method_name."""
    storage.save_run(make_run(name="lm/gen"), tmp_path, "a")
    storage.save_run(make_run(name="lm/gen", method="layer-drop-0.5", params={"fraction": 0.5}), tmp_path, "b")
    storage.save_run(make_run(name="lm/gen", method="int8-dynamic-perchannel", params={"granularity": "per-channel"}),
                     tmp_path, "c")
    df = load_results(tmp_path)
    assert df.groupby(["benchmark", "method"]).size().sum() == len(df) == 9
    assert set(df["method"]) == {"baseline", "layer-drop-0.5", "int8-dynamic-perchannel"}
    assert set(df["family"]) == {"lm"} and set(df["workload"]) == {"gen"}
    assert df.loc[df.method == "layer-drop-0.5", "param:fraction"].tolist() == [0.5] * 3
    assert df.loc[df.method == "baseline", "param:fraction"].isna().all()
