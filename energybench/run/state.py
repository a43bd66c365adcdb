"""The state of a run while it is measured: its settings, each benchmark's entry, the growing record and its
one file, and the plumbing every phase shares (plugin calls, notes).

A cell that gets no round (a method that did not apply, plugin code that raised) is still a ``Benchmark`` of
the run, with ``status`` and ``status_reason``: the saved run says what happened to every cell of the grid,
and one failing subject never costs the others their figures. Nothing here measures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from energybench import plugin_boundary
from energybench.distributed.launcher import is_nonzero_rank
from energybench.errors import WriteError
from energybench.record import BASELINE, Benchmark, Round, Run
from energybench.render.printable import printable
from energybench.run.config import RunConfig
from energybench.subjects.api import Model, NotApplicable, PluginError, Subject, Workload

__all__ = ["Cell", "RunSaver", "RunState", "note_logger", "plugin_call", "subject_failed", "unrun_cells"]


@dataclass
class Cell:
    """One benchmark being measured: its model and workload, and the rounds so far."""

    subject: Subject
    model: Model
    workload: Workload
    bench: Benchmark
    rounds: list[Round] = field(default_factory=list)
    load: tuple[dict[str, float], tuple[str, ...]] = ({}, ())  # the machine's load around the last trial
    repeats: int = 1  # workload runs per trial window at least (see energybench.run.calibration)
    want_s: float = 0.0  # how long a trial window must last; 0: no minimum
    last_runs: int = 1  # runs in the latest trial window
    warmup_s: float | None = None  # seconds per warm-up run: the progress line's first guess of a trial's time
    _snap: tuple[Benchmark, int, Benchmark] | None = None  # (bench it was made from, rounds, snapshot)

    def snapshot(self) -> Benchmark:
        """The benchmark with its rounds so far. The same object until a round (or its layers) is added, so
        its derived statistics (bootstrap CIs) are computed once per new round, not once per save of every
        benchmark: saving after each trial would otherwise grow with the square of the rounds."""
        snap = self._snap
        if snap is None or snap[0] is not self.bench or snap[1] != len(self.rounds):
            snap = self._snap = (self.bench, len(self.rounds), replace(self.bench, rounds=tuple(self.rounds)))
        return snap[2]

    @property
    def label(self) -> str:
        where = f"@{self.bench.device}" if self.bench.device not in (None, "cpu") else ""
        return f"{self.bench.name} [{self.bench.method}]{where}"


@dataclass
class RunState:
    """The run as it grows; ``snapshot()`` is the typed record saved after every trial."""

    run: Run
    entries: list[Cell] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subjects: dict[str, Any] = field(default_factory=dict)
    stopped: list[Cell] = field(default_factory=list)  # cells that failed after measuring: rounds kept
    unrun: list[Benchmark] = field(default_factory=list)  # cells that failed or did not apply before any round
    trials_done: int = 0  # whole trials finished: what a run cut short says it kept (``Settings.trials_finished``)
    started: float = field(default_factory=time.monotonic)  # when the run took the machine (before its idle window)

    def snapshot(self) -> Run:
        benches = [e.snapshot() for e in [*self.entries, *self.stopped]]
        return replace(self.run, benchmarks=(*benches, *self.unrun), notes=tuple(self.notes),
                       subjects=dict(self.subjects), wall_s=time.monotonic() - self.started)

    def stop(self, e: Cell, status: str, reason: str, log: Callable[[str], None]) -> None:
        """Take a cell out of the run with its status; the other cells go on (a finished round is kept)."""
        then = "; the other cells go on" if status == "failed" else ""
        log(f"{e.label}: {status.replace('-', ' ')}: {reason}{then}")
        self.entries.remove(e)
        e.bench = replace(e.bench, status=status, status_reason=reason)
        if e.rounds:
            self.stopped.append(e)
        else:
            self.unrun.append(e.bench)

    @property
    def rounds(self) -> int:
        return sum(len(e.rounds) for e in [*self.entries, *self.stopped])


def plugin_call(what: str, fn: Callable[[], Any]) -> Any:
    """Run plugin code behind ``energybench.plugin_boundary``: an exception or a ``sys.exit`` in it becomes a
    ``PluginError`` naming the plugin (the cell stops as ``failed``; the others go on)."""
    return plugin_boundary.call(what, fn, error=PluginError, passthrough=(NotApplicable,))


def note_logger(stream: TextIO) -> Callable[[str], None]:
    """Notes on ``stream``; under torchrun only rank 0 writes, so a job prints each line once."""
    quiet = is_nonzero_rank()

    def log(msg: str) -> None:
        if not quiet:
            stream.write(printable(f"energybench: {msg}\n"))  # notes carry plugins' text
            stream.flush()

    return log


class RunSaver:
    """First save claims ``NNNN_<name>.json``; later saves atomically rewrite that same file.

    A save that fails (full disk, read-only directory) never stops the measuring: the figures stay in
    memory, the first failure is logged once, every later save tries again, and ``error`` holds the last
    failure (``None`` once a save succeeds again), so the caller can print the figures and say so.
    """

    def __init__(self, cfg: RunConfig, log: Callable[[str], None] = lambda _msg: None) -> None:
        self.cfg = cfg
        self.log = log
        self.file: Any = None
        self.error: WriteError | None = None
        self.saved_rounds: int | None = None  # rounds in the file as last written

    def save(self, state: RunState) -> Run:
        run = state.snapshot()
        if not self.cfg.save or is_nonzero_rank():
            return run  # under torch.distributed every rank holds the aggregated figures; rank 0 writes
        from energybench.record.storage import RunFile

        try:
            if self.file is None:
                self.file, saved = RunFile.create(run, self.cfg.results_dir, self.cfg.name)
                state.run = replace(state.run, name=saved.name, run_id=saved.run_id)
            else:
                saved = self.file.write(run)
        except WriteError as exc:
            if self.error is None:
                self.log(f"warning: {exc}; measuring goes on and the figures will be printed")
            self.error = exc
            return replace(run, run_id=state.run.run_id, path=None)
        self.error = None
        self.saved_rounds = state.rounds
        return saved

    def kept(self) -> str:
        """What the results directory holds of this run, for the message after a failed save."""
        if self.saved_rounds is None:
            return "nothing of this run was saved; the table above is every figure"
        return (f"{self.file.path} still holds the run as last saved ({self.saved_rounds} round(s)); the table "
                "above is every figure")


# ------------------------------------------------------------------ cells that get no round


def unrun_cells(subject: Subject, workloads: Sequence[Workload], spec: str, technique: str, status: str,
                reason: str, phase: str | None = None, device: str | None = None) -> list[Benchmark]:
    """One cell per workload of the subject (the baseline's, as the method never produced its own), all with
    ``status`` and ``reason``; ``phase`` keeps only that phase's workloads, as the run does."""
    return [Benchmark(name=f"{subject.name}/{wl.name}", method=spec, method_name=technique, family=subject.name,
                      workload=wl.name, phase=wl.phase, item_unit=wl.item_unit, status=status, status_reason=reason,
                      device=device)
            for wl in workloads if not phase or wl.phase == phase]


def subject_failed(subject: Subject, resolved: Sequence[tuple[str, Any, Any]], reason: str,
                   device: str | None = None) -> list[Benchmark]:
    """The baseline raised, so no cell of this subject can be measured or compared: one failed cell per method,
    under the workload ``*`` (the workloads were never known)."""
    return [Benchmark(name=f"{subject.name}/*", method=spec, method_name=technique, family=subject.name,
                      workload="*", status="failed", device=device,
                      status_reason=reason if spec == BASELINE else f"baseline failed: {reason}")
            for spec, technique in [(BASELINE, BASELINE), *((s, m.name) for s, m, _ in resolved)]]
