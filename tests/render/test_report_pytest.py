"""Reports of pytest sessions read as a comparison of sessions, not as a compression table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from report_fixtures import fake_lookup, pytest_run

from energybench.record.storage import save_run
from energybench.render.report_html import render_html
from energybench.render.report_markdown import render_markdown
from energybench.render.report_text import render_terminal
from energybench.report import build_report
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.gate import parse_gates

NOISE = ("subject", "vs baseline", "baseline", "(other)", "phase")


def test_one_session_lists_its_tests_per_call_or_per_item():
    text = render_terminal(build_report([pytest_run("0001_main")], lookup=fake_lookup), width=100)
    assert not any(word in text for word in NOISE), text
    sum_line = next(ln for ln in text.splitlines() if "test_sum" in ln)
    batch_line = next(ln for ln in text.splitlines() if "test_batch" in ln)
    assert re.search(r"2\.\d+ mJ/call", sum_line) and "/item" not in sum_line  # no items: per call
    assert re.search(r"6\d\d uJ/sample", batch_line)  # 40 mJ per call over 64 samples


def _sessions(scales: list[float]) -> list:
    return [pytest_run(f"{i + 1:04d}_main", s) for i, s in enumerate(scales)]


def test_two_sessions_side_by_side_with_change_interval_and_gate():
    base, new = _sessions([1.0, 1.2])
    cmp = compare_runs(base, new, parse_gates(["energy:+5%"]))
    report = build_report([base, new], lookup=fake_lookup, comparison=cmp)
    text = render_terminal(report, width=100)
    assert max(len(ln) for ln in text.splitlines()) <= 100
    assert not any(word in text for word in ("subject", "vs baseline", "(other)")), text
    lines = text.splitlines()
    assert "pytest sessions: base 0001_main -> new 0002_main, test_m.py (estimated)" in lines
    header = next(ln for ln in lines if ln.strip().startswith("test "))
    assert re.fullmatch(r"  test +base per call +new per call +change \[95% CI\] +verdict", header), header
    row = next(i for i, ln in enumerate(lines) if "test_sum" in ln)
    assert re.search(r"test_sum +2\.\d+ mJ +3\.\d+ mJ +\+(19|20|21)% \[\+[\d.]+%, \+[\d.]+%\] +REGRESSION$", lines[row])
    batch = next(ln for ln in lines if "test_batch" in ln)
    assert re.search(r"\d\d\.\d mJ +\d\d\.\d mJ 7\d\d uJ/sample", batch)  # per item only where items are counted
    assert "/sample" not in lines[row] and "/item" not in text
    assert "FAIL test_m.py::test_sum energy:+5%" in text
    md = render_markdown(report)
    assert "| test | base per call | new per call | change \\[95% CI\\] | verdict |" in md
    assert "REGRESSION" in md and "vs baseline" not in md
    html = render_html(report)
    assert "pytest sessions: base 0001_main -&gt; new 0002_main" in html and "verdict-regression" in html


def test_three_or_more_sessions_add_a_trend_with_its_change_point():
    runs = _sessions([1.0, 1.0, 1.0, 1.3, 1.3, 1.3])
    cmp = compare_runs(runs[-2], runs[-1], history=runs[-3::-1])
    report = build_report(runs, lookup=fake_lookup, comparison=cmp)
    text = render_terminal(report, width=100)
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "test_sum" in ln)
    assert re.search("[\u2581\u2582]{3}[\u2587\u2588]{3}$", lines[at]), lines[at]  # the medians run by run
    assert lines[at + 1].endswith("+30% at 0004_main")  # and where their level changed
    assert "trend over 6 runs" in text and "history" in (cmp.mode + text)
    assert "Trend over 6 runs" in render_html(report)


def test_cli_reports_pytest_sessions_as_a_comparison(tmp_path: Path):
    results = tmp_path / "results"
    for run in _sessions([1.0, 1.0, 1.25]):
        save_run(run, results, "main")
    proc = subprocess.run([sys.executable, "-m", "energybench", "report", str(results), "--regions", "FRA",
                           "--fail-on", "energy:+5%"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "100"})  # a fixed width (pytest's children may get 80)
    assert proc.returncode == 0, proc.stderr  # a report exits 0; the gate's verdict is in it
    out = proc.stdout
    assert "pytest sessions: base 0002_main -> new 0003_main, test_m.py (estimated; trend over 3 runs)" in out
    assert "REGRESSION" in out and "FAIL test_m.py::test_sum energy:+5%" in out
    assert max(len(ln) for ln in out.splitlines()) <= 100
