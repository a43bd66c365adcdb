"""Sequential trials: rows stop at a look once decided, and the table's error rates hold at every look.

The simulations stop rows exactly as the runner does (``verdicts.baseline.look_decision`` at each of the
design's looks, a stopped row keeping the trials it had) and judge the result with ``run_verdicts``, which
takes each row's p over the looks it reached; the fixed design judges the same data with all its trials.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from energybench.options import QUICK_TRIALS
from energybench.record import Benchmark, BetweenRuns, Environment, Round, Run, Settings, Stopped
from energybench.verdicts.baseline import MIN_CHANGE, VERDICT_ALPHA, look_decision, run_verdicts
from energybench.verdicts.sequential import (
    design,
    fixed,
    sequential_p,
    simulated_futures,
)
from energybench.verdicts.spread import of_run

sys.path.insert(0, str(Path(__file__).parent))
import test_verdict_statistics as sim  # noqa: E402  (the table simulation every verdict test shares)

SAVING_ROW = "w2 [m3]"


def _stops(*args, **kwargs) -> list[list[int]]:  # noqa: ANN002, ANN003 - simulated_futures' arguments
    """Where each row stops in each simulated future (the first half of ``simulated_futures``)."""
    return simulated_futures(*args, **kwargs)[0]


def _upto(bench, n):
    return replace(bench, rounds=tuple(r for r in bench.rounds if r.index < n))


def stop_sequentially(run: Run) -> Run:
    """The run as a sequential run of the quick design would have measured it: each method row stops at the
    first look where it is decided, keeping the trials it had by then."""
    d = design(QUICK_TRIALS)
    between = of_run(run)
    benches = list(run.benchmarks)
    bases = {b.name: b for b in benches if b.method == "baseline"}
    rows = sum(1 for b in benches if b.method != "baseline")
    open_rows = {i for i, b in enumerate(benches) if b.method != "baseline"}
    for index, look in enumerate(d.looks[:-1]):
        for i in sorted(open_rows):
            bench = benches[i]
            verdict = look_decision(_upto(bases[bench.name], look), _upto(bench, look), index, d, between,
                                    MIN_CHANGE, VERDICT_ALPHA, rows)
            if verdict != "continue":
                benches[i] = replace(_upto(bench, look), stopped=Stopped(look, verdict))
                open_rows.discard(i)
    for i in open_rows:
        benches[i] = replace(benches[i], stopped=Stopped(d.max_trials, "last look"))
    settings = Settings(looks=d.looks, spend=d.spend)
    return replace(run, benchmarks=tuple(benches), environment=replace(run.environment, settings=settings))


def _with_run_effects(rng: random.Random, run: Run, sd: float) -> Run:
    """Each method row's ratio moved by a run effect of its own (what the between-run spread stands for)."""
    def moved(bench):
        effect = math.exp(rng.gauss(0, sd))
        return replace(bench, rounds=tuple(replace(r, energy_j=r.energy_j * effect) for r in bench.rounds))

    return replace(run, benchmarks=tuple(b if b.method == "baseline" else moved(b) for b in run.benchmarks))


def test_an_identical_table_stopped_at_every_look_claims_nothing_in_at_least_95_percent_of_runs():
    """A/A: 35 identical rows, with drift, bursts and a run effect per row, stopped sequentially: a table with
    any false claim in at most 5% of runs, and fewer trials than the fixed design spends."""
    rng = random.Random(21)
    reps, false_tables, spent, fixed_spent = 120, 0, 0, 0
    for _ in range(reps):
        run = _with_run_effects(rng, sim.simulated_run(rng, QUICK_TRIALS), 0.03)
        stopped = stop_sequentially(run)
        false_tables += any(v.significant for v in run_verdicts(stopped).values())
        spent += sum(len(b.rounds) for b in stopped.benchmarks if b.method != "baseline")
        fixed_spent += sum(len(b.rounds) for b in run.benchmarks if b.method != "baseline")
    assert false_tables / reps <= 0.05, false_tables / reps
    assert spent < 0.8 * fixed_spent, spent / fixed_spent


def test_a_real_20_percent_saving_is_claimed_at_least_as_often_as_with_fixed_trials(monkeypatch):
    """The same simulated tables judged both ways: the sequential design claims the one real 20% saving
    whenever the fixed design does (its last look keeps almost all of alpha, and a clear row stops early)."""
    monkeypatch.setattr(sim, "NOISE", 0.05)
    rng = random.Random(9)
    reps, fixed_found, seq_found = 100, 0, 0
    for _ in range(reps):
        run = sim.simulated_run(rng, QUICK_TRIALS, {(2, 3): 0.8}, bursts=0.0)
        run = replace(run, environment=Environment(between_runs=BetweenRuns(0.02, "4 saved runs")))
        fixed_found += run_verdicts(run)[SAVING_ROW].outcome == "saves"
        seq_found += run_verdicts(stop_sequentially(run))[SAVING_ROW].outcome == "saves"
    assert seq_found >= fixed_found and seq_found / reps >= 0.95, (seq_found, fixed_found)


def test_a_clear_row_is_decided_at_the_first_look_and_says_so(monkeypatch):
    """A 0.27x row (as the CNN's static int8), its windows scattering 3%, stops after three trials with its
    claim."""
    monkeypatch.setattr(sim, "NOISE", 0.03)
    rng = random.Random(3)
    run = sim.simulated_run(rng, QUICK_TRIALS, {(0, 0): 0.27}, bursts=0.0)
    stopped = stop_sequentially(run)
    bench = next(b for b in stopped.benchmarks if b.key == "w0 [m0]")
    assert bench.stopped == Stopped(3, "claim") and len(bench.rounds) == 3
    vs = run_verdicts(stopped)["w0 [m0]"]
    from energybench.render.cells import evidence

    assert vs.outcome == "saves" and "decided after 3 trials" in evidence(vs)


def test_the_sequential_p_is_the_smallest_spend_weighted_p_over_the_looks_reached():
    d = design(12)
    assert d.looks == (3, 6, 9, 12) and math.isclose(sum(d.spend), 1.0)
    assert sequential_p([(0, 1e-4)], d) == 1e-4 / d.spend[0]
    assert sequential_p([(0, 0.5), (3, 0.01)], d) == 0.01 / d.spend[3]
    assert sequential_p([], d) == 1.0
    assert fixed(7).looks == (7,) and not fixed(7).sequential


def test_a_saved_sequential_run_is_judged_by_its_own_design():
    """The design is recorded in the run's settings; read back, the verdicts are the same."""
    rng = random.Random(4)
    run = stop_sequentially(sim.simulated_run(rng, QUICK_TRIALS, {(1, 1): 0.5}))
    again = Run.from_json(run.to_json())
    assert again.environment.settings.looks == (3, 6, 9, 12)
    assert {k: v.outcome for k, v in run_verdicts(again).items()} == {k: v.outcome for k, v in
                                                                        run_verdicts(run).items()}
    assert all(b.stopped is not None for b in again.benchmarks if b.method != "baseline")


def test_the_forecast_of_where_rows_stop_matches_where_they_stop():
    """The progress line's forecast after the first trial, given the rows' spread, against where the runner's
    own rule stops the same rows: the trials a 35-row table measures in all agree within 15%."""
    rng = random.Random(8)
    d = design(QUICK_TRIALS)
    effects = [0.0] * 29 + [math.log(0.5), math.log(0.27), math.log(1.6), math.log(0.93), math.log(1.07),
                            math.log(0.9)]
    forecast = actual = 0.0
    for _ in range(8):
        sd = rng.choice([0.03, 0.08, 0.15])
        benches, rows = [], []
        for w, effect in enumerate(effects):
            logs = [rng.gauss(effect, sd) for _ in range(QUICK_TRIALS)]
            benches.append(Benchmark(name=f"w{w}", rounds=tuple(
                Round(index=t, energy_j=1.0, duration_s=1.0) for t in range(QUICK_TRIALS))))
            benches.append(Benchmark(name=f"w{w}", method="m", rounds=tuple(
                Round(index=t, energy_j=math.exp(x), duration_s=1.0) for t, x in enumerate(logs))))
            rows.append((logs[:1], sd))
        run = stop_sequentially(Run(name="sim", created="", benchmarks=tuple(benches)))
        actual += sum(b.stopped.after for b in run.benchmarks if b.method != "baseline")
        futures = _stops(rows, 1, d, VERDICT_ALPHA, len(rows), MIN_CHANGE, of_run(run).sd)
        forecast += sum(statistics.fmean(f[i] for f in futures) for i in range(len(rows)))
    assert forecast == pytest.approx(actual, rel=0.15), (forecast, actual)


def test_the_forecast_says_which_rows_will_claim_a_saving():
    """``--quick`` profiles the rows that save energy: the forecast weighs each open row by the share of its
    futures that end in a saving claim, not by whether its first pair happened to read a saving."""
    d = design(QUICK_TRIALS)
    _, savings = simulated_futures([([math.log(0.27)], 0.03), ([-0.06], 0.05), ([math.log(1.6)], 0.03)], 1, d,
                                   VERDICT_ALPHA, 35, MIN_CHANGE, 0.0)
    clear, unclear, cost = (statistics.fmean(s[i] for s in savings) for i in range(3))
    assert clear > 0.95 and cost == 0.0 and 0.0 < unclear < 0.9, (clear, unclear, cost)


def test_a_clear_row_is_forecast_to_stop_early_and_a_borderline_one_late():
    d = design(12)
    futures = _stops([([math.log(0.27)] * 3, 0.02), ([math.log(0.95)] * 3, 0.03), ([0.0] * 3, 0.01)],
                              3, d, 0.05, 35, 0.05, 0.0)
    clear, borderline, none = (statistics.fmean(f[i] for f in futures) for i in range(3))
    assert clear <= 6.5 and none <= 6.5 and borderline >= 9, (clear, borderline, none)
    assert _stops([([0.1], 0.1)], 1, d, 0.05, 35, 0.05, 0.0) == _stops(
        [([0.1], 0.1)], 1, d, 0.05, 35, 0.05, 0.0)  # seeded: the same state, the same forecast


def test_the_forecast_counts_the_pairs_the_noise_guard_sets_aside():
    """A third of the pairs set aside (their sides saw different load): rows reach the looks with fewer pairs
    and stop later. Told the share that stands, the forecast after the first trial agrees with where the
    runner's rule stops them within 15%; assuming every pair stands, it would promise fewer trials."""
    rng = random.Random(11)
    d = design(QUICK_TRIALS)
    effects = [0.0] * 29 + [math.log(0.5), math.log(0.27), math.log(1.6), math.log(0.93), math.log(1.07),
                            math.log(0.9)]
    quiet, busy = ({"cpus": 2.0, "other_cpus": other, "window_s": 1.0} for other in (0.0, 1.5))
    forecast = naive = actual = 0.0
    for _ in range(8):
        sd = rng.choice([0.03, 0.08])
        benches, rows = [], []
        for w, effect in enumerate(effects):
            logs = [rng.gauss(effect, sd) for _ in range(QUICK_TRIALS)]
            aside = [t > 0 and rng.random() < 1 / 3 for t in range(QUICK_TRIALS)]
            benches.append(Benchmark(name=f"w{w}", rounds=tuple(
                Round(index=t, energy_j=1.0, duration_s=1.0, load=quiet) for t in range(QUICK_TRIALS))))
            benches.append(Benchmark(name=f"w{w}", method="m", rounds=tuple(
                Round(index=t, energy_j=math.exp(x), duration_s=1.0, load=busy if aside[t] else quiet)
                for t, x in enumerate(logs))))
            rows.append((logs[:1], sd))
        run = stop_sequentially(Run(name="sim", created="", benchmarks=tuple(benches)))
        actual += sum(b.stopped.after for b in run.benchmarks if b.method != "baseline")
        for usable, into in ((2 / 3, "forecast"), (1.0, "naive")):
            futures = _stops(rows, 1, d, VERDICT_ALPHA, len(rows), MIN_CHANGE, of_run(run).sd,
                                      usable=usable)
            total = sum(statistics.fmean(f[i] for f in futures) for i in range(len(rows)))
            if into == "forecast":
                forecast += total
            else:
                naive += total
    assert forecast == pytest.approx(actual, rel=0.15), (forecast, actual)
    assert naive < forecast, (naive, forecast)


def test_a_row_s_spread_in_saved_runs_is_its_prior():
    """``spread.trial_spreads``: each method row's per-trial spread of its log ratio in saved runs (median over
    them), the forecast's assumption before a row has three pairs of its own."""
    from energybench.verdicts.spread import trial_spreads

    def run(logs):
        base = Benchmark(name="w", rounds=tuple(Round(index=t, energy_j=1.0, duration_s=1.0)
                                                for t in range(len(logs))))
        bench = Benchmark(name="w", method="m", rounds=tuple(Round(index=t, energy_j=math.exp(x), duration_s=1.0)
                                                             for t, x in enumerate(logs)))
        return Run(name="s", created="", benchmarks=(base, bench))

    tight, loose = [0.0, 0.01, -0.01, 0.0], [0.0, 0.2, -0.2, 0.1]
    spreads = trial_spreads([run(tight), run(loose), run(tight)])
    assert spreads.rows == {"w [m]": pytest.approx(statistics.stdev(tight))} and spreads.set_aside == 0.0
    assert trial_spreads([run([0.0, 0.1])]).rows == {}  # two pairs say nothing about a spread


def test_the_prior_comes_from_saved_runs_of_this_name_machine_and_thread_count(tmp_path):
    """A quiet run at two threads scatters more than a run fitted to one thread beside a neighbour: its spread
    is not the fitted run's prior. Saved runs of another name are not either."""
    from energybench.record import Machine
    from energybench.record.storage import save_run
    from energybench.verdicts.spread import saved_trial_spreads

    def run(name, logs, torch_threads):
        base = Benchmark(name="w", rounds=tuple(Round(index=t, energy_j=1.0, duration_s=1.0)
                                                for t in range(len(logs))))
        bench = Benchmark(name="w", method="m", rounds=tuple(Round(index=t, energy_j=math.exp(x), duration_s=1.0)
                                                             for t, x in enumerate(logs)))
        settings = Settings(threads={"torch": torch_threads})
        return Run(name=name, created="", machine=Machine(cpu_model="cpu"),
                   environment=Environment(settings=settings), benchmarks=(base, bench))

    tight, loose = [0.0, 0.01, -0.01, 0.0], [0.0, 0.2, -0.2, 0.1]
    save_run(run("main", loose, 2), tmp_path)
    save_run(run("main", tight, 1), tmp_path)
    save_run(run("other", loose, 1), tmp_path)
    machine = Machine(cpu_model="cpu")
    one = saved_trial_spreads("main", str(tmp_path), machine, {"torch": 1})
    assert one.rows == {"w [m]": pytest.approx(statistics.stdev(tight))}
    assert saved_trial_spreads("main", str(tmp_path), machine, {"torch": 2}).rows == {
        "w [m]": pytest.approx(statistics.stdev(loose))}
    assert saved_trial_spreads("main", str(tmp_path), Machine(cpu_model="another cpu"), {"torch": 1}).rows == {}


def test_rows_short_of_pairs_at_the_last_look_are_forecast_their_top_up_trials():
    """With most pairs set aside a row can reach the last look with fewer than 3 pairs; the runner tops it up
    (``run.trials``), and the forecast counts those trials."""
    d = design(12)
    rows = [([], 0.05)] * 20
    plain = _stops(rows, 1, d, 0.05, 20, 0.05, 0.0, usable=0.2)
    topped = _stops(rows, 1, d, 0.05, 20, 0.05, 0.0, usable=0.2, top_up_to=24)
    assert max(max(f) for f in plain) == 12 and 12 < max(max(f) for f in topped) <= 24
    assert statistics.fmean(x for f in topped for x in f) > statistics.fmean(x for f in plain for x in f)
