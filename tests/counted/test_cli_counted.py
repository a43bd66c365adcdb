"""`energybench measure --meter counted` and the counted row of `energybench sensors`, end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "energybench"]
needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None,
                                    reason="valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")
NO_VALGRIND = {"ENERGYBENCH_VALGRIND": "/nonexistent/valgrind"}


def run_cli(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[-1]


@needs_valgrind
def test_measure_counted_reports_modeled_joules_and_keeps_the_counts(tmp_path):
    out = tmp_path / "m.json"
    proc = run_cli("measure", "--meter", "counted", "--region", "FRA", "--json", str(out), "--", sys.executable,
                   "-c", "import sys; print(sorted(range(3000), key=lambda x: -x)[0]); sys.exit(3)")
    assert proc.returncode == 3, proc.stderr  # the command's own exit code, as with /usr/bin/time
    assert proc.stdout.strip() == "2999"  # its output untouched
    assert "modeled" in proc.stderr and "profile horowitz-45nm" in proc.stderr and "under valgrind" in proc.stderr
    assert "FRA" in proc.stderr and all(len(line) <= 100 for line in proc.stderr.splitlines())
    payload = json.loads(out.read_text())
    counted = payload["counted"]
    assert payload["meter"] == "counted" and payload["exit_code"] == 3 and payload["error"] is None
    assert counted["source"] == "modeled" and counted["counts"]["Ir"] > 10_000_000  # interpreter start-up counts
    assert counted["energy_j"] == pytest.approx(sum(counted["energy_by_event_j"].values()))
    assert payload["measurement"]["domains"][0]["source"] == "modeled"
    carbon = payload["carbon"]
    assert carbon["co2e_g"] == pytest.approx(counted["energy_j"] / 3.6e6 * carbon["intensity_g_per_kwh"])


@needs_valgrind
def test_measure_counted_refuses_a_command_that_forks_but_keeps_what_it_counted(tmp_path):
    out = tmp_path / "m.json"
    proc = run_cli("measure", "--meter", "counted", "--json", str(out), "--", sys.executable, "-c",
                   "import subprocess; subprocess.run(['/bin/true'])")
    assert proc.returncode == 2
    line = last_line(proc)
    assert line.startswith("energybench: error: ") and "started 1 other process(es)" in line
    assert "measured meter" in line and f"kept in {out}" in line
    payload = json.loads(out.read_text())
    assert payload["counted"]["counts"]["Ir"] > 0 and "other process" in payload["error"]


def test_measure_counted_without_valgrind_is_one_line_and_exit_2():
    proc = run_cli("measure", "--meter", "counted", "--", sys.executable, "-c", "pass", env=NO_VALGRIND)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("energybench: error: valgrind not found: install valgrind (Debian/Ubuntu: sudo "
                                   "apt-get install valgrind) or set ENERGYBENCH_VALGRIND")


def test_a_malformed_profile_fails_before_the_command_runs(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "energybench.counted-profile", "version": 1, "name": "x", "energies_j": [1]}')
    marker = tmp_path / "ran"
    proc = run_cli("measure", "--meter", "counted", "--profile", str(bad), "--", sys.executable, "-c",
                   f"open({str(marker)!r}, 'w')")
    assert proc.returncode == 2 and not marker.exists()
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(bad) in proc.stderr and "energybench calibrate --out FILE" in proc.stderr


def test_sensors_lists_the_counted_meter_and_why_it_cannot_run():
    proc = run_cli("sensors", env=NO_VALGRIND)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("counted"))
    assert "modeled" in line and "unavailable: valgrind not found" in line
    rows = json.loads(run_cli("sensors", "--json", env=NO_VALGRIND).stdout)
    counted = next(r for r in rows if r["name"] == "counted")
    assert counted["available"] is False and counted["source"] == "modeled"


@needs_valgrind
def test_sensors_says_the_counted_meter_can_run_here():
    proc = run_cli("sensors")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("counted"))
    assert "available with --meter counted: valgrind 3." in line


def test_a_profile_without_the_counted_meter_is_refused():
    proc = run_cli("measure", "--profile", "p.json", "--", sys.executable, "-c", "pass")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "energybench: error: --profile prices counted events: use it with --meter counted"
