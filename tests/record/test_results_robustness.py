"""Nothing measured is lost to bad input at the end of a session; typos are errors, not 'no baseline'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TEST_FILE = '''
def test_work(energy):
    energy.extra_info["obj"] = object()        # not JSON: must not cost the run its figures
    energy.pedantic(sum, args=(range(20000),), rounds=3, iterations=5)
'''


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_work.py").write_text(TEST_FILE)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_work.py", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_unserialisable_extra_info_is_saved_as_its_repr(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--energy-save", "x", "--energy-storage=res")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = json.loads((tmp_path / "res" / "0001_x.json").read_text())
    assert "<object object at" in json.dumps(saved)


def test_a_mistyped_baseline_is_bad_input_and_the_run_is_still_saved(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--energy-save", "x", "--energy-storage=res", "--energy-compare=0009_typo",
                      "--energy-compare-fail", "energy:+5%")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage-error code, not a regression
    assert "no run '0009_typo'" in proc.stdout
    assert (tmp_path / "res" / "0001_x.json").exists()
    cli = subprocess.run([sys.executable, "-m", "energybench", "compare", "0009_typo", "latest", "--results",
                          str(tmp_path / "res")], capture_output=True, text=True)
    assert cli.returncode == 2 and cli.stderr.strip().startswith("energybench: error: no run '0009_typo'")
    named = subprocess.run([sys.executable, "-m", "energybench", "compare", "mian", "latest", "--results",
                            str(tmp_path / "res")], capture_output=True, text=True)
    assert named.returncode == 2, named.stdout + named.stderr  # a name no saved run has, beside runs named x
    assert named.stderr.count("\n") == 1 and "no baseline 'mian'" in named.stderr and "named x" in named.stderr
    allowed = subprocess.run([sys.executable, "-m", "energybench", "compare", "mian", "latest", "--results",
                              str(tmp_path / "res"), "--allow-missing-baseline"], capture_output=True, text=True)
    assert allowed.returncode == 0 and "no run 'mian'" in allowed.stdout


def test_a_missing_baseline_passes_as_a_first_run_only_in_an_empty_store(tmp_path: Path) -> None:
    """The first CI run: nothing saved yet, so nothing to compare with; the note says why it passes."""
    proc = run_pytest(tmp_path, "--energy-storage=res", "--energy-compare=main", "--energy-compare-fail",
                      "energy:+5%")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passing as a first run" in proc.stdout and "the store is empty" in proc.stdout
    proc = run_pytest(tmp_path, "--energy-save", "x", "--energy-storage=res")
    typo = run_pytest(tmp_path, "--energy-storage=res", "--energy-compare=main", "--energy-compare-fail",
                      "energy:+5%")
    assert typo.returncode == 4 and "no baseline 'main'" in typo.stdout and "--energy-allow-missing-baseline" in (
        typo.stdout)
