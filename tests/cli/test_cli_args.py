"""Arguments as the manual writes them: several gates after one ``--fail-on`` (docs/ci.md's CI recipe), a run
swallowed by it said plainly, and a ``--results`` directory that does not exist named as such."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import make_run

from energybench.record.storage import save_run


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYBENCH_")}
    return subprocess.run([sys.executable, "-m", "energybench", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**env, "COLUMNS": "100"})


@pytest.fixture
def results(tmp_path: Path) -> Path:
    d = tmp_path / "results"
    save_run(make_run("0001_main", seed=1), d, "main")
    save_run(make_run("0002_pr", seed=2), d, "pr")
    return d


def test_several_gates_after_one_fail_on(results: Path, tmp_path: Path) -> None:
    """docs/ci.md: ``--fail-on "energy:+5%" "energy_per_item:+5%"`` was "unrecognized arguments" (exit 2)."""
    md = tmp_path / "comparison.md"
    proc = cli("compare", "main", "latest", "--results", str(results), "--fail-on", "energy:+5%",
               "energy_per_item:+5%", "--markdown", str(md))
    assert proc.returncode != 2 and "unrecognized arguments" not in proc.stderr, proc.stderr  # a verdict
    assert "energy:+5%" in proc.stdout and "energy_per_item:+5%" in proc.stdout and md.is_file()
    repeated = cli("compare", "main", "latest", "--results", str(results), "--fail-on", "energy:+5%",
                   "--fail-on", "energy_per_item:+5%", "--markdown", str(tmp_path / "r.md"))
    assert repeated.returncode == proc.returncode and repeated.stdout == proc.stdout  # the same two gates


def test_a_run_after_the_gates_is_one_line_saying_where_it_goes(results: Path) -> None:
    proc = cli("compare", "--results", str(results), "--fail-on", "energy:+5%", "main", "latest")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "'main' is not a gate" in proc.stderr and "before --fail-on" in proc.stderr
    before = cli("report", "0001_main", "0002_pr", "--results", str(results), "--fail-on", "energy:+5%", "power:+9%")
    assert before.returncode == 0 and "power:+9%" in before.stdout, before.stderr  # the report exits 0 (a summary)


def test_pytest_keeps_one_gate_per_flag(tmp_path: Path) -> None:
    """A test path after ``--energy-fail-on X`` stays a test path: pytest's options take one value each."""
    (tmp_path / "test_tiny.py").write_text("def test_sum(energy):\n    energy(sum, range(1000))\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           "--energy-fail-on", "energy:+50%", "test_tiny.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("command", [["compare", "main", "latest"], ["report", "latest"], ["carbon", "latest"]])
def test_a_results_directory_that_does_not_exist_is_named(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    proc = cli(*command, "--results", str(missing))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"results directory {missing} does not exist" in proc.stderr and "--results DIR" in proc.stderr
    assert "holds 0 run(s)" not in proc.stderr
