"""Issue 25, classes 1 and 6: no output option ever replaces a saved run or an input, and every exporter's
output path passes the same checks (``energybench.outputs``), with real commands and a real pytest session."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from faults import ENERGY_TESTS, energybench, error_lines, pytest_run, tmpfs
from report_fixtures import make_bench, make_run

from energybench.record import storage


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(proc: subprocess.CompletedProcess, path: Path | str, code: int = 2) -> str:
    """Exit ``code``, one error line naming ``path`` and the fix, no traceback."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == code, output
    assert "Traceback" not in output and "internal error" not in output, output
    lines = error_lines(output) + [ln for ln in output.splitlines() if ln.startswith("ERROR: energybench:")]
    assert len(lines) == 1, output  # pytest prints a usage error as "ERROR: energybench: ..."
    assert str(path) in lines[0] and "give another path" in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A project directory whose results/ holds two saved runs (0001_good, 0002_new)."""
    results = tmp_path / "results"
    storage.save_run(make_run("0001_good"), results, "good")
    storage.save_run(make_run("0002_new", seed=1), results, "new")
    return tmp_path


def test_no_output_option_replaces_a_saved_run_or_an_input(store: Path):
    results = store / "results"
    good, new = results / "0001_good.json", results / "0002_new.json"
    elsewhere = store / "R.json"  # a saved run copied out of the store, under another name
    elsewhere.write_bytes(good.read_bytes())
    before = {p: _digest(p) for p in (good, new, elsewhere)}
    cases = [
        (["report", str(elsewhere), "--regions", "FRA", "--html", str(elsewhere)], elsewhere),
        (["report", str(new), "--regions", "FRA", "--csv", "results/0001_good.json"], "results/0001_good.json"),
        (["report", "latest", "--regions", "FRA", "--markdown", "results/0002_new.json"], "results/0002_new.json"),
        (["compare", str(good), str(elsewhere), "--markdown", str(elsewhere)], elsewhere),
        (["export", "bencher", str(elsewhere), "-o", str(elsewhere)], elsewhere),
        (["measure", "--json", "results/0001_good.json", "--", "true"], "results/0001_good.json"),
        # not there yet, but named like a saved run in the results directory: it would be read back as one
        (["report", str(good), "--regions", "FRA", "--html", "results/0003_report.json"], "results/0003_report.json"),
    ]
    for argv, path in cases:
        proc = energybench(*argv, cwd=store)
        _refused(proc, path)
        assert "nothing was written" in proc.stderr, argv
        assert {p: _digest(p) for p in before} == before, argv  # every saved run is as it was
        assert not (results / "0003_report.json").exists()
    # two outputs of one command on one path: refused before either is written
    twice = energybench("report", str(good), "--regions", "FRA", "--html", "r.out", "--markdown", "r.out", cwd=store)
    assert twice.returncode == 2 and "goes there too" in twice.stderr and not (store / "r.out").exists()
    # what must keep working: a new file, and replacing a report written before
    for _ in range(2):
        ok = energybench("report", str(good), "--regions", "FRA", "--markdown", "report.md", cwd=store)
        assert ok.returncode == 0, ok.stderr


def test_pytest_energy_json_never_replaces_a_saved_run(tmp_path: Path):
    (tmp_path / "test_energy.py").write_text(ENERGY_TESTS)
    saved = storage.save_run(make_run("0001_main", benchmarks=[
        make_bench("a/b", "baseline", 1.0, None, rounds=3, timeline=False),
        make_bench("a/c", "baseline", 2.0, None, rounds=3, timeline=False)]), tmp_path / "res", "main")
    before = _digest(saved)
    proc = pytest_run(tmp_path, "--energy-json=res/0001_main.json")
    _refused(proc, "res/0001_main.json", code=4)  # pytest's usage error, before any test ran
    assert _digest(saved) == before and len(storage.load_run(saved).benchmarks) == 2
    # the same in the results directory, and for the baseline of this very session
    in_store = pytest_run(tmp_path, "--energy-results=res", "--energy-json=res/0002_copy.json")
    _refused(in_store, "res/0002_copy.json", code=4)
    baseline = tmp_path / "base.json"
    baseline.write_bytes(saved.read_bytes())
    against = pytest_run(tmp_path, f"--energy-compare={baseline}", f"--energy-json={baseline}")
    _refused(against, baseline, code=4)
    assert _digest(baseline) == before
    # its own copy from an earlier session is replaced as before
    for _ in range(2):
        copy = pytest_run(tmp_path, "--energy-json=energy.json")
        assert copy.returncode == 0, copy.stdout + copy.stderr
    assert len(storage.load_run(tmp_path / "energy.json").benchmarks) == 3


@pytest.fixture(params=["a-directory", "under-a-file", "read-only"])
def bad_output(request: pytest.FixtureRequest, tmp_path: Path):
    """An output path no exporter can write: (path, words of the one line users read)."""
    if request.param == "a-directory":
        (tmp_path / "out").mkdir()
        yield tmp_path / "out", "it is a directory"
    elif request.param == "under-a-file":
        (tmp_path / "a-file").write_text("x")
        yield tmp_path / "a-file" / "out.txt", "is a file, not a directory"
    else:
        with tmpfs(tmp_path / "ro", "64k", read_only=True) as ro:
            yield ro / "out.txt", "read-only"


@pytest.mark.parametrize("exporter", ["prometheus", "codecarbon", "github-benchmark", "bencher"])
def test_every_exporter_refuses_an_unwritable_output_alike(exporter: str, bad_output, tmp_path: Path):
    if exporter == "prometheus":
        pytest.importorskip("prometheus_client", reason="pip install -e '.[prometheus]'")
    path, words = bad_output
    saved = storage.save_run(make_run("0001_good"), tmp_path / "results", "good")
    proc = energybench("export", exporter, str(saved), "-o", str(path))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output  # bad input, never an internal error (70)
    lines = error_lines(output)
    assert len(lines) == 1 and f"cannot write the {exporter} export to {path}" in lines[0] and words in lines[0], output
    assert "Traceback" not in output
