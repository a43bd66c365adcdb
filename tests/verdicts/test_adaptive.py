"""The adaptive A/B session's budget (``verdicts.adaptive``): when the undecided benchmarks cannot reach the next
look within the budget, that look becomes the last, its gates are judged with the last look's share of alpha,
and the error rate still holds. Sessions are simulated through ``compare_runs``: paired rounds whose log
ratios scatter with ``noise`` per process pair, as ``energybench ab`` merges them."""

from __future__ import annotations

import math
import random

from energybench.record import ABSide, Benchmark, Environment, Round, Run
from energybench.verdicts.adaptive import BUDGET_FACTOR, Looks, replay, session_design, up_to
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.gate import parse_gates

GATES = parse_gates(["energy:+5%"])


def session(rng: random.Random, benches: int, pairs: int, effects: dict[int, float], noise: float) -> tuple[Run, Run]:
    """An A/B session's two sides, ``pairs`` process pairs of 2 rounds per benchmark."""
    sides: list[list[Benchmark]] = [[], []]
    for b in range(benches):
        rounds: list[list[Round]] = [[], []]
        for p in range(pairs):
            shift = rng.gauss(0, noise)  # the process pair's own effect
            for k in range(2):
                base = math.exp(rng.gauss(0, 0.01))
                rounds[0].append(Round(index=k, energy_j=base, duration_s=1.0, process=p))
                new = base * (1 + effects.get(b, 0.0)) * math.exp(shift)
                rounds[1].append(Round(index=k, energy_j=new, duration_s=1.0, process=p))
        for s in (0, 1):
            sides[s].append(Benchmark(name=f"bench_{b}", rounds=tuple(rounds[s])))
    return tuple(Run(name=n, created="", environment=Environment(ab=ABSide("sim", side=n, processes=pairs)),
                     benchmarks=tuple(bs)) for n, bs in zip(("base", "new"), sides, strict=True))  # type: ignore


def adaptive(base: Run, new: Run, max_pairs: int, fixed: int) -> tuple[int, Looks, int]:
    """The looks as ``energybench ab`` takes them; (exit code, the looks, benchmark-pairs spent)."""
    cmp, looks, spent = replay(base, new, GATES, max_pairs, fixed)
    return cmp.exit_code, looks, spent


def test_a_look_the_budget_cannot_pass_becomes_the_last_with_the_alpha_left() -> None:
    rng = random.Random(3)
    base, new = session(rng, 3, 40, {0: 0.05}, 0.04)  # a borderline row keeps looking
    looks = Looks(session_design(40))
    cmp = compare_runs(up_to(base, dict.fromkeys((b.key for b in base.benchmarks), 7)),
                       up_to(new, dict.fromkeys((b.key for b in new.benchmarks), 7)), GATES)
    decided = looks.decide(cmp, 7, lambda rows, pairs: False)  # nothing more is affordable after pair 7
    assert looks.design.looks == (4, 7)
    assert math.isclose(sum(looks.design.spend), 1.0) and looks.design.spend[0] == session_design(40).spend[0]
    assert all(reason in ("claim", "futile", "budget") for reason in decided.values())
    assert set(decided) == {r.key for r in cmp.rows}  # every gate is judged at the last look
    budget = [k for k, why in decided.items() if why == "budget"]
    assert budget and all(looks.stopped[k] == (7, "budget") for k in budget)


def test_the_budget_keeps_sessions_within_twice_a_fixed_one_and_false_alarms_rare() -> None:
    rng = random.Random(11)
    false_alarms, costs = 0, []
    for _ in range(30):
        base, new = session(rng, 12, 40, {}, 0.05)
        code, looks, spent = adaptive(base, new, 40, 10)
        false_alarms += code == 1
        costs.append(spent / (12 * 10))
    assert false_alarms <= 1  # alpha 0.01 across the session's gates, with its looks
    assert max(costs) <= BUDGET_FACTOR


def test_an_undecided_benchmark_gets_more_pairs_than_a_fixed_session() -> None:
    """+8% at 8% per-pair noise on one of 12: the adaptive session catches it more often than 10 fixed pairs."""
    rng = random.Random(5)
    fixed_caught = adaptive_caught = 0
    for _ in range(30):
        base, new = session(rng, 12, 40, {0: 0.08}, 0.08)
        ten = {b.key: 10 for b in new.benchmarks}
        fixed_caught += compare_runs(up_to(base, ten), up_to(new, ten), GATES).exit_code == 1
        code, looks, _ = adaptive(base, new, 40, 10)
        adaptive_caught += code == 1
    assert adaptive_caught > fixed_caught, (adaptive_caught, fixed_caught)


def test_energybench_ab_prices_the_next_pairs_at_the_last_pair_s_time_against_twice_a_fixed_session() -> None:
    from energybench.cli.ab import _affordable

    walls = [10.0] * 4 + [6.0] * 16  # 4 pairs with every benchmark, then fewer: 136 s of 200
    assert _affordable(walls, 10)(5, 10)  # 136 + 10 x 6 = 196
    assert not _affordable(walls, 10)(5, 11)  # 202
    assert _affordable([], 10)(30, 4)  # nothing measured yet: no reason to stop
