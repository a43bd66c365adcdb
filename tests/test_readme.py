"""The README's Python examples really run (each in its own interpreter, from a scratch directory)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import make_run

from energybench.storage import save_run

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
# run elsewhere for real: the torchrun example by tests/test_distributed_runs.py, pytest files by pytester
ELSEWHERE = ("torchrun", "def test_")


def test_readme_has_examples():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
    code = BLOCKS[index]
    if any(marker in code for marker in ELSEWHERE):
        pytest.skip("covered by its own multi-process / pytester test")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    save_run(make_run("0001_quick"), tmp_path / "results", "quick")  # for the examples that load a saved run
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, f"README block {index} failed:\n{code}\n{proc.stderr[-2000:]}"
