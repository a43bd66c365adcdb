"""No absurd figure is shown, and nothing is written that cannot be read (issue 25, classes 2 and 7).

A sampler plugin's impossible counter is n/a with its reason in ``energybench run``'s table and its file, which
reads back; a figure no writer of energybench writes (a negative domain) is refused where it is read, naming the
field; one such file in a results directory costs neither ``report latest`` nor ``history`` the other runs; a
benchmark written twice is counted once; the SCI charges the hardware for the whole time the run held it.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import bad_samplers
import pytest
from faults import env_with, install_plugin, write_suite
from report_fixtures import make_bench, make_run

from energybench.errors import ResultsError
from energybench.exporters.hf_card import co2_eq_emissions
from energybench.record import Embodied, Run, storage
from energybench.record.frames import load_results
from energybench.record.sci_figures import run_sci
from energybench.render.run_table import carbon_line
from energybench.report import build_report

#: a figure printed with a prefix no benchmark on one machine reaches: mega- and beyond, joules or watts
HUGE = re.compile(r"\d (?:[MGTPE]|e\+\d+ )[JW]\b|e\+\d+ [JW]\b")


def _figures(text: str) -> str:
    """The output without its warnings (which quote the impossible reading they explain, as the reason)."""
    out, in_warning = [], False
    for line in text.splitlines():
        in_warning = line.startswith("warning:") or (in_warning and line.startswith("  "))
        out.append("" if in_warning else line)
    return "\n".join(out)


def energybench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "energybench", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.parametrize("sampler", ["absurd", "backwards"])
def test_a_plugins_impossible_counter_is_never_shown_and_its_run_reads_back(sampler, tmp_path) -> None:
    env = env_with(bad_samplers.install(tmp_path / "plugin"), install_plugin(tmp_path / "fault"),
                   Path(bad_samplers.__file__).parent)
    results = tmp_path / "res"
    proc = energybench("run", str(write_suite(tmp_path / "suite")), "--trials", "2", "--idle", "1", "--threads", "1",
                       "--sampler", sampler, "--sampler", "cpu-model", "--region", "FRA", "--results", str(results),
                       "--cache-dir", str(tmp_path / "cache"), env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    shown = _figures(proc.stdout + proc.stderr)
    assert not HUGE.search(shown), HUGE.search(shown)
    idle = next(line for line in shown.splitlines() if "idle power" in line and " over " in line)
    assert "(measured)" not in idle and "board:rail-0" in idle, idle  # the board's figure: n/a or a lower bound
    (path,) = results.glob("*.json")
    saved = json.loads(path.read_text())
    rounds = [r for b in saved["benchmarks"] for r in b["rounds"]]
    assert rounds and all(math.isnan(r["domains"]["board:rail-0"]) or r["domains"]["board:rail-0"]
                          <= bad_samplers.WATTS * (r["duration_s"] + 1) for r in rounds)
    why = "more than" if sampler == "absurd" else "without a reset to zero"
    assert any(why in w for r in rounds for w in r.get("warnings", [])), rounds[0].get("warnings")
    measured = sum(r["duration_s"] for r in rounds)
    assert saved["wall_s"] > measured + 1.0  # the idle window and set-up held the machine too
    run = storage.load_run(path)  # what was written reads back
    assert run.benchmarks
    report = energybench("report", "latest", "--results", str(results), env=env)
    assert report.returncode == 0 and "skipped" not in report.stderr, report.stderr


def _bad_copy(good: Path, dest: Path, fault: str) -> Path:
    data = json.loads(good.read_text())
    if fault == "negative domain":
        data["benchmarks"][1]["rounds"][0]["domains"]["cpu:package"] = -5.0
    elif fault == "absurd idle":
        data["idle"]["power_w"] = 1e282
    else:
        dest.write_text(good.read_text()[:200])
        return dest
    dest.write_text(json.dumps(data))
    return dest


@pytest.mark.parametrize("fault", ["negative domain", "absurd idle", "cut short"])
def test_one_bad_file_costs_neither_report_latest_nor_history(fault, tmp_path) -> None:
    storage.save_run(make_run("0001_main"), tmp_path, "main")
    good = storage.save_run(make_run("0002_main", seed=1), tmp_path, "main")
    bad = _bad_copy(good, tmp_path / "0003_main.json", fault)
    report = energybench("report", "latest", "--results", str(tmp_path))
    assert report.returncode == 0, report.stderr
    warning = [line for line in report.stderr.splitlines() if "skipped" in line]
    assert len(warning) == 1 and str(bad) in warning[0], report.stderr
    assert "0002_main" in report.stdout and "0003_main" not in report.stdout
    assert energybench("report", str(tmp_path)).returncode == 0
    history = energybench("history", "--results", str(tmp_path))
    assert history.returncode == 0 and str(bad) in history.stderr, history.stderr
    assert "0001_main" in history.stdout and "0002_main" in history.stdout
    named = energybench("report", str(bad))  # a file named on the command line must load: one line, exit 2
    assert named.returncode == 2 and named.stderr.count("\n") == 1, named.stderr


def test_a_negative_domain_energy_is_refused_where_it_is_read_naming_the_field(tmp_path) -> None:
    good = storage.save_run(make_run(), tmp_path, "good")
    bad = _bad_copy(good, tmp_path / "bad.json", "negative domain")
    field = "benchmarks[1].rounds[0].domains.cpu:package"
    for argv in (["report", str(bad)], ["export", "bencher", str(bad)], ["compare", str(good), str(bad)]):
        proc = energybench(*argv)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert f"{field}: -5 J is impossible (negative" in proc.stderr
    with pytest.raises(ResultsError, match=re.escape(field)):
        load_results(bad)


@pytest.mark.parametrize("joules", [1e300, 1e14])
def test_a_figure_beyond_the_bounds_is_written_as_na_and_reads_back(joules, tmp_path) -> None:
    """Whoever built the record (an API user, another tool), the writer writes what the reader reads."""
    bench = make_bench("lm/x", "baseline", 1.0, None)
    first = replace(bench.rounds[0], energy_j=joules, domains={"cpu:package": joules, "cpu:dram": 0.1},
                    co2e_g=joules / 3.6e6 * 56.0)
    run = make_run(benchmarks=[replace(bench, rounds=(first, *bench.rounds[1:]))])
    back = storage.load_run(storage.save_run(run, tmp_path, "x"))
    r = back.benchmarks[0].rounds[0]
    assert math.isnan(r.energy_j) and math.isnan(r.domains["cpu:package"]) and r.partial
    assert r.co2e_g is None or math.isnan(r.co2e_g)
    assert any("cpu:package" in w and "more than 10000 W" in w for w in r.warnings), r.warnings
    assert back.benchmarks[0].rounds[1:] == bench.rounds[1:]  # the sound rounds are untouched
    assert back.energy_j == pytest.approx(math.fsum(x.energy_j for x in bench.rounds[1:]))


def test_a_benchmark_written_twice_counts_once_in_every_total(tmp_path) -> None:
    once = make_run()
    twice = storage.load_run(storage.save_run(replace(once, benchmarks=(*once.benchmarks, once.benchmarks[0])),
                                              tmp_path, "twice"))
    assert twice.co2e_g == pytest.approx(once.co2e_g) and twice.energy_j == pytest.approx(once.energy_j)
    assert carbon_line(twice) == carbon_line(once)
    assert build_report([twice]).region_joules == pytest.approx(build_report([once]).region_joules)
    card = co2_eq_emissions(twice, "all")["emissions"]  # a model card's CO2e
    assert card == pytest.approx(co2_eq_emissions(once, "all")["emissions"])


def test_sci_charges_the_whole_time_the_run_held_the_machine(tmp_path) -> None:
    run = replace(make_run(), embodied=(Embodied("server", 1000.0, 4.0, 0.5),))
    measured = {b.key: math.fsum(r.duration_s for r in b.rounds) for b in run.benchmarks}
    wall = 3.0 * math.fsum(measured.values())  # idle window, set-up, warm-up: twice the trials again
    held = storage.load_run(storage.save_run(replace(run, wall_s=wall), tmp_path, "held"))
    assert held.wall_s == pytest.approx(wall)
    before, after = run_sci(run), run_sci(held)
    assert before is not None and after is not None
    assert math.fsum(r.reserved_s for r in after.results) == pytest.approx(wall)
    for b, a in zip(before.results, after.results, strict=True):
        assert a.reserved_s == pytest.approx(3.0 * measured[a.benchmark])
        assert a.embodied_g == pytest.approx(3.0 * b.embodied_g)
        assert "wall time" in a.reserved_basis and "not recorded" in b.reserved_basis
    assert isinstance(Run.from_json(held.to_json()).wall_s, float)
