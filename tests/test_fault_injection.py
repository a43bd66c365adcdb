"""Fault injection for issue 12's classes, with real processes, real signals and real file-system failures.

1. write failures never lose figures; 2. SIGTERM keeps finished work; 5. bad input is refused in one line;
6. an internal error never looks like a verdict; 7. hygiene (killed saves, control characters, CSV formulas,
option values pytest reads as paths, empty values, a zero factor). Classes 3 (statistics at scale) and 4
(counter sanity) are tested with the statistics and the samplers. The faults themselves are in faults.py.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults import (
    ENERGY_TESTS,
    energybench,
    env_with,
    error_lines,
    install_plugin,
    no_debris,
    pytest_run,
    size_limit,
    tmpfs,
    write_suite,
)
from report_fixtures import make_bench, make_run

from energybench.cli import main
from energybench.errors import ConfigError, ResultsError
from energybench.record import storage
from energybench.record.frames import load_results
from energybench.run.runner import RunConfig, run_suites


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(tmp_path_factory.mktemp("plugin"))


@pytest.fixture(params=["not-a-directory", "size-limit", "full-disk", "read-only"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path):
    """A results directory that cannot be written, for real: (path, preexec_fn, the reason users read)."""
    kind = request.param
    if kind == "not-a-directory":
        (tmp_path / "a-file").write_text("x")
        yield tmp_path / "a-file" / "res", None, "Not a directory"
    elif kind == "size-limit":
        yield tmp_path / "res", size_limit(1024), "File too large"
    elif kind == "full-disk":
        with tmpfs(tmp_path / "full", "64k", fill=True) as full:
            yield full, None, "No space left on device"
    else:
        with tmpfs(tmp_path / "ro", "64k", read_only=True) as ro:
            yield ro, None, "Read-only file system"


def _one_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    lines = error_lines(output)
    assert len(lines) == 1, output
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------- 1. write failures
def test_run_prints_every_figure_when_its_results_cannot_be_written(plugin, unwritable, tmp_path):
    results, limit, reason = unwritable
    proc = energybench("run", str(write_suite(tmp_path / "b")), "--trials", "2", "--idle", "0", "--results",
                       str(results), env=env_with(plugin), preexec_fn=limit)
    assert proc.returncode == 73, proc.stderr
    assert "fault/work (inference, per row" in proc.stdout and " mJ" in proc.stdout, proc.stdout  # every figure
    _one_error(proc, reason, "the table above is every figure")


def test_pytest_prints_the_table_when_its_results_cannot_be_written(unwritable, tmp_path):
    results, limit, reason = unwritable
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS)
    proc = pytest_run(tmp_path, "--energy-save", "x", f"--energy-results={results}", preexec_fn=limit)
    assert proc.returncode == 73, proc.stdout
    assert "energy benchmarks" in proc.stdout and "test_energy.py (3 tests)" in proc.stdout
    assert "\ntest_sum[3] " in proc.stdout  # a row with its figures
    _one_error(proc, reason, "the table above has every figure")


def test_what_was_saved_before_stays_valid(tmp_path):
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS)
    assert pytest_run(tmp_path, "--energy-save", "first").returncode == 0
    proc = pytest_run(tmp_path, "--energy-save", "second", preexec_fn=size_limit(1024))
    assert proc.returncode == 73
    _one_error(proc, "File too large")
    assert [p.name for p in storage.list_runs(tmp_path / "results")] == ["0001_first.json"]
    assert len(storage.load_run(tmp_path / "results" / "0001_first.json").benchmarks) == 3
    assert no_debris(tmp_path / "results") == []


def test_a_failed_rewrite_leaves_the_previous_version(tmp_path):
    """`energybench run` rewrites its file after every trial: a rewrite that fails keeps the last good one."""
    script = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).parent / "support")!r})
from report_fixtures import make_bench, make_run
from energybench.errors import WriteError
from energybench.record.storage import RunFile
small = make_run(benchmarks=[make_bench("a/b", "baseline", 1.0, None, rounds=1, timeline=False)])
big = make_run(benchmarks=[make_bench("a/b", "baseline", 1.0, None, rounds=50)])
file, _ = RunFile.create(small, {str(tmp_path)!r}, "grow")
size = file.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, size + 100))
try:
    file.write(big)
except WriteError as exc:
    print(exc)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "could not write the run file" in proc.stdout and "File too large" in proc.stdout, proc.stderr
    kept = storage.load_run(tmp_path / "0001_grow.json")
    assert [len(b.rounds) for b in kept.benchmarks] == [1]
    assert no_debris(tmp_path) == []


def test_an_unwritable_model_cache_does_not_cost_the_trained_baseline(tmp_path):
    from runner_subjects import write_suite as lm_suite

    (tmp_path / "a-file").write_text("x")
    proc = energybench("run", str(lm_suite(tmp_path / "b", ["bf16"])), "--subjects", "lm/bf16", "--phase",
                       "inference", "--trials", "1", "--idle", "0", "--no-save", "--cache-dir",
                       str(tmp_path / "a-file" / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert "could not cache the trained baseline" in proc.stderr and "Not a directory" in proc.stderr
    assert "lm/inference-generate" in proc.stdout and "Traceback" not in proc.stderr


def test_energy_json_at_a_directory_or_with_too_long_a_name(tmp_path):
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS)
    (tmp_path / "out").mkdir()
    at_dir = pytest_run(tmp_path, "--energy-save", "n" * 300, "--energy-json=out")
    assert at_dir.returncode == 73
    _one_error(at_dir, "could not write the run JSON out", "Is a directory")
    saved = storage.list_runs(tmp_path / "results")  # the save itself went through: a long name is cut to fit
    assert len(saved) == 1 and len(saved[0].name) <= 130 and storage.load_run(saved[0]).benchmarks
    too_long = pytest_run(tmp_path, f"--energy-json={'j' * 300}.json")
    assert too_long.returncode == 73
    _one_error(too_long, "File name too long")


def test_measure_report_and_compare_print_before_a_failed_write(tmp_path):
    measured = energybench("measure", "--json", str(tmp_path / "m.json"), "--", sys.executable, "-c", "pass",
                           preexec_fn=size_limit(16))
    assert measured.returncode == 73
    assert "energy" in measured.stderr and "mean power" in measured.stderr  # the report came first
    _one_error(measured, "--json file", "File too large", "the report above is all that was kept")

    base = storage.save_run(make_run("0001_base"), tmp_path / "res", "base")
    same = storage.save_run(make_run("0002_same"), tmp_path / "res", "same")
    worse = storage.save_run(make_run("0003_worse", benchmarks=[
        make_bench("lm/inference-generate", "baseline", 2.0, 12.3, rounds=8, seed=3)]), tmp_path / "res", "worse")
    report = energybench("report", str(base), "--regions", "FRA", "--html", str(tmp_path / "r.html"), "--csv",
                         str(tmp_path / "r.csv"), preexec_fn=size_limit(64))
    assert report.returncode == 73
    assert "int8-dynamic" in report.stdout  # the terminal report is whole
    lines = error_lines(report.stderr)
    assert len(lines) == 2 and "HTML report" in lines[0] and "CSV table" in lines[1], report.stderr
    assert not (tmp_path / "r.html").exists() and no_debris(tmp_path) == []

    passed = energybench("compare", str(base), str(same), "--markdown", str(tmp_path / "c.md"),
                         preexec_fn=size_limit(16))
    assert passed.returncode == 73 and "lm/inference-generate" in passed.stdout
    _one_error(passed, "Markdown comparison", "File too large")
    regressed = energybench("compare", str(base), str(worse), "--fail-on", "energy:+5%", "--markdown",
                            str(tmp_path / "c.md"), preexec_fn=size_limit(16))
    assert regressed.returncode == 1  # the verdict is never hidden by a file that could not be written
    _one_error(regressed, "Markdown comparison")


# ---------------------------------------------------------------------------------- 2. SIGTERM
def test_sigterm_in_a_pytest_session_keeps_finished_benchmarks(tmp_path):
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS + "\n\ndef test_zz_slow():\n"
                                            "    print('SLOW-STARTED', flush=True)\n    import time\n"
                                            "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "--energy-save", "t"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    deadline = time.monotonic() + 120
    while "SLOW-STARTED" not in seen:
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, seen
        seen += line
    proc.send_signal(signal.SIGTERM)  # what a CI timeout sends
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, seen + out
    assert "energy benchmarks" in out and "energy results saved to results/0001_t.json" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert len(storage.load_run(tmp_path / "results" / "0001_t.json").benchmarks) == 3


@pytest.mark.parametrize("writable", [True, False])
def test_sigterm_during_run_keeps_the_rounds_and_says_so(writable, plugin, tmp_path):
    (tmp_path / "a-file").write_text("x")
    results = tmp_path / "res" if writable else tmp_path / "a-file" / "res"
    proc = subprocess.Popen(
        [sys.executable, "-m", "energybench", "run", str(write_suite(tmp_path / "b", work_s=0.05)), "--trials",
         "500", "--idle", "0", "--results", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_with(plugin))
    seen = ""
    deadline = time.monotonic() + 120
    while "trial 2/500 done" not in seen:
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, seen
        seen += line
    proc.send_signal(signal.SIGTERM)  # what a CI timeout sends
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, seen + err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    if not writable:  # nothing else holds the finished trials: they are printed
        assert "finished trial(s) are printed below and nowhere else" in err and "fault/work" in err
        return
    assert "kept" in err and "finished trial(s) in" in err
    path = next(results.glob("*.json"))
    bench = json.loads(path.read_text())["benchmarks"][0]
    assert len(bench["rounds"]) >= 2 and bench["stats"]["energy_per_item_j"]["n"] == len(bench["rounds"])
    settings = json.loads(path.read_text())["environment"]["settings"]  # the file says it is partial
    assert settings["stopped"] == "terminated (SIGTERM)" and 2 <= settings["trials_finished"] < settings["trials"]


# ---------------------------------------------------------------------------------- 5. bad input
@pytest.mark.parametrize(("row", "words"), [
    ("1714521600000,50", "milliseconds? divide by 1000"),  # a millisecond epoch
    ("1e300,50", "between years 1 and 9999"),
    ("-1e300,50", "between years 1 and 9999"),
])
def test_intensity_csv_timestamps_out_of_range_are_refused_on_their_line(row, words, tmp_path):
    csv_file = tmp_path / "grid.csv"
    csv_file.write_text(f"timestamp,g_per_kwh\n{row}\n1714525200,40\n")
    proc = energybench("measure", "--intensity-csv", str(csv_file), "--", "true")
    assert proc.returncode == 2
    assert _one_error(proc, "line 2", words).startswith("energybench: error: intensity CSV")


@pytest.mark.parametrize(("args", "flag"), [
    (["--idle", "nan"], "--idle"), (["--idle", "inf"], "--idle"), (["--idle", "-1"], "--idle"),
    (["--seed", "-1"], "--seed"), (["--seed", "1e30"], "--seed"), (["--threads", "100000"], "--threads"),
    (["--threads", "nan"], "--threads"), (["--trials", "0"], "--trials"), (["--trials", "inf"], "--trials"),
    (["--warmup", "-1"], "--warmup"), (["--warmup", "2.5"], "--warmup"), (["--threads", "0"], "--threads"),
    (["--max-trials", "2"], "--max-trials"),
])
def test_run_options_out_of_range_are_refused_naming_the_option(args, flag, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", *args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and f"argument {flag}:" in err


def test_contradictory_run_options_are_one_line_and_exit_2():
    proc = energybench("run", "--trials", "5", "--max-trials", "8", "--no-save")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "--trials" in proc.stderr and "--max-trials" in proc.stderr and "pass one" in proc.stderr


def test_run_config_is_checked_by_the_same_rules():
    for cfg, flag in ((RunConfig(idle_s=float("nan")), "--idle"), (RunConfig(threads=10**6), "--threads"),
                      (RunConfig(seed=-5), "--seed")):
        with pytest.raises(ConfigError, match=flag):
            run_suites([], cfg)


def test_measure_an_executable_of_invalid_format_exits_126(tmp_path):
    junk = tmp_path / "not-a-program"
    junk.write_bytes(b"\x7fELF\x00garbage")
    junk.chmod(0o755)
    proc = energybench("measure", "--", str(junk))
    assert proc.returncode == 126
    assert "exec format error" in proc.stderr and "Traceback" not in proc.stderr
    assert energybench("measure", "--", str(tmp_path)).returncode == 126  # a directory


BAD_ROUNDS = {
    "wrong type": ({"energy_j": "1.0"}, "rounds[0].energy_j: expected a number, got a string"),
    "negative energy": ({"energy_j": -200.0}, "rounds[0].energy_j: must be >= 0, got -200"),
    "absurd figure": ({"energy_j": 1e300}, "rounds[0].energy_j: 1e+300 is beyond any plausible figure"),
    "zero items": ({"items": 0}, "rounds[0].items: must be > 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROUNDS))
def test_bad_results_files_are_refused_everywhere_naming_the_field(case, tmp_path, capsys):
    good = storage.save_run(make_run("0001_good"), tmp_path, "good")
    data = json.loads(good.read_text())
    patch, words = BAD_ROUNDS[case]
    data["benchmarks"][1]["rounds"][0].update(patch)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    for argv in (["compare", str(good), str(bad)], ["compare", str(bad), str(good)], ["report", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "benchmarks[1]" in err, err
    with pytest.raises(ResultsError, match=words.replace("+", r"\+").replace("[", r"\[")):
        load_results(bad)


def test_absurd_nesting_and_a_negative_baseline_in_pytest(tmp_path):
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS)
    deep = tmp_path / "deep.json"
    deep.write_text('{"schema": "energybench/run", "version": 2, "benchmarks": [], "x": ' + "[" * 100_000
                    + "]" * 100_000 + "}")
    nested = pytest_run(tmp_path, f"--energy-compare={deep}", "--energy-fail-on=energy:+5%")
    assert nested.returncode == 4
    _one_error(nested, "nested")
    first = pytest_run(tmp_path, "--energy-save", "base")
    assert first.returncode == 0
    path = tmp_path / "results" / "0001_base.json"
    data = json.loads(path.read_text())
    for r in data["benchmarks"][0]["rounds"]:
        r["energy_j"] = -abs(r["energy_j"]) * 2  # would read as a "pass" at -200 % if it were accepted
    path.write_text(json.dumps(data))
    gated = pytest_run(tmp_path, "--energy-compare=1", "--energy-fail-on=energy:+5%")
    assert gated.returncode == 4 and "energy comparison" not in gated.stdout  # no verdict from such a baseline
    _one_error(gated, "energy_j: must be >= 0")


def test_empty_values_and_a_zero_factor(tmp_path):
    proc = energybench("measure", "--region", "", "--", "true")
    assert proc.returncode == 2
    _one_error(proc, "--region", "is empty")
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS)
    in_pytest = pytest_run(tmp_path, "--energy-region=")
    assert in_pytest.returncode == 4 and "--energy-region = '': is empty" in in_pytest.stderr
    refused = energybench("run", "--results", "")
    assert refused.returncode == 2 and refused.stderr.count("argument --results/--results-dir: is empty") == 1
    csv_file = tmp_path / "zero.csv"
    now = int(time.time())
    csv_file.write_text(f"{now - 3600},0\n{now + 3600},0\n")
    for how in (["--intensity", "0"], ["--intensity-csv", str(csv_file)]):
        out = tmp_path / "m.json"
        proc = energybench("measure", *how, "--json", str(out), "--", sys.executable, "-c", "pass")
        assert proc.returncode == 0, proc.stderr
        carbon = json.loads(out.read_text())["measurement"]["carbon"]
        assert carbon["co2e_g"] == 0.0 and carbon["intensity_g_per_kwh"] == 0.0, how  # priced at 0, and said


# ---------------------------------------------------------------------------------- 6. internal errors
INJECT = """
import sys
import energybench.verdicts.compare
def broken(*args, **kwargs):
    raise RuntimeError("injected bug")
energybench.verdicts.compare.compare_runs = broken
from energybench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_internal_error_in_the_cli_is_exit_70_and_one_line(tmp_path):
    a = storage.save_run(make_run("0001_a"), tmp_path, "a")
    b = storage.save_run(make_run("0002_b"), tmp_path, "b")
    argv = [sys.executable, "-c", INJECT, "compare", str(a), str(b)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 70  # never 1 (a regression) nor 2 (bad input)
    line = _one_error(proc, "internal error (RuntimeError: injected bug)", "ENERGYBENCH_DEBUG=1", "report it")
    assert "not a verdict" in line
    debug = subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**os.environ,
                                                                                  "ENERGYBENCH_DEBUG": "1"})
    assert "Traceback" in debug.stderr and "injected bug" in debug.stderr


BROKEN = {"session end": ("energybench.verdicts.compare", "energybench.verdicts.compare.compare_runs"),
          "meter": ("energybench.measuring.meter", "energybench.measuring.meter.Meter.end")}


@pytest.mark.parametrize("where", sorted(BROKEN))
def test_an_internal_error_in_pytest_is_exit_3_never_a_verdict(where, tmp_path):
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS)
    module, target = BROKEN[where]
    owner, _, attr = target.rpartition(".")
    (tmp_path / "conftest.py").write_text(
        f"import {module}\n\ndef broken(*args, **kwargs):\n    raise RuntimeError('injected bug')\n\n"
        f"{owner}.{attr} = broken\n")
    proc = pytest_run(tmp_path, "--energy-fail-on=energy:+5%")
    assert proc.returncode == 3, proc.stdout  # pytest's internal-error code
    assert "INTERNALERROR" not in proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("energybench: internal error")]
    assert len(lines) == 1 and "injected bug" in lines[0] and "ENERGYBENCH_DEBUG=1" in lines[0]
    if where == "session end":
        assert "\ntest_sum[2] " in proc.stdout  # the figures are still printed


# ---------------------------------------------------------------------------------- 7. hygiene
WRITER = """
import os, sys, time
sys.path.insert(0, {tests!r})
from report_fixtures import make_run
from energybench import atomic
from energybench.record import storage
real_fsync = os.fsync
def slow_fsync(fd):
    print("WRITING", flush=True)
    while not os.path.exists({go!r}):
        time.sleep(0.01)
    real_fsync(fd)
os.fsync = slow_fsync
print(storage.save_run(make_run(), {res!r}, "writer"), flush=True)
"""


def _writer(tmp_path: Path, res: Path) -> subprocess.Popen:
    code = WRITER.format(tests=str(Path(__file__).parent / "support"), go=str(tmp_path / "go"), res=str(res))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "WRITING"  # it holds a claim and a half-written temp file
    return proc


def test_a_killed_save_is_cleaned_up_by_the_next_and_a_live_one_is_left_alone(tmp_path):
    res = tmp_path / "res"
    killed = _writer(tmp_path, res)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    debris = no_debris(res)
    assert any(n.endswith(".energybench-tmp") for n in debris) and ".claim-0001" in debris
    assert storage.save_run(make_run(), res, "next").name == "0001_next.json"  # number 1 was free again
    assert no_debris(res) == []

    live = _writer(tmp_path, res)  # claims 0002 and waits inside its write
    assert storage.save_run(make_run(), res, "meanwhile").name == "0003_meanwhile.json"
    assert any(n.endswith(".energybench-tmp") for n in no_debris(res))  # the live writer's temp survived
    (tmp_path / "go").write_text("")
    out, _ = live.communicate(timeout=60)
    assert live.returncode == 0 and out.strip().endswith("0002_writer.json")
    assert [len(storage.load_run(p).benchmarks) for p in storage.list_runs(res)] == [5, 5, 5]
    assert no_debris(res) == []


EVIL = "lm/\x1b[2J\x1b]0;owned\x07evil\x00name\u202e"


def test_control_characters_never_reach_a_terminal_markdown_or_html(tmp_path):
    benches = [make_bench(EVIL, m, s, 12.0, rounds=5, timeline=False) for m, s in (("baseline", 1.0),
                                                                                     ("int8\x1b[31m", 0.6))]
    a = storage.save_run(make_run("0001_a", benchmarks=benches), tmp_path, "a")
    b = storage.save_run(make_run("0002_b", benchmarks=benches, seed=1), tmp_path, "b")
    report = energybench("report", str(a), str(b), "--regions", "FRA", "--markdown", str(tmp_path / "r.md"),
                         "--html", str(tmp_path / "r.html"))
    compare = energybench("compare", str(a), str(b), "--markdown", str(tmp_path / "c.md"))
    assert report.returncode == 0 and compare.returncode == 0, report.stderr + compare.stderr
    outputs = [report.stdout, compare.stdout, *(p.read_text() for p in tmp_path.glob("*.md")),
               (tmp_path / "r.html").read_text()]
    for text in outputs:
        assert "evilname" in text
        assert not any(c in text for c in "\x1b\x00\x07\u202e"), repr(text[:200])
    (tmp_path / "test_named.py").write_text(
        "import pytest\n\n@pytest.mark.energy(rounds=2, warmup_rounds=0, min_time=0.005, name='t\\x1b[2Jx\\x00y')\n"
        "def test_named(energy):\n    energy(sum, range(100))\n")
    proc = pytest_run(tmp_path, "test_named.py")
    assert proc.returncode == 0 and "t[2Jxy" in proc.stdout and "\x1b" not in proc.stdout


def test_csv_cells_that_start_a_formula_are_neutralised(tmp_path):
    names = ['=HYPERLINK("http://x.invalid/?"&A1)', "+cmd", "@SUM(A1)", "-2+3"]
    benches = [make_bench(n, "baseline", 1.0, 12.0, rounds=2, timeline=False) for n in names]
    run = storage.save_run(make_run("0001_a", benchmarks=benches), tmp_path, "a")
    assert main(["report", str(run), "--regions", "FRA", "--csv", str(tmp_path / "t.csv")]) == 0
    with open(tmp_path / "t.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["benchmark"] for r in rows) == sorted(f"'{n}" for n in names for _ in range(2))
    assert all(float(r["energy_j"]) > 0 for r in rows)  # numbers stay numbers


def test_a_results_dir_given_with_a_space_never_renames_benchmarks(tmp_path):
    """pytest picks its root directory before this plugin is loaded, reading `--energy-results DIR` as a test
    path DIR: once DIR exists outside the project, every node id (benchmark name) would change."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_energy.py").write_text(ENERGY_TESTS)
    elsewhere = tmp_path / "elsewhere" / "res"

    def names(proc: subprocess.CompletedProcess) -> set[str]:
        """The table's test names: rows under their module's heading line (``test_energy.py (3 tests)``)."""
        lines = proc.stdout.splitlines()
        modules = [ln.split(" (")[0] for ln in lines if ln.endswith(" tests)")]
        assert len(modules) == 1, proc.stdout
        return {f"{modules[0]}::{ln.split()[0]}" for ln in lines if ln.startswith("test_sum[")}

    first = pytest_run(project, "test_energy.py", "--energy-storage", str(elsewhere), "--energy-save", "a")
    assert first.returncode == 0, first.stdout  # DIR did not exist yet: nothing changed
    again = pytest_run(project, "test_energy.py", "--energy-results", str(elsewhere), "--energy-save", "a")
    assert again.returncode == 4  # DIR exists now: refused, with the spelling that works
    assert f"write --energy-results={elsewhere} instead" in again.stderr
    assert "renames every benchmark" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    with_equals = pytest_run(project, "test_energy.py", f"--energy-storage={elsewhere}", "--energy-save", "a")
    assert with_equals.returncode == 0 and names(with_equals) == names(first) == {
        f"test_energy.py::test_sum[{n}]" for n in (1, 2, 3)}


def test_not_applicable_during_the_trials_is_a_note_not_a_traceback(plugin, tmp_path):
    proc = energybench("run", str(write_suite(tmp_path / "b", with_na=True)), "--warmup", "0", "--trials", "2",
                       "--idle", "0", "--results", str(tmp_path / "res"), env=env_with(plugin))
    assert proc.returncode == 0, proc.stderr
    said = "fault/needs-hw [baseline]: not applicable: this workload needs hardware that is not here (in trial 1 of 2)"
    assert said in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    run = storage.load_run(next((tmp_path / "res").glob("*.json")))
    cells = {b.name: b for b in run.benchmarks}
    assert cells["fault/work"].ok and len(cells["fault/work"].rounds) == 2
    assert cells["fault/needs-hw"].status == "not-applicable" and not cells["fault/needs-hw"].rounds
    assert "not applicable" in proc.stdout and proc.stdout.count("this workload needs hardware") == 1


def test_the_cnn_baseline_survives_an_unwritable_model_cache_too(tmp_path):
    """Both subjects that train a baseline write it through one helper (subjects.cache)."""
    from energybench.subjects.api import Context
    from energybench.subjects.cnn import CNNSubject

    (tmp_path / "a-file").write_text("x")
    notes: list[str] = []
    ctx = Context(quick=True, cache_dir=str(tmp_path / "a-file" / "cache"), log=notes.append,
                  options={"cnn": {"epochs": 1}})
    subject = CNNSubject()
    model = subject.baseline(ctx)
    assert model.module is not None and subject.metadata()["baseline"]["cached"] is False
    assert any("could not cache the trained baseline" in n and "Not a directory" in n for n in notes), notes
