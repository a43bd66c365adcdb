"""One energy per round: a pytest session's rounds hold their windows, so every total (the report's CO2e line,
the Prometheus counters, codecarbon's CSV) is what the windows measured, while the table and gates stay per call.

The truth comes from outside the run file: an injected counter that gains exactly ``JOULES`` per measured call
(so a window of N calls holds N x JOULES), and the measured function's own clock around each window's calls.
"""

import csv
import json
import math
import re
import subprocess
import sys

import numpy  # noqa: F401  - import once here: pytester unloads modules first imported by an inner run,
import pytest  # and numpy's C extension cannot be loaded twice in one process

pytest_plugins = ["pytester"]

JOULES = 0.37  # per call
SAVED = "results/0001_main.json"

CALLS = f"COUNT = 0\nJOULES = {JOULES!r}\n"

SAMPLERS = '''
from energybench.samplers.base import BaseSampler, Domain
import calls

class PerCall(BaseSampler):
    name = "fake-per-call"
    kind = "counter"
    resolution_s = 0.0

    def domains(self):
        return [Domain("cpu:package-0", "measured", "fake counter: JOULES per measured call")]

    def read(self):
        return {"cpu:package-0": calls.JOULES * calls.COUNT}

def samplers():
    return [PerCall()]
'''

SUITE = '''
import json
import time

import pytest

import calls


def timed(n, warmup):
    """A call that sleeps 0.5 ms and counts itself; the spans of its blocks of n calls after the warm-up ones
    are the windows' durations as the function saw them."""
    state = {"i": 0, "spans": []}

    def work():
        if state["i"] % n == 0:
            state["start"] = time.monotonic()
        time.sleep(0.0005)
        calls.COUNT += 1
        state["i"] += 1
        if state["i"] % n == 0:
            state["spans"].append(time.monotonic() - state["start"])

    def truth(name, rounds):
        spans = state["spans"][warmup:]
        assert len(spans) == rounds
        with open("truth.jsonl", "a") as f:
            f.write(json.dumps({"test": name, "energy_j": calls.JOULES * n * rounds, "duration_s": sum(spans),
                                "calls": n * rounds}) + "\\n")

    return work, truth


@pytest.mark.energy(rounds=3, warmup_rounds=1, iterations=1000)
def test_calls(energy):
    work, truth = timed(1000, warmup=1)
    energy(work)
    truth("test_calls", 3)


def test_pedantic_items(energy):
    energy.items = 4
    work, truth = timed(1200, warmup=0)
    energy.pedantic(work, rounds=2, warmup_rounds=0, iterations=1200)
    truth("test_pedantic_items", 2)
'''

SI = {"": 1.0, "k": 1e3, "M": 1e6, "m": 1e-3, "u": 1e-6, "\u00b5": 1e-6, "n": 1e-9}


def _joules(text: str) -> float:
    number, prefix = re.fullmatch(r"([\d.]+) ?([kMmu\u00b5n]?)J", text).groups()
    return float(number) * SI[prefix]


def _cli(cwd, *args):
    proc = subprocess.run([sys.executable, "-m", "energybench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_totals_are_the_windows_and_per_call_figures_are_derived(pytester):
    pytester.makepyfile(calls=CALLS, fakesamplers=SAMPLERS, test_windows=SUITE)
    res = pytester.runpytest_subprocess("--energy-samplers-from", "fakesamplers:samplers", "-p", "no:randomly",
                                        "--energy-region", "FRA", "--energy-save", "main")
    res.assert_outcomes(passed=2)
    truth = [json.loads(line) for line in (pytester.path / "truth.jsonl").read_text().splitlines()]
    want_j = math.fsum(t["energy_j"] for t in truth)
    want_s = math.fsum(t["duration_s"] for t in truth)
    assert want_j == pytest.approx(JOULES * (3 * 1000 + 2 * 1200))

    # the table stays per call: JOULES per call, and per item (4 items a call) for the test that counts them
    res.stdout.fnmatch_lines(["*test_calls*370 mJ*"])
    run = json.loads((pytester.path / SAVED).read_text())
    assert run["version"] == 3
    for bench in run["benchmarks"]:  # each round is its window: all its calls and their items
        for r in bench["rounds"]:
            assert r["energy_j"] == pytest.approx(JOULES * r["iterations"])
            assert r["items"] == (4 if "items" in bench["name"] else 1) * r["iterations"]

    # energybench report: the CO2e line prices the windows' joules
    report = _cli(pytester.path, "report", SAVED, "--regions", "FRA")
    line = next(ln for ln in report.splitlines() if ln.startswith("CO2e of "))
    assert re.search(r"all 5 measured rounds", line), line
    assert _joules(re.match(r"CO2e of (\S+ ?\S*J) ", line).group(1)) == pytest.approx(want_j, rel=0.01)

    # Prometheus: the energy and time counters are the windows'
    _cli(pytester.path, "export", "prometheus", SAVED, "--output", "run.prom")
    prom = (pytester.path / "run.prom").read_text()

    def counter(name: str) -> float:
        return math.fsum(float(ln.rsplit(" ", 1)[1]) for ln in prom.splitlines() if ln.startswith(name + "{"))

    assert counter("energybench_energy_joules_total") == pytest.approx(want_j, rel=0.01)
    assert counter("energybench_duration_seconds_total") == pytest.approx(want_s, rel=0.01)

    # codecarbon's CSV: energy_consumed in kWh (PUE 1) and duration in seconds of the windows
    _cli(pytester.path, "export", "codecarbon", SAVED, "--output", "emissions.csv")
    with (pytester.path / "emissions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert math.fsum(float(r["energy_consumed"]) for r in rows) * 3.6e6 == pytest.approx(want_j, rel=0.01)
    assert math.fsum(float(r["duration"]) for r in rows) == pytest.approx(want_s, rel=0.01)
