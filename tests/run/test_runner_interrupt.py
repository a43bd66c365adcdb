"""Ctrl-C during `energybench run` keeps every finished trial in the results file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner_subjects import write_suite

from energybench.record import storage


def test_ctrl_c_keeps_finished_trials(tmp_path: Path) -> None:
    bench = write_suite(tmp_path / "b", ["bf16"])
    results = tmp_path / "res"
    proc = subprocess.Popen(
        [sys.executable, "-m", "energybench", "run", str(bench), "--subjects", "lm", "--trials", "200", "--idle",
         "0", "--results", str(results)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "ENERGYBENCH_CACHE": str(tmp_path / "cache")},
        # Ctrl-C's default action: a suite started in the background (nohup ... &) runs with SIGINT ignored, and
        # the run would inherit that and never see the signal this test sends
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 240
    seen = ""
    while "trial 2/200 done" not in seen:  # two whole trials have finished and been saved
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, f"runner ended or stalled before trial 2:\n{seen}"
        seen += line
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "kept" in err and "finished trial(s)" in err
    assert "Traceback" not in err
    run = storage.load_run(next(results.glob("*.json")))
    rounds = [len(b.rounds) for b in run.benchmarks]
    assert min(rounds) >= 2  # both finished trials of every benchmark survived
    # the file says the run was cut short, how far it got, and every report says so too
    settings = run.environment.settings
    assert settings is not None and settings.trials == 200 and settings.stopped == "interrupted (Ctrl-C)"
    assert settings.trials_finished is not None and 2 <= settings.trials_finished <= min(rounds)
    assert f"kept {settings.trials_finished} finished trial(s)" in err and "marked partial" in err
    html = tmp_path / "report.html"
    report = subprocess.run([sys.executable, "-m", "energybench", "report", run.path, "--html", str(html)],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    said = f"partial run: interrupted (Ctrl-C) after {settings.trials_finished} of 200 trial(s)"
    assert said in " ".join(report.stdout.split())
    page = html.read_text()
    assert 'class="partial"' in page and said in page and "stopped=interrupted (Ctrl-C)" in page


def test_what_stopped_a_run_is_named() -> None:
    from energybench.errors import ConfigError, Terminated
    from energybench.run.runner import stopped_by

    assert stopped_by(KeyboardInterrupt()) == "interrupted (Ctrl-C)"
    assert stopped_by(Terminated("signal 15")) == "terminated (SIGTERM)"
    assert stopped_by(ConfigError("bad\nsecond line")) == "stopped by an error (ConfigError: bad)"
