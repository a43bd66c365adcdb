"""`energybench measure` and `energybench sensors` end to end, in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energybench import units

CLI = [sys.executable, "-m", "energybench"]


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_measure_reports_estimate_and_passes_exit_code(tmp_path):
    out = tmp_path / "m.json"
    proc = run_cli(
        "measure", "--region", "FRA", "--json", str(out), "--",
        sys.executable, "-c", "import sys; sum(i*i for i in range(2*10**6)); print('child says hi'); sys.exit(3)",
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.strip() == "child says hi"  # the child's output is untouched
    assert "estimated" in proc.stderr and "cpu:server-share" in proc.stderr
    assert "FRA" in proc.stderr and "gCO2e/kWh" in proc.stderr
    assert all(len(line) <= 100 for line in proc.stderr.splitlines())
    payload = json.loads(out.read_text())
    assert payload["exit_code"] == 3
    m = payload["measurement"]
    assert m["source"] == "estimated"
    assert m["energy_j"] > 0
    assert m["carbon"]["region"] == "FRA"
    assert m["carbon"]["co2e_g"] == pytest.approx(m["energy_j"] / 3.6e6 * m["carbon"]["intensity_g_per_kwh"])
    assert payload["process_tree"]["cpu_s"] > 0
    # both figures are labelled, each with its CO2e at the same factor (the share in proportion to its joules)
    machine = next(ln for ln in proc.stderr.splitlines() if ln.startswith("  machine-wide"))
    share = next(ln for ln in proc.stderr.splitlines() if ln.startswith("  this command"))
    grams = m["carbon"]["co2e_g"] * payload["process_tree"]["cpu_energy_j"] / m["energy_j"]
    assert f"{units.joules(m['energy_j'])}, {units.grams(m['carbon']['co2e_g'])} CO2e (estimated" in machine
    assert f"{units.joules(payload['process_tree']['cpu_energy_j'])}, {units.grams(grams)} CO2e (its share" in share


def test_measure_reads_rapl_from_a_powercap_tree(powercap_tree, tmp_path):
    powercap_tree.add_package(0, 35.0, core_w=20.0, dram_w=4.0)
    out = tmp_path / "m.json"
    with powercap_tree.running():
        proc = run_cli(
            "measure", "--json", str(out), "--", sys.executable, "-c", "import time; time.sleep(0.6)",
            env={"ENERGYBENCH_POWERCAP_ROOT": str(powercap_tree.root)},
        )
    assert proc.returncode == 0, proc.stderr
    m = json.loads(out.read_text())["measurement"]
    assert m["source"] == "measured"
    by_key = {d["key"]: d for d in m["domains"]}
    assert by_key["cpu:package-0"]["method"] == "rapl-powercap"
    assert m["energy_j"] == pytest.approx(39.0 * m["duration_s"], rel=0.02)  # package + dram, core not added
    assert "measured" in proc.stderr and "estimated =" not in proc.stderr


def test_command_not_found_exits_127_with_one_line():
    proc = run_cli("measure", "--", "definitely-not-a-command-xyz")
    assert proc.returncode == 127
    assert proc.stderr.strip().splitlines()[-1] == (
        "energybench: command not found: definitely-not-a-command-xyz (check the name and PATH)"
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--region", "Atlantis"], "Atlantis"),
        (["--intensity", "lots"], "intensity"),
        (["--pue", "0.5"], "PUE"),
        (["--intensity-csv", "/nonexistent/series.csv"], "series.csv"),
    ],
)
def test_bad_input_is_one_clear_line(args, needle):
    proc = run_cli("measure", *args, "--", "true")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("energybench: error:")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--interval", "0"], "--interval"),
        (["--interval", "-1"], "--interval"),
        (["--interval", "soon"], "--interval"),
        (["--gpu-index", "abc"], "--gpu-index"),
        (["--tpu-watts", "nan"], "--tpu-watts"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--sampler", "nosuch"], "unknown sampler 'nosuch'"),
        (["--sampler", "tpu"], "--sampler tpu cannot read here"),
        (["--powercap-root", "/nonexistent/pc"], "--powercap-root /nonexistent/pc"),
    ],
)
def test_usage_errors_are_one_line(args, needle):
    proc = run_cli("measure", *args, "--", "true")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("energybench: error:"), proc.stderr


def test_unwritable_json_is_refused_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    proc = run_cli("measure", "--json", str(tmp_path), "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"energybench: error: cannot write the --json file to {tmp_path}: it is a directory; give a file name"
    ]
    assert not marker.exists()


def test_a_counter_lost_mid_run_is_an_error_not_zero_joules(powercap_tree, tmp_path):
    powercap_tree.add_package(0, 20.0)
    script = f"import os, time; time.sleep(0.2); os.rename({str(powercap_tree.root / 'intel-rapl:0')!r}, " \
             f"{str(tmp_path / 'gone')!r}); time.sleep(0.2)"
    proc = run_cli("measure", "--powercap-root", str(powercap_tree.root), "--region", "FRA", "--",
                   sys.executable, "-c", script)
    assert proc.returncode == 1, proc.stderr
    assert "machine-wide   n/a" in proc.stderr and "0 J" not in proc.stderr
    assert "failed mid-run" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("energybench: error: no energy figure")


def test_ctrl_c_is_forwarded_and_what_was_measured_is_kept(tmp_path):
    out = tmp_path / "m.json"
    marker = tmp_path / "child-got-sigint"
    child = (
        "import signal, sys, time\n"
        f"def h(*a): open({str(marker)!r}, 'w').close(); sys.exit(130)\n"
        "signal.signal(signal.SIGINT, h)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [*CLI, "measure", "--json", str(out), "--", sys.executable, "-c", child],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert marker.exists(), "the child never saw the Ctrl-C"
    assert "interrupted" in err
    payload = json.loads(out.read_text())
    assert payload["interrupted"] is True
    assert payload["measurement"]["duration_s"] > 0.3


def test_sensors_lists_every_sampler_with_reasons():
    proc = run_cli("sensors", "--json", env={"ENERGYBENCH_POWERCAP_ROOT": "/nonexistent/powercap"})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"powercap", "cpu-model", "nvml", "tpu"} <= set(rows)
    assert rows["powercap"]["available"] is False and "/nonexistent/powercap" in rows["powercap"]["reason"]
    assert rows["cpu-model"]["used"] is True and rows["cpu-model"]["source"] == "estimated"
    text = run_cli("sensors", env={"ENERGYBENCH_POWERCAP_ROOT": "/nonexistent/powercap"}).stdout
    assert "estimated" in text and "unavailable" in text


def test_sensors_prefers_rapl_over_the_estimate(powercap_tree):
    powercap_tree.add_package(0, 10.0)
    proc = run_cli("sensors", "--json", env={"ENERGYBENCH_POWERCAP_ROOT": str(powercap_tree.root)})
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["powercap"]["used"] is True and rows["powercap"]["source"] == "measured"
    assert rows["cpu-model"]["used"] is False


def test_python_dash_m_and_console_script_agree():
    exe = Path(sys.executable).with_name("energybench")
    assert exe.exists()
    a = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    b = run_cli("--help")
    assert a.returncode == b.returncode == 0
    assert "measure" in a.stdout and "sensors" in a.stdout


def test_import_stays_light():
    code = "import sys, energybench; energybench.Meter; print('torch' in sys.modules, 'pandas' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.split() == ["False", "False"], proc.stderr


def test_sensors_says_why_gpu_and_tpu_cannot_read_here():
    rows = {r["name"]: r for r in json.loads(run_cli("sensors", "--json").stdout)}
    assert rows["nvml"]["available"] is False and "NVML library not found" in rows["nvml"]["reason"]
    assert rows["tpu"]["available"] is False and "TPU" in rows["tpu"]["reason"]


def test_gpu_index_without_a_gpu_is_one_clear_line():
    proc = run_cli("measure", "--gpu-index", "3", "--", "true")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--gpu-index" in lines[0] and "NVML library not found" in lines[0]
