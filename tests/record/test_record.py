"""The typed run record: one module reads and writes run files; schema-1 files keep loading, comparing and
reporting; unknown data survives a round trip; derived figures come from the rounds."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from energybench.record import VERSION, Benchmark, Round, Run, storage
from energybench.record.frames import load_results
from energybench.report import build_report
from energybench.verdicts.baseline import break_even, run_verdicts, vs_baseline
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.gate import parse_gates

ROOT = Path(__file__).resolve().parents[2]
# saved by the code of commit 70affc0, before the record existed
SCHEMA1 = ROOT / "tests" / "support" / "data" / "schema1"


def test_schema1_suite_run_is_migrated():
    run = storage.load_run(SCHEMA1 / "0001_v1suite.json")
    assert run.kind == "suite" and run.run_id == "0001_v1suite" and run.carbon.region == "FRA"
    methods = {b.method for b in run.benchmarks}
    assert methods == {"baseline", "prune-l1-0.5", "int8-dynamic-perchannel", "distill-soft-t2-w0.5-d0.5-s20"}
    perchannel = next(b for b in run.benchmarks if b.method == "int8-dynamic-perchannel")
    assert perchannel.method_name == "int8-dynamic" and perchannel.family == "lm"
    assert perchannel.params["granularity"] == "per-channel"
    distilled = next(b for b in run.benchmarks if b.method.startswith("distill") and b.phase == "inference")
    assert distilled.one_off is not None and distilled.one_off.energy_j > 0
    # break-even is shown only for a significant saving, and then it is a positive number of items
    be = break_even(run, distilled)
    assert (be is None) == (run_verdicts(run)[distilled.key].outcome != "saves")
    assert be is None or be.items > 0
    old = json.loads((SCHEMA1 / "0001_v1suite.json").read_text())
    n_rounds = {(b["name"], b["subject"]): len(b["rounds"]) for b in old["benchmarks"]}
    for b in run.benchmarks:  # every round survives, and every method row gets today's verdict
        assert len(b.rounds) == n_rounds[(b.name, b.method)]
        if not b.is_baseline:
            assert vs_baseline(run, b).n == len(b.rounds)


def test_schema1_pytest_run_is_migrated():
    run = storage.load_run(SCHEMA1 / "0002_v1pytest.json")
    assert run.kind == "pytest"
    (bench,) = run.benchmarks
    assert bench.method == "baseline" and bench.family == "test_v1.py" and bench.workload == "test_sum"
    assert bench.extra["iterations"] >= 1 and len(bench.rounds) == 5


def test_schema1_directory_loads_compares_and_reports(tmp_path):
    df = load_results(SCHEMA1)
    assert df.groupby(["benchmark", "method"]).size().sum() == len(df) > 0
    assert not df["method"].isna().any() and not df["family"].isna().any()
    cmp = compare_runs(storage.load_run(SCHEMA1 / "0002_v1pytest.json"),
                       storage.load_run(SCHEMA1 / "0003_v1pytest2.json"), parse_gates(["energy:+400%"]))
    assert cmp.exit_code == 0 and len(cmp.rows) == 1
    assert build_report([storage.load_run(SCHEMA1 / "0001_v1suite.json")]).entries
    cli = subprocess.run(
        [sys.executable, "-m", "energybench", "report", str(SCHEMA1 / "0001_v1suite.json"), "--html",
         str(tmp_path / "r.html")], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "lm/inference-generate" in cli.stdout and (tmp_path / "r.html").stat().st_size > 10_000
    compare = subprocess.run(
        [sys.executable, "-m", "energybench", "compare", "2", "3", "--results", str(SCHEMA1), "--fail-on",
         "energy:+400%"], capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0 and "energy gates passed" in compare.stdout, compare.stdout + compare.stderr


def test_round_trip_keeps_every_figure_and_unknown_data(tmp_path):
    run = storage.load_run(SCHEMA1 / "0001_v1suite.json")
    data = run.to_dict()
    data["plugin_block"] = {"kept": True}
    data["benchmarks"][0]["from_a_plugin"] = [1, 2]
    data["benchmarks"][0]["rounds"][0]["gpu_clock_mhz"] = 1410
    again = Run.from_json(json.dumps(data))
    assert again.extra == {"plugin_block": {"kept": True}}
    assert again.benchmarks[0].unknown == {"from_a_plugin": [1, 2]}
    assert again.benchmarks[0].rounds[0].extra == {"gpu_clock_mhz": 1410}
    assert Run.from_json(again.to_json()) == again
    saved = storage.load_run(storage.save_run(run, tmp_path, "copy"))
    assert saved.benchmarks == run.benchmarks and json.loads(Path(saved.path).read_text())["version"] == VERSION


def test_derived_figures_are_properties_of_the_rounds():
    rounds = tuple(Round(index=i, energy_j=e, duration_s=0.5, items=4) for i, e in enumerate((2.0, 4.0, math.nan)))
    b = Benchmark(name="x", rounds=rounds)
    assert b.values("energy_per_item_j") == [0.5, 1.0]  # NaN rounds have no figure
    assert b.energy_per_item.median == 0.75 and b.energy_per_item.n == 2
    assert rounds[0].power_w == 4.0 and rounds[0].throughput_items_per_s == 8.0
    assert b.stats_dict()["energy_j"]["median"] == 3.0


def test_stored_stats_are_ignored_on_load():
    """A file's summaries are for other tools; energybench recomputes them, so they can never disagree."""
    data = storage.load_run(SCHEMA1 / "0002_v1pytest.json").to_dict()
    data["benchmarks"][0]["stats"]["energy_j"]["median"] = 1e9
    run = Run.from_dict(data)
    assert run.benchmarks[0].summary("energy_j").median < 1


def test_bad_fields_are_named():
    data = storage.load_run(SCHEMA1 / "0002_v1pytest.json").to_dict()
    data["benchmarks"][0]["rounds"][2]["duration_s"] = "slow"
    with pytest.raises(Exception, match=r"benchmarks\[0\]\.rounds\[2\]\.duration_s: expected a number"):
        Run.from_dict(data, where="f.json")
    data = replace(Run.from_dict(storage.load_run(SCHEMA1 / "0002_v1pytest.json").to_dict())).to_dict()
    data["machine"] = []
    with pytest.raises(Exception, match=r"machine: expected an object, got a list"):
        Run.from_dict(data, where="f.json")


# Modules that call json for something else than a run file, and what they use it for.
JSON_ALLOWED = {
    "energybench/record/run.py": "the run file itself",
    "energybench/measurement.py": "Measurement.to_json (one window, `energybench measure --json`)",
    "energybench/cli/measure.py": "`energybench measure --json`: one measurement and its command",
    "energybench/cli/regions.py": "`energybench regions --json`",
    "energybench/cli/subjects.py": "`energybench subjects --json`",
    "energybench/cli/sensors.py": "`energybench sensors --json`",
    "energybench/carbon/regions.py": "codecarbon's data files",
    "energybench/subjects/cache.py": "a trained baseline's cache key (the LM's, the CNN's)",
    "energybench/pytest_plugin/__init__.py": "checking that pytest params are JSON-safe",
    "energybench/carbon/electricitymaps.py": "Electricity Maps' API responses",
    "energybench/cli/carbon.py": "`energybench carbon --json` (SCI and counterfactuals, not a run)",
    "energybench/cli/export.py": "`energybench export --list --json`",
    "energybench/exporters/github_benchmark.py": "github-action-benchmark's custom JSON (not a run)",
    "energybench/exporters/bencher.py": "Bencher Metric Format JSON (not a run)",
    "energybench/counted/profile.py": "per-event energy profiles (their own small file format)",
    "energybench/counted/child.py": "the counted child's report to its parent (counts, not a run)",
    "energybench/counted/runner.py": "reading the counted child's report",
    "energybench/counted/command.py": "`energybench measure --meter counted --json`",
    "energybench/cli/calibrate.py": "`energybench calibrate --json` (a fit, not a run)",
    "energybench/render/comparison_json.py": "`energybench compare --json` (a comparison, not a run)",
    "energybench/outputs.py": "recognising a results file at an output path (reads, never writes one)",
}


def test_only_the_record_module_serialises_runs():
    """A run file is written and parsed in one place: any other module that calls json.dump(s)/load(s) must be
    on the list above, with its reason (and none of them may touch a run)."""
    offenders = []
    for path in sorted((ROOT / "energybench").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        uses = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                and n.value.id == "json" and n.attr in ("dump", "dumps", "load", "loads")}
        if uses and rel not in JSON_ALLOWED and not rel.startswith("energybench/distributed"):
            offenders.append(f"{rel}: json.{', json.'.join(sorted(uses))}")
        source = path.read_text(encoding="utf-8")
        if not rel.startswith("energybench/record/") and '"benchmarks":' in source:
            offenders.append(f"{rel}: builds a run dict")
    assert not offenders, offenders
