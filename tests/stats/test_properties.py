"""Property-based tests (Hypothesis) of every parser of outside input: results files, intensity CSVs, gate
expressions, marker arguments and option values. Any input gives a result or one clean ``EnergybenchError``
line, never a traceback; and whatever a parser accepts, every reader downstream (compare, gates, reports,
``load_results``, the pytest table) handles without crashing or printing an impossible figure.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_fixtures import fake_lookup, make_bench, make_run

from energybench import options
from energybench.carbon.providers import parse_intensity, parse_pue
from energybench.carbon.timeseries import parse_intensity_series, parse_timestamp
from energybench.cli import build_parser
from energybench.errors import ConfigError, EnergybenchError, IntensityDataError, ResultsError
from energybench.pytest_plugin.fixture import EnergyOptions
from energybench.record import Run
from energybench.record.frames import run_rows
from energybench.render.comparison import format_table, to_markdown
from energybench.render.pytest_table import summary_table
from energybench.render.report_html import render_html
from energybench.render.report_markdown import render_markdown
from energybench.render.report_text import render_terminal
from energybench.render.run_table import format_table as run_table
from energybench.report import build_report, run_view
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.gate import parse_gates

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])

# Numbers that broke parsers before: negative energies, a -200 % "pass", overflowing sums, huge integers.
AWKWARD_NUMBERS = st.sampled_from([-200.0, -1.0, -0.0, 0.0, 5e-324, 1e-300, 1e15, 1e16, 1e300, 1.7e308, 10**400,
                                   2**63, -(2**63), math.nan, math.inf, -math.inf])
JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | AWKWARD_NUMBERS
                | st.text(max_size=12))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _small_run(seed: int = 0) -> Run:
    benches = [make_bench("lm/gen", m, s, q, rounds=5, seed=seed, timeline=False)
               for m, s, q in (("baseline", 1.0, 12.0), ("int8-dynamic", 0.6, 12.5))]
    return make_run("0001_main" if seed == 0 else "0002_pr", benchmarks=benches, seed=seed)


BASE_DICT = json.loads(_small_run(0).to_json())
NEW_DICT = json.loads(_small_run(1).to_json())


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(NEW_DICT) if p and p[0] not in ("schema", "version")]


def _mutated(data: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(data)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def _use_everywhere(base: Run, new: Run) -> None:
    """Every reader of a run: compare + gates, the three report formats, load_results' rows, the pytest and
    run tables, and a write/read round trip. Only ``EnergybenchError`` may escape (bad input, one line)."""
    assert Run.from_json(new.to_json()).benchmarks == new.benchmarks  # what we accept, we can write back
    for b, r in new.rounds():
        assert not r.energy_j < 0 and not r.duration_s < 0 and r.items > 0, (b.name, r)
    run_rows(new)
    assert all(isinstance(line, str) for line in summary_table(new.benchmarks).lines)
    run_table(run_view(new))
    try:
        cmp = compare_runs(base, new, parse_gates(["energy:+5%", "co2e:+1mg"]))
    except EnergybenchError as exc:
        assert "\n" not in str(exc)
        cmp = None
    if cmp is not None:
        for row in cmp.rows:  # a change below -100 % needs a negative energy: it can never be shown
            assert math.isnan(row.change) or row.change >= -1.0, row
        format_table(cmp)
        to_markdown(cmp)
    try:
        report = build_report([base, new], regions=("FRA",), lookup=fake_lookup, comparison=cmp)
    except EnergybenchError as exc:
        assert "\n" not in str(exc)
        return
    for text in (render_terminal(report), render_markdown(report), render_html(report)):
        assert "\x00" not in text and "\x1b" not in text


def test_a_key_with_a_newline_is_named_on_one_line() -> None:
    """Found by the property below: a domain key holding a newline, with an impossible or missing value."""
    for value, problem in ((-1, "-1 J is impossible"), (None, "expected a number, got null")):
        data = _mutated(NEW_DICT, ("benchmarks", 0, "rounds", 2, "domains"), {"cpu\nx": value})
        with pytest.raises(ResultsError) as err:
            Run.from_json(json.dumps(data), where="new.json")
        assert "\n" not in str(err.value) and "domains.cpu\\nx: " + problem in str(err.value), str(err.value)


@SLOW
@given(path=st.sampled_from(PATHS), value=JSON_VALUES)
def test_any_field_of_a_results_file_gives_a_run_or_one_line(path: tuple, value: Any) -> None:
    data = _mutated(NEW_DICT, path, value)
    text = json.dumps(data, allow_nan=True)
    try:
        new = Run.from_json(text, where="new.json")
    except ResultsError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("new.json:"), message
        return
    _use_everywhere(Run.from_dict(BASE_DICT, "base.json"), new)


@FAST
@given(text=st.text(max_size=300))
def test_any_text_as_a_results_file_gives_a_run_or_one_line(text: str) -> None:
    try:
        Run.from_json(text, where="x.json")
    except ResultsError as exc:
        assert "\n" not in str(exc)


@FAST
@given(value=JSON_VALUES)
def test_any_json_document_gives_a_run_or_one_line(value: Any) -> None:
    for doc in (value, {"schema": "energybench/run", "version": 2, "benchmarks": value},
                {"schema": "energybench/run", "version": 1, "benchmarks": [value]},
                {"schema": "energybench/run", "version": 2, "benchmarks": [{"name": "a", "rounds": [value]}]}):
        try:
            Run.from_dict(doc)
        except ResultsError as exc:
            assert "\n" not in str(exc)


@FAST
@given(depth=st.integers(min_value=60, max_value=100_000), kind=st.sampled_from(["[", '{"a":']))
def test_absurd_nesting_is_refused_in_one_line(depth: int, kind: str) -> None:
    close = "]" if kind == "[" else "}"
    text = '{"schema": "energybench/run", "version": 2, "benchmarks": [], "x": ' + kind * depth + "1" \
        + close * depth + "}"
    try:
        Run.from_json(text)
    except ResultsError as exc:
        assert "nested" in str(exc) and "\n" not in str(exc)
    else:
        assert depth < 64


# ------------------------------------------------------------------------------------------------ intensity CSV
TIMESTAMPS = (st.integers(min_value=-(10**20), max_value=10**20).map(str)
              | st.floats(allow_nan=True, allow_infinity=True).map(repr)
              | st.integers(min_value=1_600_000_000_000, max_value=1_800_000_000_000).map(str)  # milliseconds
              | st.datetimes().map(lambda d: d.isoformat())
              | st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "nan", "1e400",
                                 "2024-05-01T00:00:00Z"])
              | st.text(max_size=12))
VALUES = st.floats().map(repr) | st.integers(min_value=-5, max_value=10**6).map(str) | st.text(max_size=6)


@FAST
@given(rows=st.lists(st.tuples(TIMESTAMPS, VALUES), max_size=6), header=st.booleans())
def test_any_intensity_csv_gives_a_series_or_one_line(rows: list[tuple[str, str]], header: bool) -> None:
    lines = (["timestamp,g_per_kwh"] if header else []) + [f"{t},{v}" for t, v in rows]
    try:
        series = parse_intensity_series("\n".join(lines), path="grid.csv")
    except IntensityDataError as exc:
        assert "\n" not in str(exc) and "grid.csv" in str(exc)
        return
    assert all(v >= 0 and math.isfinite(v) for v in series.values)
    for start, end in ((series.start - 1, series.start), (series.start, series.end), (series.end, series.end + 5)):
        try:
            series.check_covers(start, end)
        except IntensityDataError as exc:  # the message formats any timestamp it accepted
            assert "\n" not in str(exc)
        else:
            grams, kwh = series.grams_per_pue([(start, end, 3.6e6)])
            assert grams >= 0 and math.isfinite(grams)


@FAST
@given(text=st.text(max_size=40))
def test_any_csv_text_gives_a_series_or_one_line(text: str) -> None:
    try:
        parse_intensity_series(text, path="x.csv")
    except IntensityDataError as exc:
        assert "\n" not in str(exc)


@FAST
@given(text=TIMESTAMPS)
def test_timestamps_are_seconds_in_range_or_a_value_error(text: str) -> None:
    try:
        t = parse_timestamp(text)
    except ValueError:
        return
    assert -62_135_596_800 <= t <= 253_402_300_799


# ------------------------------------------------------------------------------------------------ gates
GATE_TEXT = (st.text(max_size=25)
             | st.builds(lambda m, s, n, u: f"{m}:{s}{n}{u}",
                         st.sampled_from(["energy", "co2e", "power", "duration", "energy_per_item", "x", ""]),
                         st.sampled_from(["+", "-", "", "++"]),
                         st.sampled_from(["5", "0", "1e400", "nan", "inf", "-3", "0.5", "1e-320", "99999999999"]),
                         st.sampled_from(["%", "J", "mJ", "mg", "g", "W", "s", "", "kWh", "%%"])))


@FAST
@given(texts=st.lists(GATE_TEXT, max_size=3))
def test_any_gate_expression_gives_gates_or_one_line(texts: list[str]) -> None:
    try:
        gates = parse_gates(texts)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    for gate in gates:
        assert gate.describe()


# ------------------------------------------------------------------------------------------------ markers
MARKER_VALUES = JSON_SCALARS | st.sampled_from([object(), [1], {"a": 1}, 10**30, -1, 0, 1.5, "train"])


@FAST
@given(kwargs=st.dictionaries(st.sampled_from([*EnergyOptions.keys(), "roundz", ""]), MARKER_VALUES, max_size=4))
def test_any_marker_arguments_give_options_or_one_line(kwargs: dict[str, Any]) -> None:
    try:
        opts = EnergyOptions().updated(kwargs, "@pytest.mark.energy")
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("@pytest.mark.energy")
        return
    assert opts.rounds is None or opts.rounds >= 1
    assert opts.items > 0 and math.isfinite(opts.items) and opts.min_time >= 0


# ------------------------------------------------------------------------------------------------ option values
OPTION_TEXT = (st.text(max_size=20) | st.floats().map(repr) | st.integers().map(str)
               | st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "0", "1e3", "2.5", "", " ", "\x00"]))


@FAST
@given(name=st.sampled_from(sorted(options.OPTIONS)), text=OPTION_TEXT)
def test_any_option_value_gives_a_value_or_one_line(name: str, text: str) -> None:
    env_name = options.OPTIONS[name].env
    for kwargs in ({"given": text, "environ": {}}, {"environ": {env_name: text}} if env_name else None):
        if kwargs is None:
            continue
        try:
            options.resolve(name, config=options.Config({}), **kwargs)
        except ConfigError as exc:
            assert "\n" not in str(exc)


@FAST
@given(name=st.sampled_from(sorted(n for n, o in options.OPTIONS.items() if o.in_config)), value=JSON_VALUES)
def test_any_config_file_value_gives_a_value_or_one_line(name: str, value: Any) -> None:
    """``[tool.energybench]`` values are TOML: numbers, lists and tables as well as strings."""
    try:
        options.resolve(name, config=options.Config({name: value}, None), environ={})
    except ConfigError as exc:
        assert "\n" not in str(exc)


@FAST
@given(parse=st.sampled_from([options.trials_count, options.warmup_count, options.thread_count, options.seed_value,
                              options.idle_seconds, options.min_rounds_count, options.positive_seconds,
                              options.alpha_level, parse_intensity, parse_pue]), text=OPTION_TEXT | MARKER_VALUES)
def test_numeric_parsers_give_a_finite_value_or_a_clean_error(parse: Any, text: Any) -> None:
    try:
        value = parse(text)
    except (ValueError, ConfigError) as exc:
        assert "\n" not in str(exc)
        return
    assert math.isfinite(value)


@FAST
@given(flag=st.sampled_from(["--idle", "--seed", "--threads", "--trials", "--warmup"]), text=OPTION_TEXT)
def test_run_options_are_parsed_or_refused_by_argparse(flag: str, text: str) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser().parse_args(["run", f"{flag}={text}"])
    except SystemExit as exc:
        assert exc.code == 2
        assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()
        return
    value = getattr(args, flag[2:])
    assert math.isfinite(value) and value >= 0
