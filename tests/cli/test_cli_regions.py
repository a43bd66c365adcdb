"""``energybench regions`` end to end, in real subprocesses (and once in-process for the table format)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from energybench.carbon import list_regions, lookup_region
from energybench.cli import main

ROOT = Path(__file__).resolve().parents[2]


def energybench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "energybench", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_regions_fra_shows_factor_year_and_source():
    out = energybench("regions", "fra")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ALIAS", "KIND", "gCO2e/kWh", "YEAR", "PLACE", "SOURCE"]
    fra = lookup_region("FRA")
    first = lines[2].split()  # after the header and its rule
    assert first[:4] == ["FRA", "country", f"{fra.intensity_g_per_kwh:.1f}", str(fra.year)]
    footnote = first[-1]  # e.g. "[1]"
    joined = " ".join(line.strip() for line in lines)  # long sources wrap to the terminal, indented
    assert f"{footnote} {fra.source}" in joined
    assert f"{len(list_regions('fra'))} regions; use a NAME" in joined
    assert max(len(line) for line in lines) <= 100


def test_regions_json_is_the_api_listing():
    out = energybench("regions", "us-state", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows == [r.to_dict() for r in list_regions("us-state")]
    assert {r["kind"] for r in rows} == {"us-state"}
    assert all(set(r) >= {"name", "intensity_g_per_kwh", "year", "source"} for r in rows)


def test_no_query_lists_everything():
    out = energybench("regions", "--json")
    assert out.returncode == 0
    assert len(json.loads(out.stdout)) == len(list_regions())


def test_no_match_is_one_line_error_without_traceback():
    out = energybench("regions", "atlantis")
    assert out.returncode == 2
    assert out.stdout == ""
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("energybench: error: no region matches 'atlantis'")
    assert "Traceback" not in out.stderr


def test_regions_command_loads_neither_pandas_nor_codecarbon():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "energybench", "regions", "fra"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert "energybench" in imported
    assert not imported & {"pandas", "codecarbon", "torch"}


def test_table_in_process_uses_footnotes_for_each_source(capsys):
    assert main(["regions", "cloud"]) == 0
    out = capsys.readouterr().out
    assert "gcp:europe-west1" in out
    assert out.count("impact.csv") == 1  # one footnote, not one per row
