"""Options declared once: the same name, default, environment variable and meaning on the command line and in
pytest; command line > environment > [tool.energybench] > default; old spellings still work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from energybench.errors import ConfigError
from energybench.options import OPTIONS, Config, find_config, resolve

ROOT = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]


def test_precedence_command_line_then_environment_then_config_then_default():
    cfg = Config({"region": "DEU", "alpha": 0.02}, Path("pyproject.toml"))
    assert resolve("region", "FRA", config=cfg, environ={"ENERGYBENCH_REGION": "POL"}) == "FRA"
    assert resolve("region", None, config=cfg, environ={"ENERGYBENCH_REGION": "POL"}) == "POL"
    assert resolve("region", None, config=cfg, environ={}) == "DEU"
    assert resolve("region", None, config=Config({}), environ={}) is None
    assert resolve("alpha", None, config=cfg, environ={}) == 0.02
    assert resolve("alpha", None, config=Config({}), environ={}) == 0.01


def test_bad_values_name_where_they_came_from():
    with pytest.raises(ConfigError, match=r"\$ENERGYBENCH_PUE = '0.5': PUE '0.5' is below 1.0"):
        resolve("pue", None, config=Config({}), environ={"ENERGYBENCH_PUE": "0.5"})
    with pytest.raises(ConfigError, match=r"alpha in \[tool.energybench\] of pyproject.toml = 2"):
        resolve("alpha", None, config=Config({"alpha": 2}, Path("pyproject.toml")), environ={})
    with pytest.raises(ConfigError, match=r"--region = '': is empty"):
        resolve("region", "", config=Config({}), environ={})


def test_repeatable_options_take_comma_lists():
    assert resolve("fail_on", ["energy:+5%,power:+10%", "co2e:+1mg"], config=Config({}), environ={}) == (
        "energy:+5%", "power:+10%", "co2e:+1mg")
    assert resolve("fail_on", None, config=Config({"fail_on": ["energy:+9%"]}), environ={}) == ("energy:+9%",)


def test_config_file_is_found_upwards_and_unknown_keys_are_errors(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.energybench]\nregion = "FRA"\nresults-dir = "x"\n')
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) results-dir in \[tool.energybench\]"):
        find_config(tmp_path / "a" / "b")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.energybench]\nregion = "FRA"\n')
    found = find_config(tmp_path / "a")
    assert found.values == {"region": "FRA"} and found.path == tmp_path / "pyproject.toml"


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "energybench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_cli_reads_region_from_pyproject_and_the_command_line_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.energybench]\nregion = "FRA"\npue = 1.5\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYBENCH_")}
    from_file = subprocess.run([sys.executable, "-m", "energybench", "measure", "--", "true"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120, env=env)
    assert from_file.returncode == 0, from_file.stderr
    assert "CO2e basis     FRA " in from_file.stderr and "PUE 1.5" in from_file.stderr
    from_env = subprocess.run([sys.executable, "-m", "energybench", "measure", "--", "true"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, env={**env, "ENERGYBENCH_REGION": "POL"})
    assert "CO2e basis     POL " in from_env.stderr
    given = subprocess.run([sys.executable, "-m", "energybench", "measure", "--region", "DEU", "--", "true"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={**env, "ENERGYBENCH_REGION": "POL"})
    assert "CO2e basis     DEU " in given.stderr


def test_old_spellings_are_aliases(tmp_path):
    res = _cli("report", "latest", "--results-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert res.returncode == 2 and f"results directory {tmp_path / 'none'} does not exist" in res.stderr


def test_pytest_takes_every_shared_option_with_its_prefix(pytester):
    from energybench.pytest_plugin import SHARED_OPTIONS

    res = pytester.runpytest("--help")
    text = res.stdout.str()
    for name in SHARED_OPTIONS:
        opt = OPTIONS[name]
        assert opt.pytest_flag in text, opt.pytest_flag
        for alias in opt.pytest_aliases:
            assert alias in text
    assert "--energy-storage" in text and "--energy-compare-fail" in text  # today's spellings still work


def test_pytest_fail_on_takes_one_expression_so_a_path_after_it_stays_a_path(pytester):
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    res = pytester.runpytest("--energy-fail-on", "energy:+5%", "test_a.py", "-q")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*1 passed*"])


def test_configuration_page_lists_every_shared_option():
    """The page's table is the declaration's (fix: python scripts/options_table.py --write)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from options_table import replace_table

    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert replace_table(page) == page, "docs/configuration.md is stale: run python scripts/options_table.py --write"
    for opt in OPTIONS.values():
        for flag in (opt.cli_flag, opt.pytest_flag, *opt.cli_aliases, *opt.pytest_aliases):
            assert f"`{flag}`" in page, flag
        if opt.env:
            assert f"`{opt.env}`" in page, opt.env


def test_quality_budget_reads_percentages_and_refuses_anything_else():
    import math

    from energybench.errors import ConfigError

    assert resolve("quality_budget", "1%") == 0.01 and resolve("quality_budget", "2.5") == 0.025
    assert resolve("quality_budget", "0") == 0 and math.isinf(resolve("quality_budget", "any"))
    assert resolve("quality_budget", None, config=Config({}), environ={}) == 0.01  # the default: 1%
    for bad in ("lots", "-1%"):
        with pytest.raises(ConfigError, match="must be a percentage >= 0 .* or 'any' for no budget"):
            resolve("quality_budget", bad)
