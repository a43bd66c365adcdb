"""pytest plugin: the hooks, the ``energy`` fixture and the ``--energy-*`` options (hooks only here).

Registered through the ``pytest11`` entry point. One ``session.EnergySession`` per pytest session owns one
meter, collects every benchmark's rounds, and at the end saves the run, compares it with a baseline and
applies gates (a failed gate turns the exit status to 1); ``table`` prints it. It coexists with
pytest-benchmark: ``energy`` is its own fixture, and ``--energy`` adds the energy of pytest-benchmark's
rounds to its ``benchmark.extra_info`` (``benchmark_bridge``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import pytest

from energybench.errors import EnergybenchError, internal_error_line
from energybench.options import OPTIONS, add_to_pytest, for_argparse, min_rounds_count
from energybench.pytest_plugin.counted import VALUE_FLAGS as COUNTED_FLAGS
from energybench.pytest_plugin.counted import add_options as add_counted_options
from energybench.pytest_plugin.counted import fixture_class, rerun_under_valgrind, tap_class, use_counted_meter
from energybench.pytest_plugin.fixture import EnergyFixture, EnergyOptions
from energybench.pytest_plugin.guards import check_rootdir, internal_exit
from energybench.pytest_plugin.session import SAMPLERS_FROM_ENV, SHARED_OPTIONS, EnergySession
from energybench.pytest_plugin.table import add_table_options, show

__all__ = ["SAMPLERS_FROM_ENV", "EnergySession", "energy"]

_SESSION = pytest.StashKey[EnergySession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("energybench", "energy benchmarks (energybench)")
    add_to_pytest(g, SHARED_OPTIONS)
    g.addoption("--energy-save", metavar="NAME", help="save this run as <results>/NNNN_NAME.json")
    g.addoption("--energy-autosave", action="store_true", help="save this run, named after the git commit")
    g.addoption(
        "--energy-compare", metavar="NUM|ID", nargs="?", const="latest", default=None,
        help="compare with a saved run: counter, run id, name or 'latest' (default when no value); "
        "--energy-fail-on implies --energy-compare latest",
    )
    g.addoption("--energy-json", metavar="PATH", help="also write this run's JSON to PATH")
    g.addoption("--energy-skip", action="store_true", help="skip tests that use the energy fixture")
    g.addoption("--energy-only", action="store_true", help="run only tests that use the energy fixture")
    g.addoption("--energy-disable", action="store_true",
                help="run each energy benchmark's function once, unmeasured (no meter, nothing saved or compared), "
                     "like --benchmark-disable")
    add_table_options(g)
    add_counted_options(g)
    g.addoption("--energy-min-rounds", metavar="N", type=for_argparse(min_rounds_count), default=None,
                help="measured rounds per benchmark, at least (default 10)")
    g.addoption("--energy", action="store_true",
                help="add energy figures to pytest-benchmark's benchmark fixture (extra_info)")
    # Hidden: "module:callable" returning a list of samplers (tests inject deterministic fakes here).
    g.addoption("--energy-samplers-from", metavar="MODULE:ATTR", default=None, help=argparse.SUPPRESS)


#: Our options that take a value, which pytest may mistake for a test path when written with a space.
VALUE_FLAGS = [*(f for n in SHARED_OPTIONS if not OPTIONS[n].flag for f in (OPTIONS[n].pytest_flag,
                                                                             *OPTIONS[n].pytest_aliases)),
               "--energy-save", "--energy-compare", "--energy-json", "--energy-min-rounds", "--energy-samplers-from",
               *COUNTED_FLAGS]


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--energy-meter counted``: run the session again under valgrind (``pytest_plugin.counted``)."""
    return rerun_under_valgrind(config)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "energy(" + ", ".join(f"{k}=..." for k in EnergyOptions.keys()) + "): options of the energy fixture",
    )
    try:
        check_rootdir(config, VALUE_FLAGS)
        session = EnergySession(config)
        use_counted_meter(session)
    except EnergybenchError as exc:
        raise pytest.UsageError(f"energybench: {exc}") from None
    except (pytest.UsageError, KeyboardInterrupt):
        raise
    except Exception as exc:
        internal_exit(exc)
    config.stash[_SESSION] = session
    session.term.install()
    config.pluginmanager.register(session.progress, "energybench-progress")  # its hook prints the progress lines


def pytest_unconfigure(config: pytest.Config) -> None:
    es = config.stash.get(_SESSION, None)
    if es is not None:
        es.term.restore()


def _uses_energy(item: pytest.Item, session: EnergySession) -> bool:
    names = getattr(item, "fixturenames", ())
    return "energy" in names or (session.options.with_benchmark and "benchmark" in names)


def pytest_collection_finish(session: pytest.Session) -> None:
    """How many energy benchmarks this session will run: what the progress line counts down."""
    es = session.config.stash.get(_SESSION, None)
    if es is not None:
        es.progress.planned([i.nodeid for i in session.items
                             if "energy" in getattr(i, "fixturenames", ()) and not _skipped(i)])


def _skipped(item: pytest.Item) -> bool:
    return any(m.name == "skip" for m in item.iter_markers())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    es = config.stash[_SESSION]
    if es.options.skip:
        mark = pytest.mark.skip(reason="energy benchmarks skipped (--energy-skip)")
        for item in items:
            if _uses_energy(item, es):
                item.add_marker(mark)
    elif es.options.only:
        mark = pytest.mark.skip(reason="not an energy benchmark (--energy-only)")
        for item in items:
            if not _uses_energy(item, es):
                item.add_marker(mark)


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("energy")
    if marker is None:
        return
    if marker.args:
        pytest.fail("@pytest.mark.energy takes keywords only (e.g. rounds=5)", pytrace=False)
    try:
        EnergyOptions().updated(marker.kwargs, "@pytest.mark.energy")
    except EnergybenchError as exc:
        pytest.fail(str(exc), pytrace=False)


def _json_safe(params: dict[str, Any] | None) -> dict[str, Any]:
    out = {}
    for k, v in (params or {}).items():
        try:
            json.dumps(v)
            out[k] = v
        except (TypeError, ValueError):
            out[k] = repr(v)
    return out


@pytest.fixture
def energy(request: pytest.FixtureRequest) -> Iterator[EnergyFixture]:
    """Measure the energy of a callable: ``energy(fn, *args)`` (``pytest_plugin.fixture.EnergyFixture``)."""
    es: EnergySession = request.config.stash[_SESSION]
    marker = request.node.get_closest_marker("energy")
    # one side of an A/B session measures its share of the session's rounds (ab.AB_ROUNDS over its processes)
    options = EnergyOptions(rounds=es.options.min_rounds or (es.turns.rounds if es.turns is not None else None))
    try:
        if marker is not None:
            options = options.updated(marker.kwargs, "@pytest.mark.energy")
    except EnergybenchError as exc:
        pytest.fail(str(exc), pytrace=False)
    if es.options.min_rounds and options.rounds is not None and options.rounds < es.options.min_rounds:
        options = EnergyOptions(**{**options.__dict__, "rounds": es.options.min_rounds})
    callspec = getattr(request.node, "callspec", None)
    fx = fixture_class(es)(
        disabled=es.options.disabled,
        nodeid=request.node.nodeid,
        meter_factory=es.meter.get,
        resolution_s=es.meter.resolution_s,
        before_round=es.turns.hand_over if es.turns is not None else None,
        settle_rounds=es.turns.settle_rounds if es.turns is not None else None,
        options=options,
        params=_json_safe(callspec.params) if callspec else None,
    )
    yield fx
    if fx.internal_error is not None:
        es.outcome.internal_errors.append(internal_error_line(fx.internal_error))
    if fx.used and not fx.has_error:
        es.records.append(fx.record())


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    """With ``--energy``: meter pytest-benchmark's rounds and add the figures to ``benchmark.extra_info``."""
    es: EnergySession = pyfuncitem.config.stash[_SESSION]
    tap = None
    if es.options.with_benchmark:
        bm = getattr(pyfuncitem, "funcargs", {}).get("benchmark")
        if bm is not None:
            tap = tap_class(es)(bm, es)
    yield
    if tap is not None:
        tap.finish()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """In an A/B session, wait here (after collection, before any test) for this side's first turn."""
    es = session.config.stash.get(_SESSION, None)
    if es is not None and es.turns is not None and not session.config.option.collectonly:
        es.turns.ready()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    es = session.config.stash.get(_SESSION, None)
    if es is not None:
        es.finish(session)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    es = terminalreporter.config.stash.get(_SESSION, None)
    if es is not None:
        show(es, terminalreporter)
