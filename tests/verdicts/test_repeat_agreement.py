"""How likely an identical run is to repeat a verdict (``verdicts.repeat``), and the correction's limit on one
row's p it rests on (``stats.correction.claim_limit``)."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from verdict_runs import simulated_run

from energybench import stats
from energybench.record import BetweenRuns, Environment, Run
from energybench.stats.correction import adjust, claim_limit
from energybench.verdicts.baseline import run_verdicts
from energybench.verdicts.repeat import BORDERLINE_BELOW, agreement


# ------------------------------------------------------------------------------------------- claim_limit
@pytest.mark.parametrize("method", ["holm", "bh"])
def test_the_claim_limit_is_the_largest_p_the_correction_still_claims(method):
    rng = random.Random(1)
    for _ in range(300):
        m = rng.randint(1, 40)
        ps = [10 ** rng.uniform(-8, 0) for _ in range(m)]
        row = rng.randrange(m)
        limit = claim_limit(ps, row, 0.05, method)
        if limit > 0:
            assert adjust([*ps[:row], limit, *ps[row + 1:]], method)[row] <= 0.05
        if limit < 0.05:  # just above it the row is no longer claimed
            above = limit * (1 + 1e-6) if limit > 0 else 1e-300
            assert adjust([*ps[:row], above, *ps[row + 1:]], method)[row] > 0.05


def test_with_holm_the_limit_of_a_row_behind_clear_ones_is_alpha_over_the_rows_left():
    ps = [1e-9, 1e-8, 0.3, 0.4, 0.02]  # two clear rows claimed; the last one competes with three rows
    assert claim_limit(ps, 4, 0.05, "holm") == pytest.approx(0.05 / 3)
    assert claim_limit(ps, 4, 0.05, "bh") == pytest.approx(0.05 * 3 / 5)
    assert claim_limit([math.nan, 0.5], 1, 0.05) == pytest.approx(0.05)  # an untested row is not in the family


# ------------------------------------------------------------------------------------------------ agreement
def _test(log_mean: float, se: float = 0.05, df: float = 200.0) -> stats.RatioTest:
    return stats.RatioTest(math.exp(log_mean), math.nan, math.nan, 0.5, 0.5, 12, df, "t", log_mean=log_mean,
                           se=se)


def test_a_verdict_at_its_edge_is_a_coin_flip_and_one_far_from_it_repeats():
    margin, se, df, level = 0.05, 0.05, 200.0, 0.01
    edge = -math.log1p(margin) + stats.distributions.t_ppf(level / 2, df) * se  # where a saving is just claimed
    assert agreement("saves", [(1.0, _test(edge, se, df))], level, margin) == pytest.approx(0.5, abs=1e-6)
    assert agreement("same", [(1.0, _test(edge + 1e-9, se, df))], level, margin) == pytest.approx(0.5, abs=1e-6)
    one_step = math.sqrt(2) * se  # how far a repeat's estimate lands from this one's, one standard deviation
    assert agreement("saves", [(1.0, _test(edge - one_step, se, df))], level, margin) == pytest.approx(0.841, abs=1e-3)
    assert agreement("same", [(1.0, _test(0.0, se, df))], level, margin) > 0.99  # 2.5 repeat-steps from either
    assert agreement("costs", [(1.0, _test(1.0, se, df))], level, margin) > 0.999


def test_an_interim_look_that_claimed_counts_as_where_the_row_stands():
    """A row claimed at an early look with overwhelming evidence stands far from the edge even when its last
    test alone would be borderline: the repeat would stop at that look too."""
    margin, se = 0.05, 0.05
    final = _test(-0.2, se)
    interim = _test(-1.0, 0.02, df=50.0)  # claimed at its 0.002 share of the level, with a wide berth
    alone = agreement("saves", [(1.0, final)], 0.01, margin)
    both = agreement("saves", [(0.002, interim), (0.998, final)], 0.01, margin)
    assert alone < BORDERLINE_BELOW < 0.99 < both


def test_no_verdict_to_repeat_has_no_agreement():
    assert math.isnan(agreement("untestable", [(1.0, _test(0.0))], 0.05, 0.05))
    assert math.isnan(agreement("saves", [], 0.05, 0.05))
    assert agreement("saves", [(1.0, _test(-0.5, se=0.0))], 0.05, 0.05) == 1.0


# ---------------------------------------------------------------------------- calibrated over identical runs
def _run(rng: random.Random, ratios: dict[str, float], run_effect: float) -> Run:
    """A simulated run judged with its true between-run spread."""
    run = simulated_run(rng, ratios, run_effect=run_effect)
    return replace(run, environment=Environment(between_runs=BetweenRuns(run_effect, "option")))


def test_over_pairs_of_identical_runs_the_stated_agreement_is_what_happens():
    """Ten rows spread across a claim's edge (0.70-0.88x; a 5% between-run spread, the true one) over 300 pairs
    of identical runs: verdicts stated to repeat at least 95% of the time repeat at least 93% of the time, those
    stated below 65% repeat at most 70% of the time, and the mean stated chance is at most 0.08 above the share
    repeated (0.03-0.06 over seeds 1-8: each row's edge is found with the other rows' p held fixed, but they
    move too, and in this table every row is near its edge). Calling every verdict firm fails the first and
    the last; stating 0.5 everywhere fails the second and the mean."""
    rng = random.Random(7)
    ratios = {f"m{i}": 0.70 + 0.02 * i for i in range(10)}
    stated, repeated, sure, unsure = [], [], [], []
    for _ in range(300):
        first, second = (run_verdicts(_run(rng, ratios, run_effect=0.05)) for _ in range(2))
        for key, vs in first.items():
            same = second[key].outcome == vs.outcome
            stated.append(vs.repeat_agreement)
            repeated.append(same)
            if vs.repeat_agreement >= 0.95:
                sure.append(same)
            elif vs.repeat_agreement < 0.65:
                unsure.append(same)
            assert vs.borderline == (vs.repeat_agreement < BORDERLINE_BELOW)
    assert len(sure) > 500 and sum(sure) / len(sure) >= 0.93
    assert len(unsure) > 300 and sum(unsure) / len(unsure) <= 0.7
    assert abs(sum(stated) / len(stated) - sum(repeated) / len(repeated)) <= 0.08


# ------------------------------------------------------------------------------------------------ shown
def test_the_table_marks_a_verdict_at_its_edge_and_leaves_a_clear_one_alone():
    from energybench.render import cells
    from energybench.render.run_table import format_table
    from energybench.report.run_view import run_view

    rng = random.Random(3)
    for _ in range(50):  # a run whose edge row is borderline (about half of them are)
        run = _run(rng, {"edge": 0.80, "clear": 0.40}, run_effect=0.05)
        view = run_view(run)
        if view.verdicts["w [edge]"].borderline:
            break
    edge, clear = view.verdicts["w [edge]"], view.verdicts["w [clear]"]
    assert edge.borderline and not clear.borderline and clear.outcome == "saves"
    table = format_table(view, width=100)
    assert f"borderline: repeats ~{edge.repeat_agreement * 100:.0f}%" in table
    assert table.count("borderline: repeats") == 1  # the clear saving carries no mark
    assert "an identical run would give that verdict less than 80% of the time" in " ".join(table.split())
    assert cells.verdict(edge).endswith(" (borderline)") and not cells.verdict(clear).endswith(")")


def test_reports_say_what_borderline_means_only_when_a_verdict_is():
    from energybench.render.report_html import render_html
    from energybench.render.report_markdown import render_markdown
    from energybench.render.report_text import render_terminal
    from energybench.report import build_report

    rng = random.Random(3)
    edge_run = clear_run = None
    for _ in range(80):
        run = _run(rng, {"edge": 0.80, "clear": 0.40}, run_effect=0.05)
        near = run_verdicts(run)["w [edge]"].borderline
        edge_run, clear_run = (run, clear_run) if near else (edge_run, run)
        if edge_run and clear_run:
            break
    meaning = "an identical run would give that verdict less than 80% of the time"
    for render in (render_markdown, render_html, lambda r: render_terminal(r, width=100)):
        marked, plain = (" ".join(render(build_report([r])).split()) for r in (edge_run, clear_run))
        assert "(borderline)" in marked and meaning in marked
        assert "(borderline)" not in plain and meaning not in plain


def test_a_row_claimed_at_an_interim_look_is_judged_at_the_last_look_a_repeat_could_reach():
    """A row claimed after 6 of 12 trials spent only its interim share of alpha there; a repeat that did not stop
    there would go on to the last look and claim with far less evidence. Its chance of repeating counts that look
    (at the standard error 12 trials would give): a 40% saving claimed early is not borderline. Judged at its
    interim look alone, the same rows read as low as 0.55."""
    from energybench.record import Stopped
    from energybench.verdicts.baseline import judge_pairs
    from energybench.verdicts.sequential import design

    rng = random.Random(11)
    claimed = []
    for _ in range(300):
        base, bench = simulated_run(rng, {"m": 0.6}, n=6, noise=0.25, run_effect=0.05).benchmarks
        vs = judge_pairs([(base, replace(bench, stopped=Stopped(6, "claim")))], between=BetweenRuns(0.05, "option"),
                         design=design(12))[0]
        if vs.outcome == "saves":
            claimed.append(vs.repeat_agreement)
    assert len(claimed) > 20 and min(claimed) > 0.9
