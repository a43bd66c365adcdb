"""``energybench ab REF -- python -m pytest ...`` runs the session as ``-- pytest ...`` does (it was refused)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from energybench.record import storage
from energybench.run.ab import pytest_arguments

TEST_FILE = "def test_sum(energy):\n    energy.pedantic(sum, (range(20000),), rounds=4, warmup_rounds=0)\n"


@pytest.mark.parametrize(("command", "args"), [
    (["pytest", "b/", "-k", "x"], ["b/", "-k", "x"]),
    (["py.test", "b/"], ["b/"]),
    (["/usr/local/bin/pytest"], []),
    (["python", "-m", "pytest", "b/", "-q"], ["b/", "-q"]),
    (["python3.11", "-m", "pytest", "b/"], ["b/"]),
    (["/opt/venv/bin/python3", "-m", "pytest"], []),
    ([sys.executable, "-m", "pytest", "b/"], ["b/"]),
    (["python", "-m", "unittest", "b/"], None),
    (["python", "b/test_x.py"], None),
    (["make", "test"], None),
    ([], None),
])
def test_pytest_arguments_of_each_way_to_start_pytest(command: list[str], args: list[str] | None) -> None:
    assert pytest_arguments(command) == args


def test_ab_session_with_python_m_pytest(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "test_ab.py").write_text(TEST_FILE)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)
    res = subprocess.run(
        [sys.executable, "-m", "energybench", "ab", "main", "--processes", "1", "--rounds", "4", "--results",
         str(tmp_path / "res"), "--", "python", "-m", "pytest", "test_ab.py", "-q", "-p", "no:randomly"],
        cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode in (0, 1), res.stdout[-2000:] + res.stderr[-2000:]  # a verdict, not "refused" (2)
    runs = [storage.load_run(p) for p in storage.list_runs(tmp_path / "res")]
    assert sorted(r.name for r in runs) == ["ab-base", "ab-new"]
    assert all(len(r.benchmarks[0].rounds) >= 4 for r in runs)
