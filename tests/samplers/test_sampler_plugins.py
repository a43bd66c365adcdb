"""A third-party sampler installed with pip is found through the entry-point group and measured."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "support" / "sampler_plugin_pkg"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    build = tmp_path_factory.mktemp("sampler_plugin_src")
    shutil.copytree(SRC, build / "src")
    target = tmp_path_factory.mktemp("sampler_plugin_target")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), str(build / "src")],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return str(target)


def cli(plugin_path: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": plugin_path}
    return subprocess.run([sys.executable, "-m", "energybench", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_sensors_lists_the_plugin_and_the_broken_one_with_its_reason(plugin_path):
    rows = {r["name"]: r for r in json.loads(cli(plugin_path, "sensors", "--json").stdout)}
    assert rows["toy-board"]["available"] and rows["toy-board"]["used"]
    assert rows["toy-board"]["domains"] == ["board:rail-0"]
    assert rows["toy-broken"]["available"] is False
    assert "failed to load" in rows["toy-broken"]["reason"] and "missing_module" in rows["toy-broken"]["reason"]
    assert rows["cpu-model"]["used"]  # the board measures no CPU: the CPU estimate still runs


def test_measure_reports_the_plugins_domain(plugin_path, tmp_path):
    out = tmp_path / "m.json"
    proc = cli(plugin_path, "measure", "--json", str(out), "--", sys.executable, "-c", "import time; time.sleep(0.3)")
    assert proc.returncode == 0, proc.stderr
    domains = {d["key"]: d for d in json.loads(out.read_text())["measurement"]["domains"]}
    rail = domains["board:rail-0"]
    assert rail["method"] == "toy-constant-7w" and rail["sampler"] == "toy-board"
    duration = json.loads(out.read_text())["measurement"]["duration_s"]
    assert rail["energy_j"] == pytest.approx(7.0 * duration, rel=0.02)
