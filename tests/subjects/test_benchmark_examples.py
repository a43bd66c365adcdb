"""The pytest-style energy benchmarks in benchmarks/ run, save and gate as docs/ci.md shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "benchmarks" / "test_energy_examples.py"


def pytest_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-q", "-p", "no:cacheprovider", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )


def test_examples_save_then_gate_against_the_saved_baseline(tmp_path: Path) -> None:
    storage = tmp_path / "results"
    first = pytest_run("--energy-save", "main", "--energy-storage", str(storage), "--energy-region", "FRA",
                       cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "test_mlp_inference" in first.stdout and "estimated" in first.stdout
    assert (storage / "0001_main.json").exists()
    # same code, a generous threshold: the gate must pass and say what it compared
    second = pytest_run("--energy-save", "pr", "--energy-storage", str(storage), "--energy-compare", "main",
                        "--energy-compare-fail", "energy:+400%", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0001_main" in second.stdout and "energy:+400%" in second.stdout
    assert (storage / "0002_pr.json").exists()
