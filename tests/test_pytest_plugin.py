"""The pytest plugin, tested the way pytest-benchmark tests itself: real pytest sessions (pytester), output
matched. A deterministic clock-driven counter (10 W) is injected through the hidden --energy-samplers-from
option so that energy follows the work exactly; one test uses the real detected samplers."""

import json

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
        "benchmark*energy/call*power*time/call*CO2e/call*energy/item*source*rounds x iters*spread*",
        "test_work.py::test_sleep*mJ*10 W*ms*measured*10 x *",
        "energy results saved to results/0001_main.json",
    ])
    run = saved(fake, 0)
    bench = run["benchmarks"][0]
    assert run["run_id"] == "0001_main" and bench["name"] == "test_work.py::test_sleep"
    assert len(bench["rounds"]) == 10
    it = bench["extra"]["iterations"]
    for r in bench["rounds"]:
        assert r["duration_s"] * it >= 0.009  # calibrated: each window lasts at least min_time
        assert r["energy_j"] == pytest.approx(10.0 * r["duration_s"], rel=0.02)  # per call, 10 W
        assert r["items"] == 4
    assert run["machine"]["samplers"][0]["name"] == "fake-clock"


def test_more_work_fails_the_gate_and_same_work_passes(fake):
    bench_file(fake, work=0.002)
    fake.runpytest(*FAST, "--energy-autosave").assert_outcomes(passed=2)
    same = fake.runpytest(*FAST, "--energy-autosave", "--energy-compare", "--energy-compare-fail", "energy:+5%")
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*PASS test_work.py::test_sleep energy:+5%*", "energy gates passed"])
    bench_file(fake, work=0.0025)  # +25% work
    worse = fake.runpytest(*FAST, "--energy-compare", "1", "--energy-compare-fail", "energy_per_item:+5%")
    assert worse.ret == 1
    worse.stdout.fnmatch_lines([
        "*test_work.py::test_sleep*+*%*REGRESSION*",
        "FAIL test_work.py::test_sleep energy_per_item:+5%*(median), change +*% *95% CI*, p=*, n=*/*: over*",
        "1 energy regression(s)",
    ])


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
    assert abs(info["energy_j"] - 10.0 * per_call) < 0.05 * 10.0 * per_call
"""
    )
    res = fake.runpytest(*FAST, "--energy", "--benchmark-json", "pb.json")
    res.assert_outcomes(passed=2)
    res.stdout.fnmatch_lines(["*energy of pytest-benchmark rounds*", "test_pb.py::test_pb: * mJ/call, *W (measured)"])
    extra = json.loads((fake.path / "pb.json").read_text())["benchmarks"][0]["extra_info"]
    assert extra["energy_j"] > 0 and extra["energy_round_j"] == pytest.approx(2 * extra["energy_j"])


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
    res.stdout.fnmatch_lines(["test_real.py::test_sum*J*W*3 x *"])
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
    res.stdout.fnmatch_lines(["*warning: test_short.py::test_short: 3 of 3 rounds partial (trial 0, 1, 2: "
                              "no figure for gpu:0): left out of medians, ratios and gates*"])
    bench = saved(pytester, 0)["benchmarks"][0]
    assert [r["missing"] for r in bench["rounds"]] == [["gpu:0"]] * 3
    assert bench["stats"] == {}  # nothing summarised from partial rounds
