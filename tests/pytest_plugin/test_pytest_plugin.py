"""The pytest plugin, tested the way pytest-benchmark tests itself: real pytest sessions (pytester), output
matched. A deterministic clock-driven counter (10 W) is injected through the hidden --energy-samplers-from
option so that energy follows the work exactly; one test uses the real detected samplers."""

import json
import re

import numpy  # noqa: F401  - import once here: pytester unloads modules first imported by an inner run,
import pytest  # and numpy's C extension cannot be loaded twice in one process

pytest_plugins = ["pytester"]

FAKE = '''
import time
from energybench.samplers.base import BaseSampler, Domain

class Clock(BaseSampler):
    name = "fake-clock"
    kind = "counter"
    resolution_s = 0.0

    def __init__(self):
        self.t0 = time.monotonic()

    def domains(self):
        return [Domain("cpu:package-0", "measured", "fake 10 W clock counter")]

    def read(self):
        return {"cpu:package-0": 10.0 * (time.monotonic() - self.t0)}

def samplers():
    return [Clock()]
'''

FAST = ["--energy-samplers-from", "fakesamplers:samplers", "-p", "no:randomly"]


def bench_file(pytester, work=0.002, extra=""):
    pytester.makepyfile(
        test_work=f"""
import time
import pytest

@pytest.mark.energy(min_time=0.01, rounds=10)
def test_sleep(energy):
    energy.items = 4
    assert energy(time.sleep, {work}) is None
{extra}
def test_plain():
    pass
"""
    )


@pytest.fixture
def fake(pytester):
    pytester.makepyfile(fakesamplers=FAKE)
    pytester.syspathinsert()
    return pytester


def saved(pytester, n):
    files = sorted((pytester.path / "results").glob("*.json"))
    return json.loads(files[n].read_text())


def test_fixture_measures_saves_and_prints_a_table(fake):
    bench_file(fake)
    res = fake.runpytest(*FAST, "--energy-save", "main")
    res.assert_outcomes(passed=2)
    res.stdout.fnmatch_lines([
        "*energy benchmarks*",
        "test*energy/call*energy/item*power*time/call*CO2e/call*source*rounds x iters*spread*",
        "test_work.py (1 test)",
        "test_sleep*mJ*mJ*10 W*ms*measured*10 x *",
        "energy results saved to results/0001_main.json",
    ])
    run = saved(fake, 0)
    bench = run["benchmarks"][0]
    assert run["run_id"] == "0001_main" and bench["name"] == "test_work.py::test_sleep"
    assert len(bench["rounds"]) == 10
    it = bench["extra"]["iterations"]
    for r in bench["rounds"]:  # each round is its whole window: all its calls and their items
        assert r["iterations"] == it and r["duration_s"] >= 0.009  # calibrated: a window lasts at least min_time
        assert r["energy_j"] == pytest.approx(10.0 * r["duration_s"], rel=0.02)  # 10 W
        assert r["items"] == 4 * it
    assert run["machine"]["samplers"][0]["name"] == "fake-clock"


def test_more_work_fails_the_gate_and_same_work_passes(fake):
    # One 10 ms sleep per call, then 20 ms: a busy CI runner delays every sleep by a scheduler quantum or so,
    # which is a small share of 10 ms and would be a large one of 2 ms. Its rounds flagged saturated are
    # left out, and the doubled work must still fail the gate on the 5 rounds per side that may remain.
    bench_file(fake, work=0.01)
    fake.runpytest(*FAST, "--energy-autosave").assert_outcomes(passed=2)
    same = fake.runpytest(*FAST, "--energy-autosave", "--energy-compare", "--energy-compare-fail", "energy:+5%")
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*PASS test_work.py::test_sleep energy:+5%*", "energy gates passed*"])
    bench_file(fake, work=0.02)  # twice the work
    worse = fake.runpytest(*FAST, "--energy-compare", "1", "--energy-compare-fail", "energy_per_item:+5%")
    assert worse.ret == 1
    worse.stdout.fnmatch_lines([
        "*test_work.py::test_sleep*+*%*REGRESSION*",
        "FAIL test_work.py::test_sleep energy_per_item:+5%: energy per item *",
        "1 energy regression(s)",
    ])
    text = " ".join(line.strip() for line in worse.stdout.lines)  # long lines wrap at 100 columns, indented
    assert re.search(r"change \+\d+% \[95% CI \+[\d.]+%, \+[\d.]+%\], p adj\. \S+: higher, significantly, and may be "
                     r"over the threshold; detects \+[\d.]+% \(80% power, n=\d+/\d+", text)
    assert max(len(line) for line in worse.stdout.lines if not line.startswith(("benchmark:", "plugins:"))) <= 100


def test_no_baseline_passes_unless_required(fake):
    bench_file(fake)
    first = fake.runpytest(*FAST, "--energy-compare-fail", "energy:+5%")
    assert first.ret == 0
    first.stdout.fnmatch_lines(["*no baseline to compare against yet: passing*"])
    strict = fake.runpytest(*FAST, "--energy-compare-fail", "energy:+5%", "--energy-require-baseline")
    assert strict.ret == 4  # bad input, as `energybench compare --require-baseline` (exit 2 there)
    strict.stdout.fnmatch_lines(["*--energy-require-baseline*"])


def test_malformed_gate_is_a_usage_error_with_the_grammar(fake):
    bench_file(fake)
    res = fake.runpytest(*FAST, "--energy-compare-fail", "energy:+5")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*bad gate 'energy:+5': missing unit*gate grammar: METRIC:+N%*"])


def test_marker_rejects_unknown_keywords_and_fixture_is_single_use(fake):
    fake.makepyfile(
        test_bad="""
import pytest

@pytest.mark.energy(roundz=3)
def test_typo(energy):
    energy(lambda: None)

@pytest.mark.energy(rounds=2, min_time=0.001)
def test_twice(energy):
    energy(lambda: None)
    energy(lambda: None)
"""
    )
    res = fake.runpytest(*FAST)
    res.assert_outcomes(errors=1, failed=1)
    res.stdout.fnmatch_lines(["*unknown keyword(s) roundz; allowed: rounds, warmup_rounds, iterations*",
                              "*can be used once per test*"])


def test_pedantic_runs_exact_rounds_with_setup_and_teardown(fake):
    fake.makepyfile(
        test_ped="""
calls = {"setup": 0, "teardown": 0, "target": 0}

def test_pedantic(energy):
    def setup():
        calls["setup"] += 1
        return (3,), {}
    def target(x):
        calls["target"] += 1
        return x * 2
    def teardown(x):
        calls["teardown"] += 1
    assert energy.pedantic(target, setup=setup, teardown=teardown, rounds=4, warmup_rounds=1) == 6
    assert calls == {"setup": 5, "teardown": 5, "target": 5}
"""
    )
    res = fake.runpytest(*FAST, "--energy-json", "out.json")
    res.assert_outcomes(passed=1)
    data = json.loads((fake.path / "out.json").read_text())
    assert [len(b["rounds"]) for b in data["benchmarks"]] == [4]
    assert data["benchmarks"][0]["extra"]["iterations"] == 1


def test_skip_only_and_min_rounds(fake):
    bench_file(fake)
    fake.runpytest(*FAST, "--energy-skip").assert_outcomes(passed=1, skipped=1)
    fake.runpytest(*FAST, "--energy-only").assert_outcomes(passed=1, skipped=1)
    fake.runpytest(*FAST, "--energy-min-rounds", "12", "--energy-json", "o.json").assert_outcomes(passed=2)
    assert len(json.loads((fake.path / "o.json").read_text())["benchmarks"][0]["rounds"]) == 12


def test_energy_option_adds_energy_to_pytest_benchmark(fake):
    fake.makepyfile(
        test_pb="""
import time

def test_pb(benchmark):
    benchmark.pedantic(time.sleep, args=(0.005,), rounds=5, iterations=2)
    test_pb.bm = benchmark

def test_zz_check():
    info = test_pb.bm.extra_info
    per_call = test_pb.bm.stats.stats.mean
    assert info["energy_source"] == "measured"
    assert abs(info["energy_power_w"] - 10.0) < 0.5
    assert abs(info["energy_per_call_j"] - 10.0 * per_call) < 0.05 * 10.0 * per_call
    assert abs(info["energy_j"] - 10.0 * info["energy_window_s"]) < 0.05 * info["energy_j"]  # the window's
"""
    )
    res = fake.runpytest(*FAST, "--energy", "--benchmark-json", "pb.json")
    res.assert_outcomes(passed=2)
    res.stdout.fnmatch_lines(["*energy of pytest-benchmark rounds*", "test_pb.py::test_pb: * mJ/call, *W (measured)"])
    extra = json.loads((fake.path / "pb.json").read_text())["benchmarks"][0]["extra_info"]
    assert extra["energy_round_j"] == pytest.approx(2 * extra["energy_per_call_j"])
    assert extra["energy_j"] >= 0.99 * 5 * extra["energy_round_j"]  # the window holds all 5 rounds


def test_real_detected_samplers(pytester):
    """No injection: whatever this machine offers (RAPL, NVML or the CPU model) is detected and used."""
    pytester.makepyfile(
        test_real="""
import pytest

@pytest.mark.energy(rounds=3, warmup_rounds=0)
def test_sum(energy):
    energy(sum, range(20000))
"""
    )
    res = pytester.runpytest_subprocess("--energy-json", "real.json")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["test_sum*J*W*3 x *"])
    run = json.loads((pytester.path / "real.json").read_text())
    rounds = run["benchmarks"][0]["rounds"]
    assert all(r["energy_j"] > 0 and r["source"] in ("measured", "estimated") for r in rounds)
    assert run["machine"]["samplers"] and run["machine"]["cpu_model"]


COARSE = FAKE + '''
class Coarse(BaseSampler):
    """A GPU-like counter that only moves every second."""
    name = "fake-coarse"
    kind = "counter"
    resolution_s = 1.0

    def __init__(self):
        self.t0 = time.monotonic()

    def domains(self):
        return [Domain("gpu:0", "measured", "fake counter updated every 1 s")]

    def read(self):
        return {"gpu:0": 100.0 * int(time.monotonic() - self.t0)}

def with_coarse():
    return [Clock(), Coarse()]
'''


def test_rounds_that_miss_a_device_are_partial_shown_and_left_out(pytester):
    """Uncalibrated 5 ms rounds on a counter that moves every second: the GPU has no figure in any round,
    so no round's total is the round's energy. They are saved as partial, warned about, and not summarised."""
    pytester.makepyfile(fakesamplers=COARSE)
    pytester.syspathinsert()
    pytester.makepyfile(test_short="""
import time

def test_short(energy):
    energy.pedantic(time.sleep, args=(0.005,), rounds=3, iterations=1, warmup_rounds=0)
""")
    res = pytester.runpytest("--energy-samplers-from", "fakesamplers:with_coarse", "-p", "no:randomly",
                             "--energy-save", "short")
    assert res.ret == 0
    text = " ".join(line.strip() for line in res.stdout.lines)  # the table wraps long warnings
    assert ("warning: test_short.py::test_short: 3 of 3 rounds partial (trial 0, 1, 2: no figure for gpu:0): "
            "left out of medians, ratios and gates") in text
    bench = saved(pytester, 0)["benchmarks"][0]
    assert [r["missing"] for r in bench["rounds"]] == [["gpu:0"]] * 3
    assert bench["stats"] == {}  # nothing summarised from partial rounds
TABLE = """
import time
import pytest

@pytest.mark.energy(min_time=0.01, rounds=3)
@pytest.mark.parametrize("size", [1, 3])
def test_sleep(energy, size):
    energy(time.sleep, 0.001 * size)

@pytest.mark.energy(min_time=0.01, rounds=3)
def test_a_long_name_that_makes_the_table_wider_than_any_terminal_would_like_it_to_be(energy):
    energy(time.sleep, 0.002)
"""


def _table(res) -> list[str]:  # noqa: ANN001
    lines = res.stdout.lines
    start = next(i for i, ln in enumerate(lines) if "energy benchmarks" in ln)
    end = next(i for i, ln in enumerate(lines) if i > start and (ln.startswith(("note:", "energy ", "warning:", "("))
                                                                 or "passed" in ln))
    return lines[start + 1:end]


def test_table_sorts_groups_and_picks_columns_like_pytest_benchmark(fake, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    fake.makepyfile(test_t=TABLE)
    res = fake.runpytest(*FAST)
    res.assert_outcomes(passed=3)
    table = _table(res)
    assert max(len(ln) for ln in table) <= 100  # not a terminal: 100 columns, intervals folded under figures
    rows = [ln.split() for ln in table if ln.startswith("test_") and "(3 tests)" not in ln]
    assert [r[0] for r in rows][::2] == ["test_sleep[1]", "test_sleep[3]"]  # lowest energy per call first
    cut = rows[1][0]  # the very long name is cut in the middle only when leaving columns out was not enough
    assert cut.startswith("test_a_long_name") and "\u2026" in cut and cut.endswith("it_to_be")
    assert "(left out to fit the terminal: rounds x iters, power, CO2e/call, time/call;" in res.stdout.str()
    assert all(len(ln) <= 100 for ln in res.stdout.lines if ln.startswith(("warning:", "  ")))
    res = fake.runpytest(*FAST, "--energy-sort", "fullname", "--energy-columns", "energy,source",
                         "--energy-group-by", "func")
    table = _table(res)
    assert table[0].split()[:3] == ["test", "energy/call", "source"]  # only the chosen columns (CI folded below)
    assert "test_a_long_name_that_makes_the_table_wider_than_any_terminal_would_like_it_to_be (1 test)" in table
    assert "test_sleep (2 tests)" in table
    res = fake.runpytest(*FAST, "--energy-group-by", "param:size", "--energy-sort", "time")
    # groups in the order of their fastest test, the test without the parameter in its own group
    res.stdout.fnmatch_lines(["param:size=1 (1 test)", "test_sleep?1? *", "param:size=- (1 test)", "test_a_long*",
                              "param:size=3 (1 test)", "test_sleep?3? *"])


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--energy-sort", "fastest", "unknown sort key fastest; use a comma list of energy, item"),
    ("--energy-columns", "energy,watts", "unknown column watts"),
    ("--energy-group-by", "colour", "unknown group-by key colour"),
    ("--energy-progress", "soon", "give seconds >= 0"),
])
def test_bad_table_option_is_a_usage_error(fake, flag, value, words):
    bench_file(fake)
    res = fake.runpytest(*FAST, flag, value)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines([f"*{flag} '{value}': {words}*"])


def test_disable_runs_each_benchmark_once_unmeasured(fake):
    fake.makepyfile(test_d="""
import pytest
calls = []

def test_once(energy):
    assert energy(calls.append, 1) is None

def test_pedantic_once(energy):
    seen = []
    energy.pedantic(seen.append, setup=lambda: ((2,), {}), teardown=lambda x: seen.append(-x), rounds=5)
    assert seen == [2, -2]

def test_zz_count():
    assert calls == [1]
""")
    res = fake.runpytest(*FAST, "--energy-disable", "--energy-save", "main", "--energy-fail-on", "energy:+5%")
    res.assert_outcomes(passed=3)
    assert res.ret == 0
    res.stdout.fnmatch_lines(["energy benchmarks ran once each, unmeasured (--energy-disable)",
                              "note: no energy benchmarks ran: nothing saved or compared"])
    assert "energy/call" not in res.stdout.str() and not (fake.path / "results").exists()


@pytest.mark.parametrize("flag", ["--energy-fail-on", "--energy-compare-fail"])
def test_a_test_path_after_a_gate_stays_a_path(fake, flag):
    bench_file(fake)
    fake.makepyfile(test_other="def test_other():\n    pass\n")
    res = fake.runpytest(*FAST, flag, "energy:+5%", "test_other.py")
    res.assert_outcomes(passed=1)  # only test_other.py ran: the path was not swallowed as a second gate
    both = fake.runpytest(*FAST, flag, "energy:+5%,duration:+10%", flag, "co2e:+1mg", "test_other.py")
    both.assert_outcomes(passed=1)


def test_progress_lines_count_down_with_elapsed_and_left(fake):
    fake.makepyfile(test_t=TABLE)
    res = fake.runpytest(*FAST, "--energy-progress", "0")
    res.assert_outcomes(passed=3)
    res.stdout.fnmatch_lines(["energybench: 1/3 energy benchmarks, * elapsed, about * left",
                              "energybench: 2/3 energy benchmarks, * elapsed, about * left"])
    assert "3/3 energy benchmarks" not in res.stdout.str()  # the table follows; no line for the last one
    quiet = fake.runpytest(*FAST, "--energy-progress", "off")
    assert "energy benchmarks, " not in quiet.stdout.str()
    default = fake.runpytest(*FAST)  # a session of a second or two: quiet by default (every 10 s)
    assert "energy benchmarks, " not in default.stdout.str()


class _QuietMachine:
    """Stands in for the noise guard's probe (energybench.measuring.noise.Probe): this test is about headlines, and a
    neighbour saturating a shared CI machine must not leave every trial pair out of it."""

    def start(self) -> None:
        pass

    def stop(self):  # noqa: ANN201
        return {}, ()


def test_tests_that_compare_methods_get_headlines_within_the_quality_budget(fake, monkeypatch):
    monkeypatch.setattr("energybench.pytest_plugin.fixture.Probe", _QuietMachine)
    fake.makepyfile(test_m="""
import time
import pytest

def work(energy, seconds, acc):
    energy.quality = {"metric": "accuracy", "value": acc, "higher_is_better": True}
    energy(time.sleep, seconds)

@pytest.mark.energy(name="matmul", rounds=8, min_time=0.01)
def test_base(energy):
    work(energy, 0.02, 0.900)

@pytest.mark.energy(name="matmul", method="half", rounds=8, min_time=0.01)
def test_half(energy):
    work(energy, 0.015, 0.899)

@pytest.mark.energy(name="matmul", method="tiny", rounds=8, min_time=0.01)
def test_tiny(energy):
    work(energy, 0.005, 0.600)
""")  # sleeps of milliseconds, not fractions of one: a sleep's overshoot (0.1-0.3 ms on a busy VM) stays small
    res = fake.runpytest(*FAST)
    res.assert_outcomes(passed=3)
    text = " ".join(line.strip() for line in res.stdout.lines)
    assert re.search(r"headlines: matmul: half saves 2\d% \[\d+%, \d+%\] energy per call \(measured\); "
                     r"accuracy 0\.899 vs 0\.9, -0\.1%, within 1\.0% of the baseline's accuracy; left out: tiny -7\d% "
                     r"\(accuracy 0\.6 vs 0\.9, -33%: over the 1\.0% budget\)", text), text[-1500:]
    loose = " ".join(ln.strip() for ln in fake.runpytest(*FAST, "--energy-quality-budget", "any").stdout.lines)
    assert "matmul: tiny saves 7" in loose
