"""What a gate can see, simulated through ``compare_runs``: the MDE it prints is the effect it catches 80% of the
time, no gate passes silently when it could not have failed, and separate runs do not fail identical code on
drift. Each simulated run is a suite of benchmarks whose level moves between runs (``drift``) and whose rounds
scatter inside a run (``noise``), both log-normal, as ``verdicts.drift`` models them."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest

from energybench.record import Benchmark, Round, Run
from energybench.record.storage import RunFile
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.drift import DEFAULT_SD, Drift
from energybench.verdicts.gate import parse_gates
from energybench.verdicts.power import EXIT_BLIND


def suite(rng: random.Random, benches: int, rounds: int, *, noise: float = 0.03, drift: float = 0.04,
          effect: float = 0.0, name: str = "main") -> Run:
    """One run: benchmark 0 carries ``effect`` (relative), every benchmark its own level shift for this run."""
    out = []
    for b in range(benches):
        level = math.log(1.0 + (effect if b == 0 else 0.0)) + rng.gauss(0, drift)
        out.append(Benchmark(name=f"bench_{b}", rounds=tuple(
            Round(index=i, energy_j=math.exp(level + rng.gauss(0, noise)), duration_s=1.0) for i in range(rounds))))
    return Run(name=name, created="", benchmarks=tuple(out))


def catch_rate(effect: float, sims: int, *, benches: int = 10, rounds: int = 5, drift: float = 0.04,
               seed: int = 1) -> tuple[float, list[float]]:
    """Share of comparisons where the changed benchmark's gate failed, and the MDEs its gate printed."""
    rng = random.Random(seed)
    gates = parse_gates(["energy:+1%"])
    model = Drift(drift, "test")
    caught, mdes = 0, []
    for _ in range(sims):
        cmp = compare_runs(suite(rng, benches, rounds, drift=drift), suite(rng, benches, rounds, drift=drift,
                                                                           effect=effect), gates, drift=model)
        gate = cmp.rows[0].gates[0]
        caught += not gate.passed
        mdes.append(gate.mde)
    return caught / sims, mdes


def test_printed_mde_is_the_effect_caught_80_percent_of_the_time():
    _, mdes = catch_rate(0.0, 60)
    printed = sorted(mdes)[len(mdes) // 2]
    assert 0.1 < printed < 0.5  # 10 gates, 5 rounds, 4% drift: a sanity range, not the claim
    below, _ = catch_rate(math.expm1(0.75 * math.log1p(printed)), 300, seed=2)
    above, _ = catch_rate(math.expm1(1.25 * math.log1p(printed)), 300, seed=3)
    # the simulated 80%-power effect lies within +-25% of the printed MDE (on the log scale)
    assert below < 0.8 < above, (printed, below, above)


@pytest.mark.parametrize("benches", [3, 30])
def test_five_rounds_never_pass_a_fifty_percent_regression_silently(benches):
    rng = random.Random(benches)
    gates = parse_gates(["energy:+5%"])
    codes = [compare_runs(suite(rng, benches, 5), suite(rng, benches, 5, effect=0.5), gates).exit_code
             for _ in range(20)]
    assert set(codes) <= {1, EXIT_BLIND}, codes
    assert codes.count(1) >= 19  # with the default spread a +50% on 5 rounds is caught, not merely flagged


def test_a_gate_that_cannot_fail_says_so_and_exits_blind():
    """Two rounds a side on a machine whose rounds scatter 20%: across 30 gates not even a doubling would fail."""
    rng = random.Random(7)
    gates = parse_gates(["energy:+5%"])
    base, new = suite(rng, 30, 2, noise=0.2), suite(rng, 30, 2, noise=0.2)
    cmp = compare_runs(base, new, gates)
    assert cmp.exit_code == EXIT_BLIND and not cmp.regressions and len(cmp.blind) >= 15
    assert all((g.mde >= 1.0) == g.blind for r in cmp.rows for g in r.gates)  # blind: would miss a doubling
    assert compare_runs(base, new, gates, allow_blind=True).exit_code == 0
    one_round = compare_runs(suite(rng, 3, 1), suite(rng, 3, 1), parse_gates(["energy:+50%"]))
    assert one_round.exit_code == EXIT_BLIND and len(one_round.blind) == 3  # no test at all: never a pass
    from energybench.render.comparison import format_table

    text = format_table(cmp, wide=True)
    assert "BLIND bench_0 energy:+5%" in text and "cannot catch even a doubling" in text
    assert "could not fail (blind): exit 6" in text


def test_identical_code_does_not_fail_on_drift_between_separate_runs():
    rng = random.Random(11)
    gates = parse_gates(["energy:+5%"])
    failed = sum(compare_runs(suite(rng, 30, 10), suite(rng, 30, 10), gates).exit_code == 1 for _ in range(100))
    assert failed <= 5  # the simulation: 100 of 100 failed before the spread was in the test
    assert DEFAULT_SD >= 0.04


def test_every_output_shows_one_p_and_the_mde(tmp_path):
    rng = random.Random(5)
    runs = [RunFile.create(suite(rng, 3, 6, effect=e, name=n), str(tmp_path), n)[1]
            for e, n in ((0.0, "main"), (-0.07, "pr"))]
    md, js = tmp_path / "c.md", tmp_path / "c.json"
    proc = subprocess.run([sys.executable, "-m", "energybench", "compare", "main", "pr", "--results", str(tmp_path),
                           "--fail-on", "energy:+5%", "--markdown", str(md), "--json", str(js), "--wide"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, EXIT_BLIND), proc.stderr
    data = json.loads(js.read_text())
    row, gate = data["rows"][0], data["rows"][0]["gates"][0]
    assert row["p"] == gate["p"] and gate["mde"] > 0 and gate["family"] == 3
    shown = f"{gate['p']:.3g}"
    table_line = next(line for line in proc.stdout.splitlines() if line.startswith("bench_0"))
    gate_line = next(line for line in proc.stdout.splitlines() if " bench_0 energy:+5%" in line)
    assert shown in table_line and f"p adj. {shown}" in gate_line and f"p adj. {shown}" in md.read_text()
    assert "detects +" in gate_line
    # a 7% decrease is not described as "over threshold"
    assert "over threshold but not significant" not in proc.stdout
    assert "not higher" in gate_line or "lower" in gate_line
    assert len(runs) == 2


def test_cli_exits_6_on_a_blind_gate_and_0_when_blind_gates_are_allowed(tmp_path):
    rng = random.Random(9)
    for name in ("main", "pr"):
        RunFile.create(suite(rng, 2, 1, name=name), str(tmp_path), name)  # one round a side: no test at all
    args = [sys.executable, "-m", "energybench", "compare", "main", "pr", "--results", str(tmp_path), "--fail-on",
            "energy:+50%"]
    blind = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert blind.returncode == EXIT_BLIND, blind.stdout + blind.stderr
    text = " ".join(blind.stdout.split())  # long lines wrap at 100 columns
    assert "BLIND bench_0 energy:+50%" in text and "could not fail (blind): exit 6" in text
    allowed = subprocess.run([*args, "--allow-blind"], capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0 and "passing as allowed (--allow-blind)" in " ".join(allowed.stdout.split())
