"""A command's or a benchmark's share of the CPU energy: with RAPL (scope says what it measures; the share is
a separate figure above the idle floor) and in ``energybench measure`` (no guest time twice, no double
discount in process scope, no idle energy charged, its own CO2e). Real subprocesses, real CLI, synthetic
powercap trees."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from energybench.measuring.meter import Meter
from energybench.render.run_table import format_table
from energybench.report import run_view
from energybench.run.runner import RunConfig, Suite, run_suites
from energybench.samplers import benchmark_options, detect_samplers
from energybench.subjects import api

KEY = "cpu:process-share"
CLI = [sys.executable, "-m", "energybench"]
SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass"


def measure(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"eb-measure-{os.getpid()}-{time.monotonic_ns()}.json"
    proc = subprocess.run([*CLI, "measure", "--json", str(out), *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})
    payload = json.loads(out.read_text()) if out.exists() else {}
    out.unlink(missing_ok=True)
    return proc, payload


# ------------------------------------------------------------------------------------------ RAPL and scope
def test_the_share_is_the_process_cpu_fraction_of_the_energy_above_the_floor() -> None:
    from energybench.samplers.rapl_share import ProcessShare

    t = [0.0]
    share = ProcessShare(["cpu:package-0"], {"cpu:package-0": 100.0}, 300.0, idle_w=10.0,
                         clock=lambda: t[0], process_cpu=lambda: 0.25 * t[0], machine_busy=lambda: 1.0 * t[0])
    assert share.advance({"cpu:package-0": 10.0}) == 0.0
    t[0] = 1.0
    assert share.advance({"cpu:package-0": 60.0}) == pytest.approx((50 - 10) * 0.25)  # 50 J, floor 10 J, 25 %
    t[0] = 2.0
    assert share.advance({"cpu:package-0": 10.0}) == pytest.approx(10 + 40 * 0.25)  # across a wrap of 100 J
    t[0] = 2.1
    assert share.advance({"cpu:package-0": 99.0}) == pytest.approx(20.0)  # 89 J in 0.1 s: impossible, skipped
    none = ProcessShare(["cpu:package-0"], {"cpu:package-0": None}, 300.0)
    none.advance({"cpu:package-0": 0.0})
    assert math.isnan(none.advance({"cpu:package-0": 5.0}))  # no idle floor: no figure



def test_a_counter_that_updates_late_does_not_raise_the_share_above_the_packages_energy() -> None:
    """A steady 40 W package whose counter lands in lumps (nothing one read, twice the next): each read's
    shortfall below the 10 W floor is made up by the next, so the share is the 30 W above the floor, never
    more (clamping each read at zero would give 40 W: 10 J kept from every lump, none taken back)."""
    from energybench.samplers.rapl_share import ProcessShare

    t = [0.0]
    share = ProcessShare(["cpu:package-0"], {"cpu:package-0": None}, 300.0, idle_w=10.0,
                         clock=lambda: t[0], process_cpu=lambda: t[0], machine_busy=lambda: t[0])
    counter = 0.0
    share.advance({"cpu:package-0": counter})
    for read in range(1, 11):
        t[0] = float(read)
        counter += 80.0 if read % 2 == 0 else 0.0  # 40 W on average, in lumps of two seconds
        joules = share.advance({"cpu:package-0": counter})
        if read % 2 == 0:  # the lump has landed: all the package drew so far is in the counter
            assert joules <= counter - 10.0 * t[0] + 1e-9
    assert joules == pytest.approx(30.0 * 10)


def test_process_scope_on_rapl_says_it_measures_the_machine_and_offers_the_share(powercap_tree) -> None:
    powercap_tree.add_package(0, 40.0, dram_w=5.0, max_power_w=125)
    samplers = detect_samplers(benchmark_options({}))  # benchmarks ask for process scope
    assert [s.name for s in samplers if s.name == "powercap"] == ["powercap"]
    with powercap_tree.running(), Meter(samplers, counter_interval=0.05) as meter, meter.window("w") as w:
        time.sleep(0.3)
    result = w.result
    assert result is not None
    share = next(d for d in result.domains if d.key == KEY)
    assert not share.counted and share.source == "estimated" and share.method == "rapl-cpu-time-share"
    assert math.isnan(share.energy_j) and KEY not in result.missing_domains  # uncounted: not a partial total
    assert any("cpu_scope=process does not narrow RAPL" in w and "no idle floor known" in w for w in result.warnings)
    assert result.energy_j == pytest.approx(45.0 * result.duration_s, rel=0.1)  # package + dram, machine-wide


def test_with_an_idle_floor_the_share_is_a_figure_below_the_packages_energy(powercap_tree) -> None:
    powercap_tree.add_package(0, 40.0, max_power_w=125)
    samplers = detect_samplers(benchmark_options({"rapl_idle_w": 10.0}))
    with powercap_tree.running(), Meter(samplers, counter_interval=0.05) as meter, meter.window("w") as w:
        t = time.process_time()
        while time.process_time() - t < 0.3:  # this process works: it has a share of the machine's busy time
            pass
    result = w.result
    assert result is not None
    pkg = next(d for d in result.domains if d.key == "cpu:package-0")
    share = next(d for d in result.domains if d.key == KEY)
    assert 0 < share.energy_j <= pkg.energy_j - 10.0 * result.duration_s + 0.5
    assert share.details["idle_floor_w"] == 10.0 and share.details["idle_floor_source"] == "option rapl_idle_w"


def test_energybench_run_measures_the_floor_and_shows_the_scope_note(powercap_tree, monkeypatch, tmp_path):
    monkeypatch.setattr(api, "BUILTIN_SUBJECTS", {"fast": "runner_subjects:FastSubject"})
    powercap_tree.add_package(0, 40.0, max_power_w=125)
    cfg = RunConfig(trials=2, warmup=1, idle_s=0.3, save=False, results_dir=str(tmp_path), stream=io.StringIO())
    with powercap_tree.running():
        run = run_suites([Suite("fast", methods=[])], cfg)
    (bench,) = run.benchmarks
    assert all(math.isfinite(r.domains[KEY]) and r.domains[KEY] >= 0 for r in bench.rounds)
    assert all(not r.partial for r in bench.rounds)
    table = format_table(run_view(run))
    assert "cpu_scope=process does not narrow RAPL" in table
    assert "no idle floor known" not in table  # the idle window gave it


# ------------------------------------------------------------------------------------------ energybench measure
def test_guest_time_is_not_counted_twice(tmp_path: Path) -> None:
    """Linux counts guest time inside user time: busy = user + nice + system + irq + softirq (not + guest)."""
    from energybench.samplers.cpu_time import CLOCK_TICKS, cpus_busy_seconds

    stat = tmp_path / "stat"
    stat.write_text("cpu  300 0 100 5000 0 0 0 0 200 0\ncpu0 300 0 100 5000 0 0 0 0 200 0\n")
    assert cpus_busy_seconds([0], stat) == pytest.approx(400 / CLOCK_TICKS)  # 600 with guest twice


def test_process_scope_share_is_not_discounted_twice() -> None:
    """In process scope the CPU model already counts only this process tree: its energy above the floor is
    the command's, (max_w - idle_w) x its CPU-seconds, not split again by the machine's busy time."""
    proc, payload = measure("--", sys.executable, "-c", SPIN.format(s=0.6), env={"ENERGYBENCH_CPU_SCOPE": "process"})
    assert proc.returncode == 0, proc.stderr
    tree = payload["process_tree"]
    cpu = next(d for d in payload["measurement"]["domains"] if d["key"] == "cpu:server-share")["details"]
    expected = (cpu["max_w_per_cpu"] - cpu["idle_w_per_cpu"]) * tree["cpu_s"]
    assert tree["cpu_s"] >= 0.55
    assert tree["cpu_energy_j"] == pytest.approx(expected, rel=0.1)  # energybench's own CPU time is in it too
    assert "process scope" in tree["basis"]


def test_rapl_share_needs_an_idle_floor_and_never_charges_idle_energy(powercap_tree) -> None:
    powercap_tree.add_package(0, 40.0, max_power_w=125)
    env = {"ENERGYBENCH_POWERCAP_ROOT": str(powercap_tree.root)}
    with powercap_tree.running():
        bare, bare_payload = measure("--", sys.executable, "-c", SPIN.format(s=0.3), env=env)
        idle, idle_payload = measure("--idle", "0.4", "--", sys.executable, "-c", SPIN.format(s=0.3), env=env)
    assert bare.returncode == 0 and idle.returncode == 0, bare.stderr + idle.stderr
    tree = bare_payload["process_tree"]
    assert tree["cpu_energy_j"] is None and "no RAPL idle floor" in tree["note"]
    said = " ".join(bare.stderr.split())  # the report wraps to the terminal
    assert "this command n/a (no RAPL idle floor: pass --idle SECONDS" in said
    # the package draws a constant 40 W: all of it is the idle floor, none of it the command's
    tree = idle_payload["process_tree"]
    assert tree["idle_floor_w"] == pytest.approx(40.0, rel=0.1)
    assert 0 <= tree["cpu_energy_j"] <= 0.1 * idle_payload["measurement"]["energy_j"]


def test_the_commands_share_has_its_own_co2e() -> None:
    proc, payload = measure("--region", "FRA", "--", sys.executable, "-c", SPIN.format(s=0.4))
    assert proc.returncode == 0, proc.stderr
    tree, m = payload["process_tree"], payload["measurement"]
    factor = m["carbon"]["co2e_g"] / m["energy_j"]
    assert tree["co2e_g"] == pytest.approx(tree["cpu_energy_j"] * factor)
    assert tree["co2e_g"] == pytest.approx(tree["cpu_energy_j"] / 3.6e6 * m["carbon"]["intensity_g_per_kwh"])
    assert "g CO2e (its share of the CPU energy above idle" in " ".join(proc.stderr.split())
