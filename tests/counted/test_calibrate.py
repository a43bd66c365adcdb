"""Calibration: real counts of the kernels, a fake RAPL tree whose energy is a known linear function of them,
and a least-squares fit that must recover the per-event energies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from counted_hardware import LinearEnergyPowercap, SyncedPowercapSampler, VirtualClock

from energybench.counted.calibrate import calibrate, count_kernels, run_calls
from energybench.counted.errors import CountedError
from energybench.counted.fit import Sample, fit_energies
from energybench.counted.kernels import KERNELS
from energybench.counted.profile import derive, load_profile, save_profile
from energybench.counted.report import format_calibration
from energybench.counted.valgrind import CacheGeometry

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None,
                                    reason="valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")
#: The fake hardware's truth: joules per event (a different machine than the built-in table's on purpose).
TRUE = {"instructions": 1.3e-10, "ll_hits": 2.5e-9, "dram_lines": 2.2e-8}
CLI = [sys.executable, "-m", "energybench"]


@pytest.fixture(scope="module")
def kernel_counts():
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)")
    return count_kernels(KERNELS, CacheGeometry())


def truth_j(counts):
    events = derive(counts)
    return sum(TRUE[e] * events[e] for e in TRUE)


@needs_valgrind
def test_the_fit_recovers_the_hardwares_per_event_energies(tmp_path, kernel_counts):
    clock = VirtualClock()
    tree = LinearEnergyPowercap(tmp_path / "powercap", idle_w=6.0, clock=clock)  # a floor the fit must see past

    def hardware(kernel, fn, calls):  # what RAPL would add for this work on the fake machine (1 ms per call)
        run_calls(kernel, fn, calls)
        tree.charge(truth_j(kernel_counts[kernel.name]) * calls, 1e-3 * calls)

    result = calibrate(SyncedPowercapSampler(tree), name="fake-box", counts=kernel_counts, idle_s=0.5,
                       min_seconds=0.03, repeats=2, run=hardware, clock=clock, sleep=clock.advance)
    for event, joules in TRUE.items():
        assert result.profile.energies_j[event] == pytest.approx(joules, rel=0.05), event
    assert result.idle_w == pytest.approx(6.0, rel=0.01)
    assert result.fit.rms_relative < 0.01 and result.fit.degrees_of_freedom == len(KERNELS) - 3
    assert "data_accesses" not in result.profile.energies_j  # folded into instructions, and the source says so
    assert "folded into instructions" in result.profile.source
    path = save_profile(result.profile, tmp_path / "fitted.json")
    assert load_profile(path).energies_j == result.profile.energies_j
    assert load_profile(path).fit["rms_relative_residual"] == pytest.approx(result.fit.rms_relative)
    text = format_calibration(result, str(path))
    assert "fit error: RMS relative residual" in text and "dram-stride" in text and str(path) in text


def test_kernels_that_move_two_events_together_cannot_separate_them():
    samples = [Sample(f"k{i}", {"instructions": 1e6 * i, "ll_hits": 1e3 * i, "dram_lines": 10.0 * (i % 2)},
                      1e-3 * i) for i in range(1, 5)]
    with pytest.raises(CountedError, match="cannot tell instructions and ll_hits apart"):
        fit_energies(samples, ["instructions", "ll_hits", "dram_lines"])
    with pytest.raises(CountedError, match="2 kernel"):
        fit_energies(samples[:2], ["instructions", "ll_hits", "dram_lines"])
    with pytest.raises(CountedError, match="no energy measured above the idle floor for k1"):
        fit_energies([Sample("k1", {"instructions": 1.0}, 0.0)], ["instructions"])


def test_calibrate_without_rapl_says_why(tmp_path):
    proc = subprocess.run([*CLI, "calibrate", "--powercap-root", str(tmp_path / "none"), "--out",
                           str(tmp_path / "p.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("energybench: error: cannot calibrate without a RAPL")
    assert not (tmp_path / "p.json").exists()
    bad = subprocess.run([*CLI, "calibrate", "--events", "flops", "--out", str(tmp_path / "p.json")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown event(s) flops" in bad.stderr


@needs_valgrind
def test_calibrate_end_to_end_on_a_powercap_tree(powercap_tree, tmp_path):
    powercap_tree.add_package(0, 40.0)  # the counter runs at 40 W whatever runs: a fit with a large residual
    out = tmp_path / "box.json"
    with powercap_tree.running():
        proc = subprocess.run([*CLI, "calibrate", "--powercap-root", str(powercap_tree.root), "--out", str(out),
                               "--name", "tree-box", "--idle", "0", "--min-seconds", "0.05", "--repeats", "2"],
                              capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "fit error: RMS relative residual" in proc.stdout and "tree-box" in proc.stdout
    profile = json.loads(out.read_text())
    assert profile["name"] == "tree-box" and set(profile["energies_j"]) == {"instructions", "ll_hits", "dram_lines"}
    assert profile["fit"]["rms_relative_residual"] >= 0 and len(profile["fit"]["kernels"]) == len(KERNELS)
