"""The report's figures: ratios with CIs, Pareto front, domains, timeline choice, CO2e by region, bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest
from report_fixtures import FAKE_FACTORS, fake_lookup, make_bench, make_run

from energybench import stats
from energybench.errors import ConfigError, ResultsError
from energybench.render import cells, run_table
from energybench.report import run_view
from energybench.report.model import build_report, pareto_front
from energybench.verdicts.baseline import vs_baseline


def _by_subject(report):
    return {e.method: e for e in report.entries}


def test_pareto_front_lower_is_better():
    # (energy, perplexity): b dominates d (less energy, lower perplexity); a, b, c trade off
    pts = [(10.0, 1.0), (5.0, 2.0), (2.0, 5.0), (6.0, 3.0)]
    assert pareto_front(pts, higher_is_better=False) == [True, True, True, False]


def test_pareto_front_higher_is_better_and_ties():
    pts = [(10.0, 0.9), (5.0, 0.9), (5.0, 0.8), (1.0, 0.5)]
    # (10, .9) is beaten by (5, .9): same accuracy, less energy; (5, .8) by (5, .9)
    assert pareto_front(pts, higher_is_better=True) == [False, True, False, True]


def test_pareto_front_treats_tiny_quality_differences_as_ties():
    # fp16-like: twice the energy for a perplexity better only in the 5th digit: dominated
    assert pareto_front([(1.0, 13.21190), (2.0, 13.21180)], higher_is_better=False) == [True, False]
    assert pareto_front([(1.0, 13.2), (2.0, 12.0)], higher_is_better=False) == [True, True]


def test_ratios_and_front_from_the_rounds():
    report = build_report([make_run()], lookup=fake_lookup)
    e = _by_subject(report)
    base = e["baseline"]
    assert base.is_baseline and base.ratio.value == 1.0
    for name in ("pruned-50", "int8-dynamic", "distilled", "pruned-90"):
        r = e[name].ratio
        # the geometric mean of per-trial ratios: close to the ratio of medians on these tight rounds
        assert r.value == pytest.approx(e[name].per_item.value / base.per_item.value, rel=0.03)
        assert r.low <= r.value <= r.high
    # the fixture's int8 beats pruned-50 and pruned-90 on both counts
    assert {n for n, x in e.items() if x.on_front} == {"baseline", "int8-dynamic", "distilled"}
    assert e["int8-dynamic"].ratio.high < 1.0  # clearly saves energy


def test_ratio_ci_comes_from_the_paired_trials():
    """The ratio and its CI are the paired t interval of the per-trial log ratios (trial t against trial t),
    with the run's between-run spread (the 5% default for a file that does not record one)."""
    run = make_run()
    report = build_report([run], lookup=fake_lookup)
    e = _by_subject(report)["pruned-50"]
    per_round = {b.method: [r.energy_j / r.items for r in b.rounds] for b in run.benchmarks}
    test = stats.paired_ratio(per_round["baseline"], per_round["pruned-50"], between_sd=0.05)
    assert (e.ratio.value, e.ratio.low, e.ratio.high) == pytest.approx((test.ratio, test.ci_low, test.ci_high))
    assert e.vs.n == 5 and e.vs.test == "paired t on log ratios + between-run spread" and e.vs.correction == "Holm"
    assert e.vs.between is not None and (e.vs.between.sd, e.vs.between.source) == (0.05, "default")


def test_energy_per_item_is_the_median_of_the_rounds_with_its_ci():
    run = make_run()
    e = _by_subject(build_report([run], lookup=fake_lookup))
    for b in run.benchmarks:
        median = stats.median([r.energy_j / r.items for r in b.rounds])
        assert e[b.method].per_item.value == pytest.approx(median)
        assert e[b.method].per_item.low <= median <= e[b.method].per_item.high


def test_domains_add_up_to_the_median_and_timeline_is_median_round():
    run = make_run()
    e = _by_subject(build_report([run], lookup=fake_lookup))["baseline"]
    rounds = run.benchmarks[0].rounds
    assert sum(e.domains_per_item.values()) == pytest.approx(e.per_item.value)
    package = sum(r.domains["cpu:package"] for r in rounds) / sum(r.energy_j for r in rounds)
    assert e.domains_per_item["cpu:package"] / e.per_item.value == pytest.approx(package)
    ordered = sorted(rounds, key=lambda r: r.energy_j)
    assert e.timeline_round == ordered[2].index
    assert len(e.timeline) == len(ordered[2].timeline)


def test_no_timeline_is_empty_not_an_error():
    run = make_run(benchmarks=[make_bench("b", "baseline", 1.0, None, timeline=False)])
    e = build_report([run], lookup=fake_lookup).entries[0]
    assert e.timeline == () and e.timeline_round is None


def test_regions_user_first_with_run_factor_then_lookups():
    report = build_report([make_run(region="DEU")], lookup=fake_lookup)
    names = [r.name for r in report.regions]
    assert names[0] == "DEU" and report.regions[0].is_user
    assert names[1:] == ["FRA", "USA", "CHN", "IND"]  # the user's region is not repeated
    kwh = report.region_joules / 3.6e6
    assert report.regions[0].co2e_g == pytest.approx(kwh * 56.0)  # the factor recorded in the run
    assert report.regions[-1].co2e_g == pytest.approx(kwh * FAKE_FACTORS["IND"])


def test_regions_with_real_codecarbon_factors():
    report = build_report([make_run(region=None)], regions=["FRA", "IND"])
    fra, ind = report.regions
    assert not fra.is_user and "codecarbon" in fra.source and fra.year
    assert ind.co2e_g / fra.co2e_g == pytest.approx(ind.intensity_g_per_kwh / fra.intensity_g_per_kwh)
    assert ind.intensity_g_per_kwh > 5 * fra.intensity_g_per_kwh  # coal-heavy vs nuclear-heavy grid
    assert any("no carbon intensity" in n.text for n in report.notices)


def test_every_stability_warning_and_estimated_sampler_is_a_notice():
    noisy = make_bench("b", "pruned", 0.7, None, spread=0.6, rounds=8)
    run = make_run(benchmarks=[make_bench("b", "baseline", 1.0, None), noisy])
    assert noisy.stability_warning, "fixture should be unstable"
    notices = build_report([run], lookup=fake_lookup).notices
    assert any(n.where == "b / pruned" and "unstable" in n.text for n in notices)
    assert any(n.where.startswith("sampler cpu-model") and "estimated" in n.text for n in notices)


def test_several_runs_keep_only_shared_benchmarks():
    a = make_run("0001_a", benchmarks=[make_bench("x", "baseline", 1, None), make_bench("y", "baseline", 1, None)])
    b = make_run("0002_b", benchmarks=[make_bench("x", "baseline", 1, None), make_bench("z", "baseline", 1, None)])
    report = build_report([a, b], lookup=fake_lookup)
    assert {(e.run, e.benchmark) for e in report.entries} == {("0001_a", "x"), ("0002_b", "x")}


def test_bad_input_is_one_clear_error():
    a = make_run("0001_a", benchmarks=[make_bench("x", "baseline", 1, None)])
    b = make_run("0002_b", benchmarks=[make_bench("y", "baseline", 1, None)])
    with pytest.raises(ResultsError, match="share no benchmark"):
        build_report([a, b], lookup=fake_lookup)
    with pytest.raises(ResultsError, match="no runs"):
        build_report([], lookup=fake_lookup)
    empty = replace(a, benchmarks=())
    with pytest.raises(ResultsError, match="has no benchmarks"):
        build_report([empty], lookup=fake_lookup)
    with pytest.raises(ConfigError, match="pick one of: baseline"):
        build_report([a], baseline="int4", lookup=fake_lookup)


def test_other_baseline_method():
    report = build_report([make_run()], baseline="int8-dynamic", lookup=fake_lookup)
    e = _by_subject(report)
    assert e["int8-dynamic"].is_baseline and not e["baseline"].is_baseline
    assert e["baseline"].ratio.value > 1.5  # the uncompressed model costs more than int8


def test_verdict_is_the_runners_and_honest_about_noise():
    same = make_bench("b", "same-cost", 1.0, None, spread=0.3, rounds=6)
    run = make_run(benchmarks=[make_bench("b", "baseline", 1.0, None, spread=0.3, rounds=6), same,
                               make_bench("b", "cheap", 0.5, None)])
    e = _by_subject(build_report([run], lookup=fake_lookup))
    flat = e["same-cost"]
    assert flat.vs.outcome == "same" and flat.ratio.low < 1 < flat.ratio.high
    assert cells.entry_verdict(flat) == "no significant saving"
    assert e["cheap"].vs.outcome == "saves" and cells.entry_verdict(e["cheap"]).startswith("saves ")


def test_report_and_run_table_give_the_same_verdict():
    """One rule for every reader: the report's verdict is the run table's (``energybench.verdicts.baseline``)."""
    run = make_run()
    e = _by_subject(build_report([run], lookup=fake_lookup))
    for b in run.benchmarks[1:]:
        vs = vs_baseline(run, b)
        assert e[b.method].vs == vs
        assert cells.verdict(vs) in run_table.format_table(run_view(run))


def test_run_and_round_warnings_are_notices():
    bench = make_bench("b", "baseline", 1.0, None)
    first = replace(bench.rounds[0], warnings=("window 0.01 s is shorter than the counter resolution",))
    bench = replace(bench, rounds=(first, *bench.rounds[1:]))
    run = replace(make_run(benchmarks=[bench]), warnings=("no energy sampler available here",))
    texts = [n.text for n in build_report([run], lookup=fake_lookup).notices]
    assert "no energy sampler available here" in texts
    assert "window 0.01 s is shorter than the counter resolution" in texts


def test_benchmark_without_rounds_is_left_out_with_a_notice():
    empty = replace(make_bench("b", "int8", 0.5, None), rounds=())
    run = make_run(benchmarks=[make_bench("b", "baseline", 1.0, None), empty])
    report = build_report([run], lookup=fake_lookup)
    assert [e.method for e in report.entries] == ["baseline"]
    assert any(n.where == "b / int8" and "no measured rounds" in n.text for n in report.notices)


def test_a_cell_that_did_not_apply_is_one_warning_not_two():
    """The runner notes ``lm/train-step [int8-dynamic]: not applicable: ...`` and the cell carries the same status:
    the report said it twice (a quick run: 75 warnings, 16 of them repeats)."""
    why = "int8-dynamic: the model has no backward pass (inference-only kernels)"
    skipped = replace(make_bench("lm/train-step", "int8-dynamic", 0.5, None, phase="train"), rounds=(),
                      status="not-applicable", status_reason=why)
    run = replace(make_run(benchmarks=[make_bench("lm/train-step", "baseline", 1.0, None, phase="train"), skipped]),
                  notes=(f"lm/train-step [int8-dynamic]: not applicable: {why}", "torch threads 2 -> 1: busy"))
    texts = [n.text for n in build_report([run], lookup=fake_lookup).notices]
    assert sum("the model has no backward pass" in t for t in texts) == 1, texts
    assert "torch threads 2 -> 1: busy" in texts  # other notes stay


def test_cells_left_out_for_one_reason_are_one_warning():
    """The reason names the method (``int8-static: the model has no backward pass``) and so did the notice's
    place: sixteen training cells made sixteen warnings of one fact."""
    benches = [make_bench("lm/train-step", "baseline", 1.0, None, phase="train")]
    benches += [replace(make_bench("lm/train-step", m, 0.5, None, phase="train"), rounds=(),
                        status="not-applicable", status_reason=f"{m}: the model has no backward pass")
                for m in ("int8-dynamic", "int8-static", "int4-weight")]
    notices = build_report([make_run(benchmarks=benches)], lookup=fake_lookup).notices
    (skipped,) = [n for n in notices if "no backward pass" in n.text]
    assert skipped.text == "not-applicable: the model has no backward pass: left out"
    assert all(f"lm/train-step / {m}" in skipped.where for m in ("int8-dynamic", "int8-static", "int4-weight"))


def test_a_partial_run_says_so_first():
    from energybench.record import Settings

    run = make_run()
    stopped = replace(run, environment=replace(run.environment, settings=Settings(
        trials=12, stopped="terminated (SIGTERM)", trials_finished=4)))
    notices = build_report([stopped], lookup=fake_lookup).notices
    assert notices[0].text.startswith("partial run: terminated (SIGTERM) after 4 of 12 trial(s)")
    assert not any("partial run" in n.text for n in build_report([run], lookup=fake_lookup).notices)
