"""One pytest session's energy work: its options, its meter (samplers detected once, on first use), the
benchmarks it collected, and at the end saving, comparing with a baseline and gating, as pytest-benchmark's
``session.py`` is to its ``plugin.py``. The hooks that drive it are in ``pytest_plugin/__init__.py``; what it
prints is ``pytest_plugin.table``.

Whatever goes wrong at the end, the figures are still printed and the exit status says what happened
(docs/failure-modes.md): a regression is pytest's 1, bad input its 4, an internal error 3, a run that could
not be saved 73, a SIGTERM 143.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from energybench.distributed.launcher import is_nonzero_rank
from energybench.errors import EXIT_NOT_SAVED, EnergybenchError, WriteError, debug_enabled, internal_error_line
from energybench.options import SAMPLER_OPTIONS, carbon_kwargs, from_pytest, sampler_options
from energybench.pytest_plugin.guards import INTERNAL_ERROR, TermHandler
from energybench.pytest_plugin.table import SessionProgress, table_settings
from energybench.record import Benchmark, CarbonBasis, Environment, Launcher, Run, Settings

SAMPLERS_FROM_ENV = "ENERGYBENCH_PYTEST_SAMPLERS"
#: How long the session reads the machine's load before its first window, to fit the thread count.
THREAD_PROBE_S = 0.3

#: The options shared with the command line, declared once in ``energybench.options``: ``--energy-NAME``.
SHARED_OPTIONS = ("results", "region", "intensity", "intensity_csv", "pue", "alpha", "fail_on", "require_baseline",
                  "allow_missing_baseline", "allow_blind", "history", "threads", *SAMPLER_OPTIONS, "intensity_kind",
                  "intensity_provider", "intensity_api_url", "embodied", "quality_budget")


@dataclass(frozen=True)
class SessionOptions:
    """The session's ``--energy-*`` options, parsed and checked before any test runs."""

    save_name: str | None
    autosave: bool
    gates: tuple[Any, ...]
    compare_ref: str | None
    storage: str
    json_path: str | None
    carbon: Mapping[str, Any]
    embodied: tuple[Any, ...]
    sampler_options: Mapping[str, Any]
    skip: bool
    only: bool
    disabled: bool
    min_rounds: int | None
    alpha: float
    history: int
    threads: int | None
    require_baseline: bool
    allow_missing_baseline: bool
    allow_blind: bool
    with_benchmark: bool
    samplers_from: str | None
    quality_budget: float
    table: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: pytest.Config) -> SessionOptions:
        from energybench.verdicts.gate import parse_gates

        opt = config.getoption
        shared = from_pytest(config, SHARED_OPTIONS)
        gates = tuple(parse_gates(shared["fail_on"]))
        if opt("energy_skip") and opt("energy_only"):
            raise EnergybenchError("--energy-skip and --energy-only exclude each other; pass one")
        return cls(save_name=opt("energy_save"), autosave=opt("energy_autosave"), gates=gates,
                   compare_ref=opt("energy_compare") or ("latest" if gates else None), storage=shared["results"],
                   json_path=opt("energy_json"), carbon=carbon_kwargs(shared), embodied=tuple(shared["embodied"]),
                   sampler_options=sampler_options(shared), skip=opt("energy_skip"), only=opt("energy_only"),
                   disabled=opt("energy_disable"), min_rounds=opt("energy_min_rounds"), alpha=shared["alpha"],
                   history=shared["history"], threads=shared["threads"],
                   require_baseline=shared["require_baseline"],
                   allow_missing_baseline=shared["allow_missing_baseline"],
                   allow_blind=shared["allow_blind"], with_benchmark=opt("energy"),
                   samplers_from=opt("energy_samplers_from"), quality_budget=shared["quality_budget"],
                   table=table_settings(config))


@dataclass
class Outcome:
    """What the end of the session found: where the run was saved, the comparison, and every message."""

    saved_path: str | None = None
    comparison: Any = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)  # our own code failed: exit 3, never a verdict
    write_errors: list[str] = field(default_factory=list)  # a results file could not be written: exit 73


class SessionMeter:
    """The session's one meter, created on first use (sampler detection costs time; skip it if unused), with
    the thread counts pinned before its first window, as ``energybench run`` pins them."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.meter: Any = None
        self.thread_state: dict[str, Any] = {}
        self.notes: list[str] = []

    def get(self) -> Any:
        if self.meter is None:
            from energybench.measuring import threads
            from energybench.measuring.meter import Meter
            from energybench.samplers import benchmark_options

            count = self.options.threads or self._fitted_threads()
            if count is not None:
                self.thread_state, notes = threads.pin(count)
                self.notes += notes
            else:
                self.thread_state = threads.current()
            try:
                meter = Meter(self._samplers(), options=benchmark_options(dict(self.options.sampler_options)),
                              **self.options.carbon)
            except EnergybenchError as exc:
                pytest.fail(f"energybench: {exc}", pytrace=False)
            if not meter.samplers:
                pytest.fail("energybench: no energy sampler can read on this machine; run `energybench sensors` "
                            "for why", pytrace=False)
            self.meter = meter
        return self.meter

    def _fitted_threads(self) -> int | None:
        """Threads that fit the CPUs other processes leave free, when the default pool does not (read over a
        short probe before the first window; announced in the notes, recorded in the run)."""
        import sys
        import time

        from energybench.measuring.noise import Probe
        from energybench.measuring.threads import fitting

        probe = Probe()
        probe.start()
        time.sleep(THREAD_PROBE_S)
        load = probe.stop()[0]
        torch = sys.modules.get("torch")
        current = torch.get_num_threads() if torch is not None else int(probe.count)
        fits = fitting(current, probe.count, load.get("other_cpus", 0.0))
        if fits is not None:
            self.notes.append(f"threads {current} -> {fits}: about {load.get('other_cpus', 0.0):.1f} of the "
                              f"{probe.count:g} CPUs were busy elsewhere, and a larger pool waits for them "
                              "(--energy-threads N sets the count)")
        return fits

    def resolution_s(self) -> float:
        from energybench.run.calibration import slowest_resolution_s

        return slowest_resolution_s(self.get().samplers)

    def _samplers(self) -> list[Any] | None:
        spec = self.options.samplers_from or os.environ.get(SAMPLERS_FROM_ENV)
        if not spec:
            return None
        module, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise EnergybenchError(f"--energy-samplers-from {spec!r}: {exc}; give MODULE:CALLABLE") from None
        return list(factory())


class EnergySession:
    """Per-pytest-session state: the options, the meter, collected records, and the end-of-session work."""

    def __init__(self, config: pytest.Config) -> None:
        from energybench.carbon import resolve_provider
        from energybench.run.ab import Turns

        self.config = config
        self.options = SessionOptions.from_config(config)
        self.progress = SessionProgress(config)
        self.provider = resolve_provider(**self.options.carbon)  # an unknown region fails now, before any test
        self.turns = Turns.from_environment()  # one side of an A/B session (energybench ab), or None
        self.meter = SessionMeter(self.options)
        if self.options.json_path:  # a saved run there is refused before any test runs (exit 4)
            self._check_json_path()
        self.records: list[Benchmark] = []
        self.tapped: list[tuple[str, dict[str, Any]]] = []
        self.started = _dt.datetime.now(_dt.UTC)
        self.clock0 = time.monotonic()  # the session's wall time is the SCI's time reserved
        self.outcome = Outcome()
        self.term = TermHandler()
        self.session: pytest.Session | None = None

    def _check_json_path(self, inputs: tuple[str, ...] | None = None) -> None:
        """``--energy-json`` never replaces a saved run or the baseline (``inputs``; by default the file
        ``--energy-compare`` names), see ``energybench.outputs``; it may replace its own earlier copy."""
        from energybench.outputs import refuse_saved_run

        o = self.options
        if inputs is None:
            inputs = ()
            if o.compare_ref:
                from energybench.record.storage import resolve_run

                try:
                    inputs = (str(resolve_run(o.compare_ref, o.storage)),)
                except EnergybenchError:
                    pass  # no such baseline: the comparison says so at the end
        refuse_saved_run(str(o.json_path), "--energy-json copy of this run", inputs=[Path(p) for p in inputs],
                         results=o.storage, run_copy=True)

    def run_record(self) -> Run:
        from energybench.distributed.launcher import launcher_environment
        from energybench.measuring.machine import commit_info, machine_info

        samplers = self.meter.meter.samplers if self.meter.meter is not None else []
        return Run(
            name=self.options.save_name or "pytest",
            created=self.started.isoformat(timespec="seconds"),
            wall_s=time.monotonic() - self.clock0,
            kind="pytest",
            benchmarks=tuple(self.records),
            machine=machine_info(samplers),
            commit=commit_info(str(self.config.rootpath)),
            environment=Environment(
                launcher=Launcher.of({**launcher_environment(), "pytest": pytest.__version__}, tool="pytest"),
                settings=Settings(threads=self.meter.thread_state),
                ab=self.turns.describe() if self.turns is not None else None),
            carbon=CarbonBasis.from_provider(self.provider) if self.provider is not None else None,
            embodied=self.options.embodied,
        )

    def finish(self, session: pytest.Session) -> None:
        """Save, compare and gate; whatever goes wrong here, the figures are still printed."""
        self.session = session
        try:
            self._finish(session)
        except Exception as exc:
            if debug_enabled():
                raise
            self.outcome.internal_errors.append(internal_error_line(exc))
        finally:
            if self.turns is not None:  # the other side of an A/B session may go on alone now
                self.turns.finish(self.outcome.saved_path)
        self.set_exit_status(session)

    def set_exit_status(self, session: pytest.Session) -> None:
        if self.term.received:
            session.exitstatus = self.term.exit_status()  # 143: finished benchmarks were kept above
        elif self.outcome.internal_errors:
            session.exitstatus = INTERNAL_ERROR
        elif self.outcome.write_errors and session.exitstatus == 0:
            session.exitstatus = EXIT_NOT_SAVED

    def _finish(self, session: pytest.Session) -> None:
        self._close_meter()
        o, out = self.options, self.outcome
        if not self.records:
            if o.compare_ref or o.save_name or o.autosave:
                out.notes.append("no energy benchmarks ran: nothing saved or compared")
            return
        reference, base_error = None, None
        if o.compare_ref:  # resolved before saving, so 'latest' means the run before this one
            from energybench.verdicts.reference import PYTEST_FLAGS, resolve_baseline

            try:
                reference = resolve_baseline(o.compare_ref, o.storage, require=o.require_baseline,
                                             allow_missing=o.allow_missing_baseline, flags=PYTEST_FLAGS)
            except EnergybenchError as exc:
                base_error = str(exc)
        base_path = reference.run.path if reference is not None and reference.run is not None else None
        run, bad_input = self._save(self.run_record(), (base_path,) if base_path else ())
        if base_error is not None:
            out.errors.append(base_error)
            bad_input = True
        elif reference is not None:
            bad_input = self._compare(reference, run) or bad_input
        code = out.comparison.exit_code if out.comparison is not None else 0
        if (out.errors or code) and session.exitstatus == 0:
            # pytest's own codes: 1 for a regression (tests failed), 4 for bad input (usage error); a gate that
            # could not fail is the comparison's own code (EXIT_BLIND), which pytest does not use
            if bad_input or out.errors:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR if bad_input else pytest.ExitCode.TESTS_FAILED
            else:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED if code == 1 else code

    def _close_meter(self) -> None:
        if self.meter.meter is None:
            return
        try:
            self.meter.meter.close()
        except Exception as exc:  # closing samplers must never cost the figures: saving goes on
            if debug_enabled():
                raise
            self.outcome.internal_errors.append(internal_error_line(exc))

    def _save(self, run: Run, inputs: tuple[str, ...] = ()) -> tuple[Run, bool]:
        """Save first: a bad baseline or gate must never cost the figures just measured. Returns the run as
        saved (or marked unsaved) and whether the input was bad; ``inputs`` (the baseline's file) are never
        replaced by the ``--energy-json`` copy."""
        from energybench.record.storage import RunFile, write_run

        o, out, bad_input = self.options, self.outcome, False
        try:
            if (o.save_name or o.autosave) and not is_nonzero_rank():  # every rank holds the same figures
                _, run = RunFile.create(run, o.storage, o.save_name or _autosave_name(run.commit))
                out.saved_path = run.path
            else:
                run = replace(run, run_id="(this run, unsaved)")
        except WriteError as exc:  # the figures are printed anyway; the JSON copy is still tried
            out.write_errors.append(f"{exc}; the table above has every figure")
            run = replace(run, run_id="(this run, unsaved)")
        except EnergybenchError as exc:
            out.errors.append(str(exc))
            bad_input = True
        if o.json_path:
            try:
                self._check_json_path(inputs)  # again: the results directory may have changed meanwhile
                write_run(o.json_path, run)
            except WriteError as exc:
                out.write_errors.append(f"{exc}; the table above has every figure")
            except EnergybenchError as exc:
                out.errors.append(f"{exc}; the table above has every figure")
                bad_input = True
        return run, bad_input

    def _compare(self, reference: Any, run: Run) -> bool:
        """Compare with the baseline (or pass as a first run, with its note); True on bad input."""
        from energybench.record.storage import history_runs
        from energybench.verdicts.compare import compare_runs
        from energybench.verdicts.drift import from_store

        o = self.options
        if reference.note:
            self.outcome.notes.append(reference.note)
        try:
            base = reference.run
            history = history_runs(base, o.storage, o.history) if base is not None else []
            drift = from_store(base, run, o.storage) if base is not None else None
            self.outcome.comparison = compare_runs(base, run, o.gates, alpha=o.alpha, history=history, drift=drift,
                                                   allow_blind=o.allow_blind)
        except EnergybenchError as exc:
            self.outcome.errors.append(str(exc))
            return True
        return False


def _autosave_name(commit: Mapping[str, Any]) -> str:
    if commit.get("id"):
        return commit["id"][:10] + ("-dirty" if commit.get("dirty") else "")
    return "autosave"
