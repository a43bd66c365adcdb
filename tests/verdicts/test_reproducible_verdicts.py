"""Verdicts that hold for the next run: the minimum-effect test, the between-run spread (default, option, saved
runs of this machine), and the A/B gate's interval rule."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from dataclasses import replace

import pytest
from verdict_runs import simulated_run

from energybench import stats
from energybench.record import BetweenRuns, Environment, Machine, Run
from energybench.record.storage import save_run
from energybench.verdicts.baseline import MIN_CHANGE, run_verdicts
from energybench.verdicts.gate import evaluate_gate, parse_gate
from energybench.verdicts.spread import DEFAULT_SD, estimate, from_saved, of_run

_run = simulated_run


def _with(run: Run, sd: float, min_change: float = MIN_CHANGE) -> Run:
    return replace(run, environment=Environment(between_runs=BetweenRuns(sd, "option"), min_change=min_change))


# ------------------------------------------------------------------------------------------- minimum effect
def test_p_beyond_is_the_shifted_t_test_of_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(2)
    base = [1 + rng.random() for _ in range(12)]
    new = [x * 0.85 * math.exp(rng.gauss(0, 0.05)) for x in base]
    test = stats.paired_ratio(base, new)
    logs = [math.log(y / x) for x, y in zip(base, new, strict=True)]
    expected = scipy_stats.ttest_1samp(logs, -math.log1p(0.05), alternative="less").pvalue * 2
    assert test.p_beyond(0.05) == pytest.approx(expected, rel=1e-6)
    assert test.p_beyond(0.0) == test.p


def test_a_precise_two_percent_effect_is_not_claimed_but_a_precise_twenty_percent_one_is():
    rng = random.Random(4)
    run = _with(_run(rng, {"small": 1.02, "big": 0.8}, noise=0.005), sd=0.0)
    verdicts = run_verdicts(run)
    assert verdicts["w [small]"].outcome == "same" and verdicts["w [small]"].ci_low > 1.0  # real, but below 5%
    assert verdicts["w [big]"].outcome == "saves"
    assert run_verdicts(_with(run, sd=0.0, min_change=0.0))["w [small]"].outcome == "costs"


# ------------------------------------------------------------------------------------- between-run spread
def test_the_between_run_spread_widens_the_interval_and_is_named_in_the_test():
    rng = random.Random(5)
    run = _run(rng, {"m": 0.9})
    narrow, wide = run_verdicts(_with(run, 0.0))["w [m]"], run_verdicts(_with(run, 0.05))["w [m]"]
    assert wide.ci_high - wide.ci_low > 2 * (narrow.ci_high - narrow.ci_low)
    assert narrow.ratio == pytest.approx(wide.ratio)
    assert "between-run spread" in wide.test and wide.between == BetweenRuns(0.05, "option")


def test_with_the_spread_one_runs_interval_covers_what_other_runs_measure():
    """Ratios that move 4% between runs (as measured on the development VM): the interval of one run's trials
    alone covers the ratio over many runs far less often than 95%, which is why verdicts flipped between
    identical runs; with the machine's spread included it covers it at least 93% of the time."""
    rng = random.Random(6)
    reps, truth = 400, 0.85
    alone = with_spread = 0
    for _ in range(reps):
        run = _run(rng, {"m": truth}, run_effect=0.04)
        narrow, wide = run_verdicts(_with(run, 0.0))["w [m]"], run_verdicts(_with(run, 0.04))["w [m]"]
        alone += narrow.ci_low <= truth <= narrow.ci_high
        with_spread += wide.ci_low <= truth <= wide.ci_high
    assert alone / reps < 0.8 and with_spread / reps >= 0.93, (alone / reps, with_spread / reps)


def test_the_spread_is_estimated_from_saved_runs_of_the_same_machine(tmp_path):
    rng = random.Random(7)
    ratios = {f"m{i}": 0.7 + 0.05 * i for i in range(12)}
    here, elsewhere = Machine(hostname="a", cpu_model="x"), Machine(hostname="b", cpu_model="y")
    runs = [_run(rng, ratios, run_effect=0.06, machine=here) for _ in range(8)]
    found = estimate(runs)
    assert found is not None and 0.03 < found.sd < 0.12 and found.source == "8 saved runs"
    assert estimate(runs[:2]) is None  # two runs are not enough
    calm = estimate([_run(rng, ratios, run_effect=0.0, machine=here) for _ in range(5)])
    assert calm is not None and calm.sd < 0.02

    assert from_saved("suite", str(tmp_path), here) == BetweenRuns(DEFAULT_SD, "default")
    for run in runs[:2]:
        save_run(run, tmp_path)
    for _ in range(3):
        save_run(_run(rng, ratios, run_effect=0.06, machine=elsewhere), tmp_path)
    assert from_saved("suite", str(tmp_path), here).source == "default"  # another machine's runs do not count
    save_run(runs[2], tmp_path)
    assert from_saved("suite", str(tmp_path), here).source == "3 saved runs"


def test_a_run_records_its_spread_and_an_old_file_gets_the_default():
    assert of_run(Run(name="old", created="")) == BetweenRuns(DEFAULT_SD, "default")
    given = Environment(between_runs=BetweenRuns(0.01, "option"))
    assert of_run(Run(name="x", created="", environment=given)).sd == 0.01
    assert of_run(Run(name="x", created="")).sd == DEFAULT_SD


@pytest.mark.parametrize("flag, value", [("--min-change", "-3%"), ("--between-run-spread", "lots")])
def test_bad_verdict_options_are_one_line_errors(flag, value, tmp_path):
    done = subprocess.run([sys.executable, "-m", "energybench", "run", str(tmp_path), f"{flag}={value}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert flag in last and "percentage" in last and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------- A/B gate
def test_an_ab_gate_catches_a_regression_at_its_threshold_and_passes_a_small_certain_one():
    gate = parse_gate("energy:+5%")
    rng = random.Random(10)
    caught = passed_small = false_alarms = 0
    reps = 200
    for _ in range(reps):
        base = [math.exp(rng.gauss(0, 0.05)) for _ in range(10)]
        at = [x * 1.05 * math.exp(rng.gauss(0, 0.01)) for x in base]
        small = [x * 1.01 * math.exp(rng.gauss(0, 0.003)) for x in base]
        same = [x * math.exp(rng.gauss(0, 0.01)) for x in base]
        caught += not evaluate_gate(gate, base, at, mode="paired").passed
        passed_small += evaluate_gate(gate, base, small, mode="paired").passed
        false_alarms += not evaluate_gate(gate, base, same, mode="paired").passed
    assert caught / reps >= 0.9  # the median of a true +5% is below 5% half the time; the interval's top is not
    assert passed_small / reps >= 0.95  # +1% for certain is not a +5% regression
    assert false_alarms / reps <= 0.02
