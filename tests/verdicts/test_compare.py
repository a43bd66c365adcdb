"""Comparison of two runs and ``energybench compare`` as a real subprocess: exit codes 0/1/2, Markdown."""

import subprocess
import sys
from dataclasses import replace

import pytest

from energybench.errors import ResultsError
from energybench.record import Benchmark, Machine, Round, Run, storage
from energybench.render.comparison import format_table, to_markdown
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.gate import parse_gates

BASE = [10.0, 10.1, 9.9, 10.05, 9.95, 10.02, 9.98, 10.03, 9.97, 10.0]


def run(energies, name="bench", cpu="Xeon", gpus=(), co2=True):
    rounds = tuple(Round(index=i, energy_j=e, duration_s=1.0, items=4, co2e_g=e * 1e-4 if co2 else None,
                         source="measured") for i, e in enumerate(energies))
    return Run(name=name, run_id=f"run-{name}", created="2026-01-01T00:00:00+00:00",
               machine=Machine(cpu_model=cpu, gpus=tuple(gpus)),
               benchmarks=(Benchmark(name=name, phase="inference", rounds=rounds),))


def test_regression_row_and_verdicts():
    cmp = compare_runs(run(BASE), run([e * 1.25 for e in BASE]), parse_gates(["energy:+5%", "power:+50%"]))
    assert cmp.exit_code == 1 and len(cmp.regressions) == 1
    row = cmp.rows[0]
    assert row.change == pytest.approx(0.25) and row.verdict(0.01) == "REGRESSION"
    text = format_table(cmp)
    assert "REGRESSION" in text and "FAIL bench energy:+5%" in text and "1 energy regression(s)" in text
    md = to_markdown(cmp)
    assert md.startswith("### energy comparison: run-bench → run-bench")
    assert "| bench |" in md and "❌ REGRESSION" in md


def test_no_gates_reports_direction():
    cmp = compare_runs(run(BASE), run([e * 0.8 for e in BASE]))
    assert cmp.exit_code == 0 and cmp.rows[0].verdict(0.01) == "lower"


def test_machine_mismatch_warns_but_clock_jitter_does_not():
    gpu = {"index": 0, "name": "H100", "power_limit_w": 700.0}
    cmp = compare_runs(run(BASE, gpus=[gpu]), run(BASE, gpus=[{**gpu, "power_limit_w": 400.0}], cpu="EPYC"))
    text = " ".join(cmp.warnings)
    assert "CPU model differs" in text and "power limit differs: 700.0 W vs 400.0 W" in text
    same = run(BASE, gpus=[gpu])
    # clocks and hostnames are not identity
    same = replace(same, machine=replace(same.machine, hostname="runner-42", extra={"cpu_mhz": 2900}))
    assert not [w for w in compare_runs(run(BASE, gpus=[gpu]), same).warnings if "machines differ" in w]


def test_too_few_rounds_decide_on_the_threshold_alone_with_a_warning():
    cmp = compare_runs(run([10]), run([12]), parse_gates(["energy:+5%"]))
    assert cmp.exit_code == 1
    assert any("too few rounds (n=1/1)" in w and "threshold alone" in w for w in cmp.warnings)


def test_no_baseline_passes_with_a_note():
    cmp = compare_runs(None, run(BASE), parse_gates(["energy:+5%"]))
    assert cmp.exit_code == 0 and "no baseline" in cmp.notes[0]


def test_no_shared_benchmark_is_bad_input():
    with pytest.raises(ResultsError, match="share no benchmark"):
        compare_runs(run(BASE, name="a"), run(BASE, name="b"))


def test_co2e_gate_without_co2e_is_bad_input():
    with pytest.raises(ResultsError, match="--energy-region"):
        compare_runs(run(BASE, co2=False), run(BASE, co2=False), parse_gates(["co2e:+5%"]))


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "energybench", "compare", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def saved(tmp_path):
    d = tmp_path / "results"
    for name, factor in (("main", 1.0), ("same", 1.0), ("worse", 1.25)):
        storage.save_run(run([e * factor for e in BASE]), d, name)
    return tmp_path


def test_cli_exit_codes(saved):
    ok = cli("1", "2", "--fail-on", "energy:+5%", cwd=saved)
    assert ok.returncode == 0, ok.stderr
    assert "energy gates passed" in ok.stdout
    bad = cli("main", "latest", "--fail-on", "energy:+5%", "--markdown", "cmp.md", cwd=saved)
    assert bad.returncode == 1
    assert "FAIL bench energy:+5%" in bad.stdout
    assert "❌ REGRESSION" in (saved / "cmp.md").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["1", "2", "--fail-on", "energy:+5"], "missing unit"),
        (["1", "nope.json"], "does not exist"),
        (["1", "2", "--alpha", "2"], "significance level between 0 and 0.5"),
        (["absent.json", "2", "--require-baseline"], "does not exist"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(saved, args, message):
    res = cli(*args, cwd=saved)
    assert res.returncode == 2
    assert message in res.stderr and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_cli_missing_baseline_passes_with_note(saved):
    res = cli("absent.json", "latest", "--fail-on", "energy:+5%", cwd=saved)
    assert res.returncode == 0 and "no baseline" in res.stdout


def test_cli_corrupt_baseline_is_exit_2(saved):
    (saved / "results" / "0009_bad.json").write_text("{")
    res = cli("9", "1", cwd=saved)
    assert res.returncode == 2 and "corrupt results file" in res.stderr


def test_markdown_escapes_names_from_result_files():
    evil = "<img src=x onerror=alert(1)>_x_|"
    cmp = compare_runs(run(BASE, name=evil), run(BASE, name=evil), parse_gates(["energy:+5%"]))
    md = to_markdown(cmp)
    assert "<img" not in md and "&lt;img" in md
    assert "\\_x\\_" in md and "\\|" in md
