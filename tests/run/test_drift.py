"""Gates that see drift: A/B sessions (real git trees, real pytest processes taking turns, real commands),
a history of baseline runs, and the noise guard (real neighbour processes)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from energybench.measuring import noise
from energybench.record import ABSide, Benchmark, Environment, Round, Run, storage
from energybench.run.ab import flagged_pairs, rounds_to_measure
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.drift import Drift
from energybench.verdicts.gate import parse_gates

FAKE_SAMPLERS = '''
import time
from energybench.samplers.base import BaseSampler, Domain

class Clock(BaseSampler):
    name = "fake-clock"
    kind = "counter"

    def __init__(self):
        self.t0 = time.monotonic()

    def domains(self):
        return [Domain("cpu:package-0", "measured", "fake 10 W clock counter")]

    def read(self):
        return {"cpu:package-0": 10.0 * (time.monotonic() - self.t0)}

def samplers():
    return [Clock()]
'''

TEST_FILE = '''
import os, time
from work import WORK

def test_work(energy):
    def step():
        with open(os.environ["AB_LOG"], "a") as fh:
            fh.write(os.environ.get("ENERGYBENCH_AB_SIDE", "?") + "\\n")
        time.sleep(WORK)
    energy.pedantic(step, rounds=8, warmup_rounds=0, iterations=1)
'''


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "work.py").write_text("WORK = 0.02\n")
    (root / "test_ab.py").write_text(TEST_FILE)
    (root / "fakesamplers.py").write_text(FAKE_SAMPLERS)
    _git("init", "-q", "-b", "main", cwd=root)
    _git("add", ".", cwd=root)
    _git("commit", "-q", "-m", "base", cwd=root)
    return root


def _ab(repo: Path, *extra: str, processes: int = 1) -> subprocess.CompletedProcess[str]:
    """One A/B session; one process pair unless told (the fake clock sampler has no process effects)."""
    return subprocess.run(
        [sys.executable, "-m", "energybench", "ab", "main", "--results", str(repo.parent / "res"), "--processes",
         str(processes), *extra, "--",
         "pytest", "test_ab.py", "-q", "-p", "no:randomly", "--energy-samplers-from", "fakesamplers:samplers"],
        cwd=repo, capture_output=True, text=True, timeout=300,
        env={**os.environ, "AB_LOG": str(repo.parent / "turns.log"), "PYTHONPATH": str(repo)})


def test_ab_session_takes_turns_round_by_round_and_catches_a_regression(repo: Path) -> None:
    (repo / "work.py").write_text("WORK = 0.03\n")  # the working tree does 50% more work than main
    res = _ab(repo, "--fail-on", "energy:+20%")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "paired t on per-trial log ratios" in res.stdout and "REGRESSION" in res.stdout
    turns = (repo.parent / "turns.log").read_text().split()
    assert turns == ["base", "new"] * 8  # never two rounds of one side in a row: drift hits both alike
    runs = [storage.load_run(p) for p in storage.list_runs(repo.parent / "res")]
    assert {r.environment.ab.side for r in runs} == {"base", "new"}
    assert len({r.environment.ab.session for r in runs}) == 1
    assert not (repo.parent / "repo" / ".git" / "worktrees").exists() or not list(
        (repo / ".git" / "worktrees").iterdir())  # the baseline's worktree was removed


def test_ab_session_of_the_same_code_passes(repo: Path) -> None:
    res = _ab(repo, "--fail-on", "energy:+5%")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "energy gates passed" in res.stdout


def test_each_side_of_an_ab_session_measures_ab_rounds_by_default(repo: Path) -> None:
    """Pairs are what an A/B gate tests: without a rounds= of its own, the fixture takes AB_ROUNDS (20), not a
    lone run's 10."""
    from energybench.run.ab import AB_ROUNDS

    (repo / "test_ab.py").write_text("from work import WORK\nimport time\n\n"
                                     "def test_work(energy):\n    energy(time.sleep, WORK)\n")
    _git("commit", "-q", "-am", "calibrated rounds", cwd=repo)  # both sides run this test
    res = _ab(repo)
    assert res.returncode == 0, res.stdout + res.stderr
    runs = [storage.load_run(p) for p in storage.list_runs(repo.parent / "res")]
    loads = [[r.load for r in run.benchmarks[0].rounds] for run in runs]
    assert AB_ROUNDS == 20 and len(loads[0]) == len(loads[1]) == rounds_to_measure(AB_ROUNDS, flagged_pairs(*loads))


# The one stand-in in these A/B tests: the noise guard's reading of the machine's load (/proc) is replaced, per
# side, by a script of which rounds a neighbour ran through; the orchestrator, both pytest processes and the
# fixture are real. A pair is set aside when its two sides' loads differ.
SCRIPTED_PROBE = '''
import json, os
import energybench.run.ab, energybench.pytest_plugin.fixture

SIDE = os.environ.get("ENERGYBENCH_AB_SIDE", "")
FLAGGED = json.loads(os.environ.get("SCRIPTED_FLAGS", "{}")).get(SIDE, [])

class ScriptedProbe:
    count = 0
    def start(self):
        pass
    def stop(self):
        i, ScriptedProbe.count = ScriptedProbe.count, ScriptedProbe.count + 1
        return {"cpus": 2.0, "other_cpus": 1.5 if i in FLAGGED else 0.0}, ()

energybench.pytest_plugin.fixture.Probe = ScriptedProbe
if SIDE in os.environ.get("OLD_SIDES", "").split():  # an energybench from before rounds were settled
    energybench.run.ab.Turns.settle_rounds = lambda self, key, rounds, loads: rounds
'''

CALIBRATED_TEST = '''
import os, time
import pytest
from work import WORK

@pytest.mark.energy(rounds=4, iterations=1, warmup_rounds=0)
def test_work(energy):
    def step():
        with open(os.environ["AB_LOG"], "a") as fh:
            fh.write(os.environ.get("ENERGYBENCH_AB_SIDE", "?") + "\\n")
        time.sleep(WORK)
    energy(step)

@pytest.mark.energy(rounds=3, iterations=1, warmup_rounds=0)
def test_after(energy):
    energy(time.sleep, WORK)
'''


@pytest.mark.parametrize(("flagged", "old_sides", "measured"), [
    # base's round 1, new's rounds 3 and 4 flagged: pairs 1 and 3 flagged after 4 rounds -> 6; then pair 4 -> 7
    ({"base": [1], "new": [3, 4]}, "", 7),
    ({"base": list(range(8)), "new": []}, "", 8),  # every round flagged (the count runs on): twice the rounds
    ({"base": [0, 1], "new": [2]}, "base", 4),  # the other side never settles (older energybench): no extra
])
def test_ab_session_replaces_pairs_the_noise_guard_flags(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                         flagged: dict[str, list[int]], old_sides: str,
                                                         measured: int) -> None:
    """Both sides measure one more round for each pair whose sides saw different load, up to twice the
    rounds, and agree on it without a referee. A side whose energybench predates this (it never settles) gets
    no extra rounds and the session still ends; its later tests' turns are then one hand-over out of step."""
    (repo / "conftest.py").write_text(SCRIPTED_PROBE)
    (repo / "test_ab.py").write_text(CALIBRATED_TEST)
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "calibrated rounds, scripted load", cwd=repo)
    monkeypatch.setenv("SCRIPTED_FLAGS", json.dumps(flagged))
    monkeypatch.setenv("OLD_SIDES", old_sides)
    res = _ab(repo)
    assert res.returncode == 0, res.stdout + res.stderr
    runs = {r.environment.ab.side: r for r in map(storage.load_run, storage.list_runs(repo.parent / "res"))}
    work = {side: next(b for b in run.benchmarks if b.name.endswith("test_work")) for side, run in runs.items()}
    assert [len(work[side].rounds) for side in ("base", "new")] == [measured, measured]
    busy = [i for i, r in enumerate(work["base"].rounds) if r.load.get("other_cpus", 0.0) > 1]
    assert busy == [i for i in flagged["base"] if i < measured]
    turns = (repo.parent / "turns.log").read_text().split()
    assert turns == ["base", "new"] * measured  # the extra rounds alternate like the rest
    after = {side: next(b for b in run.benchmarks if b.name.endswith("test_after")) for side, run in runs.items()}
    assert {len(b.rounds) for b in after.values()} == {3}  # the next test starts from its own rounds


def test_measured_rounds_follow_the_loads() -> None:
    quiet, busy = {"cpus": 2.0, "other_cpus": 0.0}, {"cpus": 2.0, "other_cpus": 1.2}
    assert flagged_pairs([quiet, busy, busy], [quiet, quiet, busy, busy]) == 1  # pair 1 differs; pair 2 is busy alike
    assert flagged_pairs([False, True, False], [False, False, True, True]) == 2  # an older side's flags
    assert [rounds_to_measure(20, f) for f in (0, 1, 5, 20, 35)] == [20, 21, 25, 40, 40]


def test_ab_commands_replace_flagged_pairs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from energybench.run.ab import measure_commands

    flagged = {1, 2, 7}  # windows in order: base 0, new 0, base 1, ... -> pairs 0 (new), 1 (base) and 3 (new) differ

    class ScriptedProbe:
        count = 0

        def start(self) -> None:
            pass

        def stop(self) -> tuple[dict[str, float], tuple[str, ...]]:
            i, ScriptedProbe.count = ScriptedProbe.count, ScriptedProbe.count + 1
            return {"cpus": 2.0, "other_cpus": 1.5 if i in flagged else 0.0}, ()

    monkeypatch.setattr(noise, "Probe", ScriptedProbe)
    base, new = measure_commands(["true", "true"], rounds=4, cwd=tmp_path)
    assert [len(run.benchmarks[0].rounds) for run in (base, new)] == [7, 7]  # 4 asked + 3 flagged pairs
    assert [r.load["other_cpus"] > 1 for r in new.benchmarks[0].rounds][:4] == [True, False, False, True]


PROCESS_TEST = '''
import os, time
from work import WORK

with open(os.environ["AB_LOG"], "a") as fh:  # once per process: its side, number and layout pad
    fh.write(" ".join([os.environ["ENERGYBENCH_AB_SIDE"], os.environ["ENERGYBENCH_AB_PROCESS"],
                       str(len(os.environ["ENERGYBENCH_AB_LAYOUT_PAD"]))]) + "\\n")

def test_work(energy):
    energy(time.sleep, WORK)
'''


def test_ab_session_spreads_its_rounds_over_process_pairs(repo: Path) -> None:
    """Each process pair measures its share of the rounds (at least 5), the two saved runs hold every round
    with its process, and the test is on the process pairs; each process gets its own random layout pad."""
    from energybench.run.ab import AB_ROUNDS, rounds_per_process

    (repo / "test_ab.py").write_text(PROCESS_TEST)
    _git("commit", "-q", "-am", "one log line per process", cwd=repo)
    (repo / "work.py").write_text("WORK = 0.03\n")  # the working tree does 50% more work than main
    res = _ab(repo, "--fail-on", "energy:+20%", "--max-processes", "3", processes=3)  # fixed: no extra pairs
    assert res.returncode == 1, res.stdout + res.stderr
    text = " ".join(res.stdout.split())
    assert "paired t on the log ratios of an A/B session's 3 process pairs" in text
    assert re.search(r"higher, significantly, and may be over the threshold; detects \S+ \(80% power, n=3/3",
                     text), text
    saved = storage.list_runs(repo.parent / "res")
    assert len(saved) == 2  # the merged runs only, not one file per process
    runs = {r.environment.ab.side: r for r in map(storage.load_run, saved)}
    assert runs["base"].environment.ab.processes == 3
    per_process = rounds_per_process(AB_ROUNDS, 3)
    assert per_process == 7
    for run in runs.values():
        counts = [sum(r.process == p for r in run.benchmarks[0].rounds) for p in range(3)]
        assert all(c >= per_process for c in counts), counts  # more where flagged pairs were replaced
    assert [sum(r.process == p for r in runs["base"].benchmarks[0].rounds) for p in range(3)] == [
        sum(r.process == p for r in runs["new"].benchmarks[0].rounds) for p in range(3)]
    log = [line.split() for line in (repo.parent / "turns.log").read_text().splitlines()]
    assert sorted((side, int(p)) for side, p, _ in log) == [(s, p) for s in ("base", "new") for p in range(3)]
    assert len({int(pad) for *_, pad in log}) > 1  # a random layout per process, not one per side


def test_process_pairs_are_the_unit_of_a_multi_process_comparison() -> None:
    """Identical code whose six candidate processes happen to land on layouts averaging +4% (rounds inside
    each process agree to 0.1%): tested round by round, 30 tight pairs call it a regression; tested by process
    pair, six scattered ones do not. A real +30% still fails."""
    effects = [1.10, 0.99, 1.08, 1.00, 1.09, 0.98]

    def side(name: str, level: float, effect_of: list[float]) -> Run:
        rounds = tuple(Round(index=i, energy_j=level * e * (1 + 0.001 * (i % 3)), duration_s=1.0, process=p)
                       for p, e in enumerate(effect_of) for i in range(5))
        return Run(name=name, created="", environment=Environment(ab=ABSide("s", side=name, processes=6)),
                   benchmarks=(Benchmark(name="b", rounds=rounds),))

    base = side("base", 1.0, [1.0] * 6)
    gates = parse_gates(["energy:+1%"])
    same = compare_runs(base, side("new", 1.0, effects), gates)
    assert same.mode == "paired" and same.processes == 6 and same.rows[0].n_new == 6
    assert same.exit_code == 0
    assert compare_runs(base, side("new", 1.3, effects), gates).exit_code == 1
    rounds_alone = compare_runs(*(replace(r, environment=Environment(ab=ABSide("s")), benchmarks=(replace(
        r.benchmarks[0], rounds=tuple(replace(x, process=None) for x in r.benchmarks[0].rounds)),))
        for r in (base, side("new", 1.0, effects))), gates)
    assert rounds_alone.rows[0].n_new == 30 and rounds_alone.exit_code == 1  # the false alarm it prevents


def test_ab_bad_input_is_one_line(repo: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "energybench", "ab", "no-such-ref", "--", "pytest", "x.py"], cwd=repo,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "git ref 'no-such-ref' does not exist" in res.stderr
    assert res.stderr.count("\n") == 1


def test_ab_commands_alternate_and_compare_pairwise(tmp_path: Path) -> None:
    light = f"{sys.executable} -c 'sum(range(2 * 10**6))'"
    heavy = f"{sys.executable} -c 'sum(range(8 * 10**6))'"
    res = subprocess.run([sys.executable, "-m", "energybench", "ab", "--command", light, "--command", heavy,
                          "--rounds", "6", "--fail-on", "energy:+20%", "--results", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "paired t" in res.stdout and "REGRESSION" in res.stdout
    base, new = (storage.load_run(p) for p in storage.list_runs(tmp_path))
    loads = [[r.load for r in run.benchmarks[0].rounds] for run in (base, new)]
    # 6 asked, one more per pair whose sides saw different load on a busy machine
    assert base.kind == "ab-command" and len(loads[0]) == len(loads[1]) == rounds_to_measure(6, flagged_pairs(*loads))


def _run(name: str, values: list[float], path: Path | None = None) -> Run:
    rounds = tuple(Round(index=i, energy_j=v, duration_s=1.0) for i, v in enumerate(values))
    return Run(name=name, created="", benchmarks=(Benchmark(name="b", rounds=rounds),))


def test_history_mode_tests_against_the_spread_between_runs(tmp_path: Path) -> None:
    """Runs of the same code drift by a few percent as a whole; rounds inside each are tight. Against one
    baseline run the drift looks significant; against the history's spread it does not."""
    drifts = [1.00, 1.04, 0.97, 1.03, 0.98]
    for d in drifts:
        storage.save_run(_run("main", [d * (1 + 0.002 * (i % 5)) for i in range(10)]), tmp_path, "main")
    new = _run("pr", [1.05 * (1 + 0.002 * (i % 5)) for i in range(10)])
    base = storage.load_run(storage.list_runs(tmp_path)[-1])
    gates = parse_gates(["energy:+1%"])
    blind_to_drift = compare_runs(base, new, gates, drift=Drift(0.0, "none"))
    assert blind_to_drift.exit_code == 1  # the false alarm a single baseline gives when drift is left out
    alone = compare_runs(base, new, gates)
    assert alone.mode == "independent" and alone.exit_code == 0  # the default between-run spread covers it
    history = storage.history_runs(base, tmp_path, 10)
    assert [r.run_id for r in history] == ["0004_main", "0003_main", "0002_main", "0001_main"]
    with_history = compare_runs(base, new, gates, history=history)
    assert with_history.mode == "history" and with_history.exit_code == 0
    worse = _run("pr", [1.40 * (1 + 0.002 * (i % 5)) for i in range(10)])
    assert compare_runs(base, worse, gates, history=history).exit_code == 1  # a real +40% still fails


def _neighbours(count: int, seconds: float) -> list[int]:
    """Busy loops outside this process's tree (a shell that exits at once leaves them to init), as a CI
    runner's other jobs: this process's own children are its work, not neighbours."""
    loop = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    return [int(subprocess.run(["sh", "-c", '"$0" -c "$1" >/dev/null 2>&1 & echo $!', sys.executable, loop],
                               capture_output=True, text=True, check=True).stdout) for _ in range(count)]


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def _hog(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_steady_neighbour_is_recorded_and_keeps_its_pairs() -> None:
    """Rounds taken while neighbours keep the CPUs busy record it, and carry no flag of their own: two rounds
    under the same neighbours make a pair that stands; a quiet round beside a busy one does not."""
    probe = noise.Probe()
    neighbours = _neighbours(int(probe.count), 3.0)
    time.sleep(0.8)  # the neighbours are up
    rounds = []
    for _ in range(2):
        probe.start()
        _hog(0.5)
        rounds.append(probe.stop())
    for pid in neighbours:
        _stop(pid)
    (first, flags_a), (second, flags_b) = rounds
    assert flags_a == flags_b == ()
    assert first["other_cpus"] >= 0.5 and second["other_cpus"] >= 0.5, rounds
    assert noise.pair_flags(first, second) == ()  # the same neighbours on both sides: the pair stands
    quiet = {**second, "other_cpus": 0.0, "cpu_pressure": 0.0}
    assert noise.pair_flags(first, quiet)[0].startswith("load differs:")


def test_pairs_are_set_aside_only_when_their_sides_differ() -> None:
    busy = {"cpus": 2.0, "other_cpus": 1.0, "cpu_pressure": 0.5, "steal_fraction": 0.0}
    assert noise.pair_flags(busy, dict(busy)) == ()
    assert noise.pair_flags(busy, {**busy, "other_cpus": 0.3})[0].startswith("load differs: 1 vs 0.3")
    assert noise.pair_flags(busy, {**busy, "other_cpus": 0.8}) == ()  # 0.2 CPUs apart: the same load
    assert noise.pair_flags(busy, {**busy, "cpu_pressure": 0.1})[0].startswith("CPU pressure differs")
    own = {"cpus": 2.0, "other_cpus": 0.0, "cpu_pressure": 0.5}  # our own threads waiting for each other
    assert noise.pair_flags(own, {**own, "cpu_pressure": 0.01}) == ()
    assert noise.pair_flags(busy, {**busy, "steal_fraction": 0.2})[0].startswith("steal differs")
    assert noise.pair_flags({**busy, "throttle_events": 2.0}, busy) == ("thermal throttling on one side only",)
    wide = {"cpus": 64.0, "other_cpus": 20.0}  # on 64 CPUs a few CPUs' difference is the same load
    assert noise.pair_flags(wide, {**wide, "other_cpus": 23.0}) == ()
    assert noise.pair_flags({}, busy) == ()  # a side without a recorded load (an older file) is not judged


def test_a_difference_below_a_short_window_s_tick_resolution_does_not_set_a_pair_aside() -> None:
    """/proc/stat counts 10 ms ticks: over a 20 ms window one tick elsewhere reads as 0.5 CPU, and one tick of
    steal as 25% of two CPUs. Such a difference is below what was measured; over a second it is a real one."""
    short = {"cpus": 2.0, "other_cpus": 0.0, "steal_fraction": 0.0, "window_s": 0.02}
    assert noise.pair_flags(short, {**short, "other_cpus": 0.5}) == ()
    assert noise.pair_flags(short, {**short, "steal_fraction": 0.25}) == ()
    assert noise.pair_flags(short, {**short, "other_cpus": 1.5})[0].startswith("load differs")
    long = {**short, "window_s": 1.0}
    assert noise.pair_flags(long, {**long, "other_cpus": 0.5})[0].startswith("load differs")
    assert noise.pair_flags(long, {**long, "steal_fraction": 0.25})[0].startswith("steal differs")
    probe = noise.Probe()
    probe.start()
    time.sleep(0.05)
    assert 0.04 < probe.stop()[0]["window_s"] < 1.0  # every round records its window's length


def test_an_ab_row_whose_every_pair_was_set_aside_is_blind_not_an_error() -> None:
    """A session whose every pair's sides saw different load has nothing to test: no verdict, and a gate that
    could not fail exits EXIT_BLIND (6), not 2 ("no figures") and not a pass."""
    from energybench.render.comparison import format_table
    from energybench.verdicts.power import EXIT_BLIND

    def side(name: str, other: float) -> Run:
        rounds = tuple(Round(index=i, energy_j=1.0, duration_s=1.0, load={"cpus": 2.0, "other_cpus": other,
                                                                           "window_s": 1.0}) for i in range(8))
        return Run(name=name, created="", environment=Environment(ab=ABSide("s", side=name)),
                   benchmarks=(Benchmark(name="b", rounds=rounds),))

    cmp = compare_runs(side("base", 0.0), side("new", 1.5), parse_gates(["energy:+5%"]))
    assert cmp.mode == "paired" and cmp.exit_code == EXIT_BLIND
    row = cmp.rows[0]
    assert row.no_data and "every trial pair set aside (8)" in row.no_data and row.gates[0].blind
    text = format_table(cmp, wide=True)
    assert "BLIND b energy:+5%" in text and "no pair stands" in text


def test_history_command_and_report_show_the_trend_and_its_change_point(tmp_path: Path) -> None:
    rng = __import__("random").Random(4)
    levels = [(1.0 if i < 4 else 1.2) * (1 + rng.gauss(0, 0.015)) for i in range(8)]  # a 20% step at run 5
    for level in levels:
        storage.save_run(_run("main", [level * (1 + 0.001 * (i % 3)) for i in range(8)]), tmp_path, "main")
    res = subprocess.run([sys.executable, "-m", "energybench", "history", "--name", "main", "--figure", "energy_j",
                          "--results", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    marked = [ln for ln in lines if "change point" in ln and "<-" in ln]
    assert len(marked) == 1 and marked[0].lstrip().startswith("0005_main"), res.stdout
    assert "change point: +2" in marked[0] or "change point: +1" in marked[0]
    html = tmp_path / "r.html"
    rep = subprocess.run([sys.executable, "-m", "energybench", "report", str(tmp_path), "--html", str(html)],
                         capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    page = html.read_text(encoding="utf-8")
    assert "Trend over 8 runs" in page and "at run 0005_main" in page and page.count("level changed by") == 1


ADAPTIVE_TESTS = '''
import time
from work import WORK

def test_same(energy):
    energy.pedantic(time.sleep, args=(0.02,), rounds=6, warmup_rounds=0, iterations=1)

def test_work(energy):
    energy.pedantic(time.sleep, args=(WORK,), rounds=6, warmup_rounds=0, iterations=1)
'''


def test_adaptive_ab_session_gives_further_pairs_only_to_undecided_benchmarks(repo: Path) -> None:
    """Looks after 4 process pairs and at the budget of 5: identical code is plainly within +20% at the first
    look and stops (futile: it cannot fail); the +50% benchmark fails, and the design is saved with the runs."""
    (repo / "test_ab.py").write_text(ADAPTIVE_TESTS)
    _git("commit", "-q", "-am", "two benchmarks", cwd=repo)
    (repo / "work.py").write_text("WORK = 0.03\n")
    res = _ab(repo, "--fail-on", "energy:+20%", "--max-processes", "5", processes=2)
    assert res.returncode == 1, res.stdout + res.stderr
    runs = [storage.load_run(p) for p in storage.list_runs(repo.parent / "res")]
    new = next(r for r in runs if r.environment.ab.side == "new")
    assert new.environment.settings.looks == (4, 5)
    by_name = {b.name.split("::")[-1]: b for b in new.benchmarks}
    same, work = by_name["test_same"], by_name["test_work"]
    assert (same.stopped.after, same.stopped.reason) == (4, "futile")
    assert {r.process for r in same.rounds} == {0, 1, 2, 3}  # not measured in the fifth pair
    assert work.stopped.reason in ("claim", "last look")
    assert "REGRESSION" in res.stdout and "test_work" in res.stdout


NOISY_TESTS = '''
import os
import time

# Identical code whose processes scatter by turns: the new side's odd pairs run 1.6x, its even pairs 0.6x the
# baseline's time (pair log ratios +0.47, -0.51, ...), so the paired interval is wide and centred near zero: no
# claim and no futility at the first look, whatever the machine does (random scatter would stop as futile at the
# first look 1-4% of the time, as the 99% futility bound allows).
SIDE = os.environ.get("ENERGYBENCH_AB_SIDE")
PROCESS = int(os.environ.get("ENERGYBENCH_AB_PROCESS") or 0)
SECONDS = 0.02 * ((1.6 if PROCESS % 2 == 0 else 0.6) if SIDE == "new" else 1.0)

def test_noisy(energy):
    energy.pedantic(time.sleep, args=(SECONDS,), rounds=6, warmup_rounds=0, iterations=1)
'''


def test_by_default_the_adaptive_session_stops_at_twice_a_fixed_session_s_time(repo: Path) -> None:
    """Two process pairs asked for, no --max-processes: four pairs are twice the fixed session's time, so a
    benchmark still undecided at the first look (identical code whose process pairs scatter +-50% by turns,
    against +20%) is judged there, with the alpha the design has left, instead of running to 8 pairs."""
    (repo / "test_ab.py").write_text(NOISY_TESTS)
    _git("commit", "-q", "-am", "a noisy benchmark", cwd=repo)
    res = _ab(repo, "--fail-on", "energy:+20%", processes=2)
    assert res.returncode in (0, 6), res.stdout + res.stderr  # passed, or blind at this noise: never a failure
    runs = [storage.load_run(p) for p in storage.list_runs(repo.parent / "res")]
    new = next(r for r in runs if r.environment.ab.side == "new")
    noisy = new.benchmarks[0]
    assert {r.process for r in noisy.rounds} == {0, 1, 2, 3}, noisy.stopped
    assert noisy.stopped.after == 4 and noisy.stopped.reason == "budget", noisy.stopped
    assert new.environment.settings.looks == (4,) and new.environment.settings.spend == (1.0,)
