"""pytest plugin: the ``energy`` fixture, ``--energy-*`` options, results saving, comparison and gates.

Registered through the ``pytest11`` entry point. One ``EnergySession`` per pytest session owns one meter
(samplers detected once, on first use), collects every benchmark's rounds, and at the end saves the run,
compares it with a baseline and applies gates; a failed gate turns the session's exit status to 1.
It coexists with pytest-benchmark: ``energy`` is its own fixture, and ``--energy`` adds the energy of
pytest-benchmark's rounds to its ``benchmark.extra_info``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from energybench.distributed.launcher import is_nonzero_rank
from energybench.errors import EXIT_NOT_SAVED, EnergybenchError, WriteError, debug_enabled, internal_error_line
from energybench.options import (
    OPTIONS,
    SAMPLER_OPTIONS,
    add_to_pytest,
    carbon_kwargs,
    for_argparse,
    from_pytest,
    min_rounds_count,
    sampler_options,
)
from energybench.pytest_plugin.benchmark_bridge import BenchmarkEnergyTap
from energybench.pytest_plugin.fixture import EnergyFixture, EnergyOptions
from energybench.pytest_plugin.guards import INTERNAL_ERROR, TermHandler, check_rootdir, internal_exit
from energybench.pytest_plugin.table import (
    SessionProgress,
    add_table_options,
    headline_lines,
    table_settings,
    table_width,
)
from energybench.record import Benchmark, CarbonBasis, Environment, Launcher, Run, Settings
from energybench.render.printable import printable

_SESSION = pytest.StashKey["EnergySession"]()
SAMPLERS_FROM_ENV = "ENERGYBENCH_PYTEST_SAMPLERS"


#: The options shared with the command line, declared once in ``energybench.options``: ``--energy-NAME``.
SHARED_OPTIONS = ("results", "region", "intensity", "intensity_csv", "pue", "alpha", "fail_on", "require_baseline",
                  "history", "threads", *SAMPLER_OPTIONS, "intensity_kind", "intensity_provider",
                  "intensity_api_url", "embodied", "quality_budget")


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
    g.addoption("--energy-min-rounds", metavar="N", type=for_argparse(min_rounds_count), default=None,
                help="measured rounds per benchmark, at least (default 10)")
    g.addoption("--energy", action="store_true",
                help="add energy figures to pytest-benchmark's benchmark fixture (extra_info)")
    # Hidden: "module:callable" returning a list of samplers (tests inject deterministic fakes here).
    g.addoption("--energy-samplers-from", metavar="MODULE:ATTR", default=None, help=argparse.SUPPRESS)


#: Our options that take a value, which pytest may mistake for a test path when written with a space.
VALUE_FLAGS = [*(f for n in SHARED_OPTIONS if not OPTIONS[n].flag for f in (OPTIONS[n].pytest_flag,
                                                                             *OPTIONS[n].pytest_aliases)),
               "--energy-save", "--energy-compare", "--energy-json", "--energy-min-rounds", "--energy-samplers-from"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "energy(" + ", ".join(f"{k}=..." for k in EnergyOptions.keys()) + "): options of the energy fixture",
    )
    try:
        check_rootdir(config, VALUE_FLAGS)
        session = EnergySession(config)
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
    return "energy" in names or (session.with_benchmark and "benchmark" in names)


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
    if es.skip:
        mark = pytest.mark.skip(reason="energy benchmarks skipped (--energy-skip)")
        for item in items:
            if _uses_energy(item, es):
                item.add_marker(mark)
    elif es.only:
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
    options = EnergyOptions(rounds=es.min_rounds or (es.turns.rounds if es.turns is not None else None))
    try:
        if marker is not None:
            options = options.updated(marker.kwargs, "@pytest.mark.energy")
    except EnergybenchError as exc:
        pytest.fail(str(exc), pytrace=False)
    if es.min_rounds and options.rounds is not None and options.rounds < es.min_rounds:
        options = EnergyOptions(**{**options.__dict__, "rounds": es.min_rounds})
    callspec = getattr(request.node, "callspec", None)
    fx = EnergyFixture(
        disabled=es.disabled,
        nodeid=request.node.nodeid,
        meter_factory=es.meter,
        resolution_s=es.resolution_s,
        before_round=es.turns.hand_over if es.turns is not None else None,
        settle_rounds=es.turns.settle_rounds if es.turns is not None else None,
        options=options,
        params=_json_safe(callspec.params) if callspec else None,
    )
    yield fx
    if fx.internal_error is not None:
        es.internal_errors.append(internal_error_line(fx.internal_error))
    if fx.used and not fx.has_error:
        es.records.append(fx.record())


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    """With ``--energy``: meter pytest-benchmark's rounds and add the figures to ``benchmark.extra_info``."""
    es: EnergySession = pyfuncitem.config.stash[_SESSION]
    tap = None
    if es.with_benchmark:
        bm = getattr(pyfuncitem, "funcargs", {}).get("benchmark")
        if bm is not None:
            tap = BenchmarkEnergyTap(bm, es)
    yield
    if tap is not None:
        tap.finish()


class EnergySession:
    """Per-pytest-session state: options, the meter, collected records, and the end-of-session work."""

    def __init__(self, config: pytest.Config) -> None:
        from energybench.carbon import resolve_provider
        from energybench.verdicts.gate import parse_gates

        opt = config.getoption
        shared = from_pytest(config, SHARED_OPTIONS)
        self.config = config
        self.save_name: str | None = opt("energy_save")
        self.autosave: bool = opt("energy_autosave")
        self.gates = parse_gates(shared["fail_on"])
        self.compare_ref: str | None = opt("energy_compare") or ("latest" if self.gates else None)
        self.storage: str = shared["results"]
        self.json_path: str | None = opt("energy_json")
        self.carbon = carbon_kwargs(shared)
        self.embodied = shared["embodied"]
        self.region: str | None = shared["region"]
        self.sampler_options = sampler_options(shared)
        self.skip: bool = opt("energy_skip")
        self.only: bool = opt("energy_only")
        self.min_rounds: int | None = opt("energy_min_rounds")
        if self.min_rounds is not None and self.min_rounds < 1:
            raise EnergybenchError(f"--energy-min-rounds must be >= 1, got {self.min_rounds}")
        self.alpha: float = shared["alpha"]
        self.history: int = shared["history"]
        self.threads: int | None = shared["threads"]
        self.thread_state: dict[str, Any] = {}
        self.require_baseline: bool = shared["require_baseline"]
        self.with_benchmark: bool = opt("energy")
        self.samplers_from: str | None = opt("energy_samplers_from")
        if self.skip and self.only:
            raise EnergybenchError("--energy-skip and --energy-only exclude each other; pass one")
        self.disabled: bool = opt("energy_disable")
        self.quality_budget: float = shared["quality_budget"]
        self.table = table_settings(config)  # --energy-sort / -columns / -group-by, checked now
        self.progress = SessionProgress(config)
        self.provider = resolve_provider(**self.carbon)  # an unknown region fails now, before anything runs
        from energybench.run.ab import Turns

        self.turns = Turns.from_environment()  # one side of an A/B session (energybench ab), or None
        self.records: list[Benchmark] = []
        self.tapped: list[tuple[str, dict[str, Any]]] = []
        self._meter: Any = None
        self.started = _dt.datetime.now(_dt.UTC)
        self.saved_path: str | None = None
        self.comparison: Any = None
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.internal_errors: list[str] = []  # unexpected exceptions in our own code: exit 3, never a verdict
        self.write_errors: list[str] = []  # a results file could not be written: exit 73, figures still printed
        self.term = TermHandler()
        self.session: pytest.Session | None = None

    # -- meter ------------------------------------------------------------------------------------------

    def _samplers(self) -> list[Any] | None:
        import os

        spec = self.samplers_from or os.environ.get(SAMPLERS_FROM_ENV)
        if not spec:
            return None
        module, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise EnergybenchError(f"--energy-samplers-from {spec!r}: {exc}; give MODULE:CALLABLE") from None
        return list(factory())

    def meter(self) -> Any:
        """The session's meter, created on first use (sampler detection costs time; skip it if unused)."""
        if self._meter is None:
            from energybench.measuring import threads

            if self.threads is not None:  # pinned before the first measured round, as `energybench run` does
                self.thread_state, notes = threads.pin(self.threads)
                self.notes += notes
            else:
                self.thread_state = threads.current()
            from energybench.measuring.meter import Meter
            from energybench.samplers import benchmark_options

            try:
                meter = Meter(self._samplers(), options=benchmark_options(self.sampler_options), **self.carbon)
            except EnergybenchError as exc:
                pytest.fail(f"energybench: {exc}", pytrace=False)
            if not meter.samplers:
                pytest.fail(
                    "energybench: no energy sampler can read on this machine; run `energybench sensors` for why",
                    pytrace=False,
                )
            self._meter = meter
        return self._meter

    def resolution_s(self) -> float:
        from energybench.run.calibration import slowest_resolution_s

        return slowest_resolution_s(self.meter().samplers)

    # -- end of session ---------------------------------------------------------------------------------

    def run_record(self) -> Run:
        from energybench.distributed.launcher import launcher_environment
        from energybench.measuring.machine import commit_info, machine_info

        samplers = self._meter.samplers if self._meter is not None else []
        return Run(
            name=self.save_name or "pytest",
            created=self.started.isoformat(timespec="seconds"),
            kind="pytest",
            benchmarks=tuple(self.records),
            machine=machine_info(samplers),
            commit=commit_info(str(self.config.rootpath)),
            environment=Environment(
                launcher=Launcher.of({**launcher_environment(), "pytest": pytest.__version__}, tool="pytest"),
                settings=Settings(threads=self.thread_state),
                ab=self.turns.describe() if self.turns is not None else None),
            carbon=CarbonBasis.from_provider(self.provider) if self.provider is not None else None,
            embodied=tuple(self.embodied),
        )

    def finish(self, session: pytest.Session) -> None:
        """Save, compare and gate; whatever goes wrong here, the figures are still printed by ``display``
        and the exit status says what happened (docs/failure-modes.md)."""
        self.session = session
        try:
            self._finish(session)
        except Exception as exc:
            if debug_enabled():
                raise
            self.internal_errors.append(internal_error_line(exc))
        finally:
            if self.turns is not None:  # the other side of an A/B session may go on alone now
                self.turns.finish(self.saved_path)
        self._set_exit_status(session)

    def _set_exit_status(self, session: pytest.Session) -> None:
        if self.term.received:
            session.exitstatus = self.term.exit_status()  # 143: finished benchmarks were kept above
        elif self.internal_errors:
            session.exitstatus = INTERNAL_ERROR
        elif self.write_errors and session.exitstatus == 0:
            session.exitstatus = EXIT_NOT_SAVED

    def _finish(self, session: pytest.Session) -> None:
        from energybench.record.storage import RunFile, history_runs, load_run, resolve_run, write_run
        from energybench.verdicts.compare import compare_runs

        if self._meter is not None:
            try:
                self._meter.close()
            except Exception as exc:  # closing samplers must never cost the figures: saving goes on
                if debug_enabled():
                    raise
                self.internal_errors.append(internal_error_line(exc))
        if not self.records:
            if self.compare_ref or self.save_name or self.autosave:
                self.notes.append("no energy benchmarks ran: nothing saved or compared")
            return
        run = self.run_record()
        baseline, base_error = None, None
        if self.compare_ref:  # resolved before saving, so 'latest' means the run before this one
            try:
                baseline = load_run(resolve_run(self.compare_ref, self.storage))
            except EnergybenchError as exc:
                base_error = exc
        bad_input = False
        try:  # save first: a bad baseline or gate must never cost the figures just measured
            if (self.save_name or self.autosave) and not is_nonzero_rank():
                # every rank holds the same aggregated figures: rank 0 alone writes them
                name = self.save_name or _autosave_name(run.commit)
                _, run = RunFile.create(run, self.storage, name)
                self.saved_path = run.path
            else:
                run = replace(run, run_id="(this run, unsaved)")
        except WriteError as exc:  # the figures are printed anyway; the JSON copy is still tried
            self.write_errors.append(f"{exc}; the table above has every figure")
            run = replace(run, run_id="(this run, unsaved)")
        except EnergybenchError as exc:
            self.errors.append(str(exc))
            bad_input = True
        if self.json_path:
            try:
                write_run(self.json_path, run)
            except WriteError as exc:
                self.write_errors.append(f"{exc}; the table above has every figure")
        if base_error is not None:
            text = str(base_error)
            missing = "does not exist" in text or "no run" in text
            typo = re.fullmatch(r"\d+|\d{4}_.+", str(self.compare_ref))  # a run id that matches nothing
            if not missing or typo:
                self.errors.append(text)
                bad_input = True
            elif self.require_baseline:
                self.errors.append(f"no baseline ({text}) and --energy-require-baseline was given")
                bad_input = True
            else:
                self.notes.append(f"{text}; passing as a first run with no baseline")
                self.comparison = compare_runs(None, run, self.gates, alpha=self.alpha)
        elif self.compare_ref:
            try:
                history = history_runs(baseline, self.storage, self.history) if baseline is not None else []
                self.comparison = compare_runs(baseline, run, self.gates, alpha=self.alpha, history=history)
            except EnergybenchError as exc:
                self.errors.append(str(exc))
                bad_input = True
        failed = bool(self.errors) or (self.comparison is not None and self.comparison.exit_code)
        if failed and session.exitstatus == 0:
            # pytest's own codes: 1 for a regression (tests failed), 4 for bad input (usage error)
            session.exitstatus = pytest.ExitCode.USAGE_ERROR if bad_input else pytest.ExitCode.TESTS_FAILED

    def display(self, tr: Any) -> None:
        """The energy table, comparison, notes and errors; an unexpected failure here is one line, exit 3."""
        try:
            self._display(tr)
        except Exception as exc:
            if debug_enabled():
                raise
            self.internal_errors.append(internal_error_line(exc))
            if self.session is not None:
                self._set_exit_status(self.session)
        for err in dict.fromkeys(self.internal_errors):  # once each, however many tests hit it
            tr.write_line(f"energybench: {printable(err)}", red=True, bold=True)

    def _display(self, tr: Any) -> None:
        from energybench import units
        from energybench.render.comparison import format_table
        from energybench.render.pytest_table import summary_table
        from energybench.render.report_lines import wrap

        if self.disabled:
            tr.write_line("energy benchmarks ran once each, unmeasured (--energy-disable)")
        if self.records:
            tr.write_sep("-", "energy benchmarks")
            fitted = summary_table(self.records, width=table_width(tr), **self.table)
            for line in fitted.lines:
                tr.write_line(line)
            if fitted.dropped:
                tr.write_line(f"(left out to fit the terminal: {', '.join(fitted.dropped)}; choose with "
                              "--energy-columns)")
            for line in headline_lines(self.records, self.quality_budget, table_width(tr)):
                tr.write_line(line)
            for rec in self.records:
                for w in ([rec.stability_warning] if rec.stability_warning else []) + list(rec.warnings):
                    for line in wrap(printable(f"warning: {rec.name}: {w}"), table_width(tr), more="  "):
                        tr.write_line(line, yellow=True)
            if self.provider is None:
                tr.write_line("note: no CO2e: pass --energy-region (e.g. FRA) to convert joules to grams")
        if self.tapped:
            tr.write_sep("-", "energy of pytest-benchmark rounds (--energy)")
            for name, info in self.tapped:
                tr.write_line(printable(
                    f"{name}: {units.joules(info['energy_j'])}/call, {units.watts(info['energy_power_w'])} "
                    f"({info['energy_source']})"
                ))
        if self.saved_path:
            tr.write_line(f"energy results saved to {self.saved_path}")
        if self.comparison is not None:
            tr.write_sep("-", "energy comparison")
            for line in format_table(self.comparison, width=table_width(tr)).splitlines():
                red = line.startswith("FAIL") or "regression(s)" in line
                tr.write_line(line, red=red, bold=red)
        for note in self.notes:
            tr.write_line(printable(f"note: {note}"))
        for err in [*self.write_errors, *self.errors]:
            tr.write_line(printable(f"energybench: error: {err}"), red=True, bold=True)


def _autosave_name(commit: Mapping[str, Any]) -> str:
    if commit.get("id"):
        return commit["id"][:10] + ("-dirty" if commit.get("dirty") else "")
    return "autosave"


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
        es.display(terminalreporter)
