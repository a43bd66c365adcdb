"""``energybench report`` as a user runs it: a real subprocess over saved run files."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import make_bench, make_run

from energybench.record.storage import save_run


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "energybench", "report", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    d = tmp_path / "results"
    save_run(make_run(), d, "main")
    save_run(make_run(seed=1), d, "pr")
    return d


def _one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("energybench: error:") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_writes_html_markdown_csv(results: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    proc = _cli("latest", "--results-dir", str(results), "--html", str(out / "r.html"), "--markdown",
                str(out / "r.md"), "--csv", str(out / "r.csv"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "int8-dynamic" in proc.stdout and "0002_pr" in proc.stdout
    html = (out / "r.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 5
    assert "| lm/inference-generate | inference | int8-dynamic" in (out / "r.md").read_text(encoding="utf-8")
    rows = list(csv.DictReader((out / "r.csv").open(encoding="utf-8")))
    assert len(rows) == 25 and {r["method"] for r in rows} >= {"baseline", "distilled"}
    assert {"run", "benchmark", "family", "method", "phase", "round", "energy_per_item_j", "source"} <= set(rows[0])
    assert not list(out.glob(".*.tmp")), "temp files must not be left behind"


def test_two_runs_show_gate_verdicts(results: Path, tmp_path: Path):
    proc = _cli(str(results), "--fail-on", "energy:+5%", "--markdown", str(tmp_path / "c.md"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "gates:" in proc.stdout and "PASS lm/inference-generate [int8-dynamic] energy:+5%" in proc.stdout
    assert "**Gates**" in (tmp_path / "c.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["nowhere/0001_x.json"], "does not exist"),
        (["0042_missing"], "no run '0042_missing'"),
        (["EMPTY"], "no results files"),
        (["RESULTS", "--baseline", "int4"], "baseline 'int4'"),
        (["RESULTS", "--html", "no/such/dir/r.html"], "directory no/such/dir does not exist"),
        (["RESULTS", "--markdown", "RESULTS"], "it is a directory"),
        (["RESULTS", "--regions", "FRA,Atlantis"], "Atlantis"),
    ],
)
def test_bad_input_is_one_line_exit_2(results: Path, tmp_path: Path, args: list[str], needle: str):
    (tmp_path / "EMPTY").mkdir()
    args = [str(results) if a == "RESULTS" else a for a in args]
    _one_line_error(_cli(*args, "--results-dir", str(results), cwd=tmp_path), needle)


def test_no_common_benchmark(tmp_path: Path):
    a = save_run(make_run(benchmarks=[make_bench("x", "baseline", 1, None)]), tmp_path / "r", "a")
    b = save_run(make_run(benchmarks=[make_bench("y", "baseline", 1, None)]), tmp_path / "r", "b")
    _one_line_error(_cli(str(a), str(b), cwd=tmp_path), "share no benchmark")


def test_unwritable_output_leaves_nothing(results: Path, tmp_path: Path):
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    proc = _cli(str(results), "--html", str(target / "r.html"), cwd=tmp_path)
    _one_line_error(proc, "file-not-dir is a file, not a directory")
    assert proc.stdout == "", "nothing should be computed before the output paths are known to work"
