"""Gate grammar and decisions: threshold AND significance, fallbacks and one-line errors."""

import pytest

from energybench.errors import ConfigError, ResultsError
from energybench.render.comparison import gate_message
from energybench.verdicts.gate import GRAMMAR, evaluate_gate, parse_gate, parse_gates

BASE = [10.0, 10.1, 9.9, 10.05, 9.95, 10.02, 9.98, 10.03, 9.97, 10.0]


def shifted(factor, values=BASE):
    return [v * factor for v in values]


@pytest.mark.parametrize(
    "text,metric,threshold,relative",
    [
        ("energy:+5%", "energy", 0.05, True),
        ("energy_per_item:+3%", "energy_per_item", 0.03, True),
        ("co2e:+5%", "co2e", 0.05, True),
        ("power:+10%", "power", 0.10, True),
        ("duration:+5%", "duration", 0.05, True),
        ("energy:+0.5J", "energy", 0.5, False),
        ("energy:+500mJ", "energy", 0.5, False),
        ("co2e:2mg", "co2e", 0.002, False),
    ],
)
def test_grammar(text, metric, threshold, relative):
    g = parse_gate(text)
    assert (g.metric.name, g.relative) == (metric, relative)
    assert g.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    "text,part",
    [
        ("energy", "expected METRIC:THRESHOLD"),
        ("energi:+5%", "unknown metric 'energi'"),
        ("energy:+5", "missing unit"),
        ("energy:+5W", "unit 'W' does not fit energy"),
        ("energy:-5%", "must be an increase"),
        ("energy:+abc%", "no number after '+'"),
    ],
)
def test_malformed_gate_names_the_part_and_shows_the_grammar(text, part):
    with pytest.raises(ConfigError) as exc:
        parse_gate(text)
    msg = str(exc.value)
    assert part in msg and GRAMMAR in msg and "\n" not in msg


def test_comma_separated_gates():
    assert [g.metric.name for g in parse_gates(["energy:+5%,power:+10%", "duration:+5%"])] == [
        "energy", "power", "duration"]


def test_fails_only_when_over_threshold_and_significant():
    gate = parse_gate("energy:+5%")
    big = evaluate_gate(gate, BASE, shifted(1.25), benchmark="b")
    assert not big.passed and big.tested and big.p < 0.01
    message = gate_message(big)
    assert "FAIL b energy:+5%" in message and "+25%" in message and "n=10/10" in message
    assert "p adj. " in message and "95% CI" in message and "10 J -> 12.5 J" in message
    small = evaluate_gate(gate, BASE, shifted(1.02))  # significant, but under the threshold
    assert small.passed and small.p < 0.01
    noisy_base = [10, 13, 8, 12, 9, 11, 7, 14, 10, 9]
    noisy_new = [v * 1.06 for v in [9, 12, 8, 13, 10, 11, 8, 14, 9, 10]]  # +6% median, not significant
    res = evaluate_gate(gate, noisy_base, noisy_new)
    assert res.change > 0.05 and res.p > 0.01 and res.passed and "not significantly" in gate_message(res)


def test_absolute_threshold():
    gate = parse_gate("energy:+0.5J")
    assert evaluate_gate(gate, BASE, [v + 1.0 for v in BASE]).passed is False
    assert evaluate_gate(gate, BASE, [v + 0.3 for v in BASE]).passed is True


def test_too_few_rounds_falls_back_to_the_threshold_with_a_warning():
    gate = parse_gate("energy:+5%")
    res = evaluate_gate(gate, [10], [12], benchmark="b")
    assert not res.tested and not res.passed and res.reason == "untested-regression"
    assert "over the threshold on the change alone" in gate_message(res)
    three = evaluate_gate(gate, [10, 10.1, 9.9], [12, 12.1, 11.9], benchmark="b")
    assert three.tested  # a t test needs two rounds a side, not the five a rank test needed


def test_alpha_is_configurable():
    gate = parse_gate("energy:+5%")
    base, new = [10, 10.2, 9.8, 10.1, 9.9], [11.0, 11.5, 9.9, 11.2, 11.4]
    loose = evaluate_gate(gate, base, new, alpha=0.05)
    strict = evaluate_gate(gate, base, new, alpha=0.01)
    assert 0.01 < loose.p < 0.05
    assert not loose.passed and strict.passed


def test_missing_figures_is_bad_input():
    with pytest.raises(ResultsError, match="no co2e_per_call_g figures"):
        evaluate_gate(parse_gate("co2e:+5%"), BASE, [], benchmark="b")
