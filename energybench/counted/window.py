"""Counted windows inside a process that runs under the counted runner (callgrind, instrumentation off).

This is the API the pytest plugin calls for ``--energy-meter counted``: the session runs under
``runner.session_invocation(..., whole_program=False)``, so interpreter start-up, imports, collection and warm-up run
uninstrumented (several times faster than counted, and never counted), and each benchmark's calls are
counted between two client requests:

    START_INSTRUMENTATION, ZERO_STATS  ->  fn() x iterations  ->  DUMP_STATS_AT(label), STOP_INSTRUMENTATION

callgrind clears its simulated caches whenever instrumentation switches on, so a window's miss counts do not
depend on what ran before it. The toggles themselves and the loop around ``fn`` cost a fixed number of
events; the same window around a no-op is counted once per iteration count and subtracted, so an empty
benchmark costs only the harness's allocator noise (a few thousand instructions).
"""

from __future__ import annotations

import gc
import os
import re
import resource
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energybench.counted.clientreq import ClientRequests
from energybench.counted.errors import CountedError
from energybench.counted.profile import Profile, resolve_profile
from energybench.counted.result import CountedResult
from energybench.counted.valgrind import (
    MODE_ENV,
    OUT_DIR_ENV,
    OUT_PREFIX,
    RAW_EVENTS,
    CacheGeometry,
    Dump,
    parse_dump,
)

_WARMUP_WINDOWS = 2  # the first windows of a process pay one-off costs in the toggling code itself
NOT_UNDER_RUNNER = ("this process is not running under energybench's counted runner: start it with "
                    "energybench.counted.session_invocation (pytest: --energy-meter counted), or count a target "
                    "from outside with energybench.counted.count_target")


@dataclass
class WindowHandle:
    """What ``CountedSession.window`` yields; filled in when the window ends."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    dump: Dump | None = None


class CountedSession:
    """Counted windows of this process; build it with ``attach()`` (one per process is enough)."""

    def __init__(self, requests: ClientRequests, out_dir: Path) -> None:
        self._requests = requests
        self.out_dir = out_dir
        self.pid = os.getpid()
        self._seq = 0
        self._seen: set[int] = set()  # dump numbers already read
        self._foreign = 0  # dumps not made by this session (callgrind_control -d), which shift the numbering
        self._overhead: dict[tuple[int, int], dict[str, int]] = {}
        for _ in range(_WARMUP_WINDOWS):
            with self.window("warm-up"):
                pass

    @classmethod
    def attach(cls, environ: Mapping[str, str] | None = None) -> CountedSession:
        """The session of this process, or ``CountedError`` saying how to start it under the runner."""
        env = os.environ if environ is None else environ
        out = env.get(OUT_DIR_ENV)
        if not out:
            raise CountedError(NOT_UNDER_RUNNER)
        if env.get(MODE_ENV) == "whole":
            raise CountedError("this whole command is already being counted (energybench measure --meter counted): a "
                               "window inside it would stop the count; run windows under count_target instead")
        requests = ClientRequests()
        if requests.running_on_valgrind() == 0:
            raise CountedError(f"{OUT_DIR_ENV} is set but this process is not under valgrind: {NOT_UNDER_RUNNER}")
        return cls(requests, Path(out))

    @contextmanager
    def window(self, name: str = "window") -> Iterator[WindowHandle]:
        """Count the body; ``handle.counts`` holds the raw counts (toggle overhead included) afterwards."""
        self._seq += 1
        label = f"energybench:{self._seq}:{_safe(name)}"
        handle = WindowHandle(name)
        requests = self._requests
        dump = requests.dump_request(label.encode("ascii"))
        began = time.perf_counter()
        requests.start_instrumentation()
        requests.zero_stats()
        try:
            yield handle
        finally:
            requests.dump_stats_at(dump)
            requests.stop_instrumentation()
            handle.wall_s = time.perf_counter() - began
            handle.dump = self._find(label)
            handle.counts = dict(handle.dump.events)

    def count_calls(self, fn: Callable[[], Any], iterations: int = 1, *, warmup: int = 1, name: str | None = None,
                    profile: Profile | None = None) -> CountedResult:
        """Count ``iterations`` calls of ``fn`` (after ``warmup`` uncounted calls) and price them.

        Raises ``CountedError`` (with the counts kept in ``.result``) when the calls started processes or
        used a GPU, which the simulator cannot see.
        """
        return self.count(fn, iterations, warmup=warmup, name=name, profile=profile)[0]

    def count(self, fn: Callable[[], Any], iterations: int = 1, *, warmup: int = 1, name: str | None = None,
              profile: Profile | None = None, warm: Callable[[], Any] | None = None) -> tuple[CountedResult, Any]:
        """``count_calls``, also returning what the last counted call returned (the pytest fixture hands it back
        to the test). ``warm`` makes the ``warmup`` calls instead of ``fn``: a call with fresh arguments when
        ``fn``'s own must not be used twice (``energy.pedantic`` with a ``setup``)."""
        if iterations < 1 or warmup < 0:
            raise CountedError(f"iterations must be >= 1 and warmup >= 0, got {iterations} and {warmup}")
        label = str(name or getattr(fn, "__qualname__", "calls"))
        warnings = _single_thread()
        overhead = self._loop_overhead(iterations, warmup)
        children = _children_state()
        handle, value = self._counted_loop(fn, iterations, warmup, label, warm)
        counts = {e: max(0, handle.counts[e] - overhead[e]) for e in RAW_EVENTS}
        prof = profile or resolve_profile()
        cache = handle.dump.cache if handle.dump and handle.dump.cache else CacheGeometry()
        if cache != prof.cache:
            warnings.append(f"profile {prof.name} was fitted for other simulated caches than this run's: miss "
                            "energies are approximate")
        result = CountedResult(label, counts, iterations, prof, cache, handle.wall_s, overhead, tuple(warnings),
                               {"pid": self.pid, "dump": str(handle.dump.path) if handle.dump else None,
                                "warmup": warmup, "raw": handle.counts}, start_time=time.time() - handle.wall_s)
        _check_contained(result, handle.dump, children)
        return result, value

    def _loop_overhead(self, iterations: int, warmup: int) -> dict[str, int]:
        """The counts of the same window around a no-op, warmed up alike: the toggles plus ``iterations``
        empty calls."""
        key = (iterations, warmup)
        if key not in self._overhead:
            self._overhead[key] = self._counted_loop(_noop, iterations, warmup, "overhead", None)[0].counts
        return self._overhead[key]

    def _counted_loop(self, fn: Callable[[], Any], iterations: int, warmup: int, label: str,
                      warm: Callable[[], Any] | None) -> tuple[WindowHandle, Any]:
        """Warm up, then count ``iterations`` calls; one code path for the benchmark and its no-op twin, so
        the two windows differ by ``fn`` alone."""
        loop = _fresh_loop()
        loop(warm or fn, warmup)
        gc.collect()  # garbage from set-up is collected here, not inside whichever window allocates next
        # The cyclic collector decides when to run (and how much to scan) from how many objects are alive, so
        # the harness, the test session and earlier benchmarks would move a window's counts. Freezing what is
        # alive, then collecting once more to empty the oldest generation, leaves the window's collections only
        # what the window itself creates, the same in every process.
        gc.freeze()
        gc.collect()
        try:
            with self.window(label) as handle:
                value = loop(fn, iterations)
        finally:
            gc.unfreeze()
        return handle, value

    def _find(self, label: str) -> Dump:
        """The dump callgrind wrote for ``label`` (written before the client request returned).

        callgrind numbers a process's dumps 1, 2, ... so the window's file is named by its sequence number, and
        the folder is listed only when that file is not the window's (another dump came in between). What the
        harness allocates between windows decides where the next window's objects lie, and with it the
        window's counts: a listing of the folder made at every window held names whose length follows the pid
        (callgrind.out.<pid>.<n>), and two sessions of one suite whose pids had 4 and 5 digits (pids wrap at
        32,768 here) differed by up to 9.1% (a small convolution); listed only when needed, by 0.36% at most
        (``benchmarks/bench_counted_gate.py``'s suite). Dumps already read are remembered by number.
        """
        number = self._seq + self._foreign
        expected = self.out_dir / f"{OUT_PREFIX}.{self.pid}.{number}"
        if number not in self._seen and expected.is_file():
            self._seen.add(number)
            dump = parse_dump(expected)
            if dump.trigger == f"Client Request: {label}":
                return dump
        for path in sorted(self.out_dir.glob(f"{OUT_PREFIX}.{self.pid}.*"), key=_dump_number):
            found = _dump_number(path)
            if found < 0 or found in self._seen:
                continue
            self._seen.add(found)
            dump = parse_dump(path)
            if dump.trigger == f"Client Request: {label}":
                self._foreign = found - self._seq
                return dump
        raise CountedError(f"callgrind wrote no dump for window {label!r} in {self.out_dir}: is this process "
                           "running under callgrind (not another valgrind tool)?")


def _dump_number(path: Path) -> int:
    """The part number of ``callgrind.out.<pid>.<n>``; -1 for another name."""
    digits = path.suffix[1:]
    return int(digits) if digits.isdigit() else -1


def count_calls(fn: Callable[[], Any], iterations: int = 1, *, warmup: int = 1, name: str | None = None,
                profile: Profile | None = None) -> CountedResult:
    """``CountedSession.count_calls`` on this process's session (attached on first use)."""
    return _session().count_calls(fn, iterations, warmup=warmup, name=name, profile=profile)


_SESSIONS: dict[int, CountedSession] = {}  # by pid: a forked child needs its own (its dumps carry its pid)


def _session() -> CountedSession:
    pid = os.getpid()
    if pid not in _SESSIONS:
        _SESSIONS[pid] = CountedSession.attach()
    return _SESSIONS[pid]


def _loop(fn: Callable[[], Any], iterations: int) -> Any:
    value = None
    for _ in range(iterations):
        value = fn()
    return value


def _fresh_loop() -> Callable[[Callable[[], Any], int], Any]:
    """``_loop`` with its own code object: CPython 3.11+ specialises a call site for the function it calls,
    in caches kept per code object, so a loop shared by the no-op and the benchmark would be re-specialised
    inside every window, counting the interpreter's bookkeeping as the benchmark's."""
    return types.FunctionType(_loop.__code__.replace(), _loop.__globals__, "_loop")


def _noop() -> None:
    return None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:/\[\]=-]", "_", name)[:120] or "window"


def _single_thread() -> list[str]:
    """One torch thread (valgrind runs threads one at a time, and a pool's spinning depends on timing)."""
    notes = []
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        notes.append(f"torch used {torch.get_num_threads()} threads; set to 1 under the simulator")
        torch.set_num_threads(1)
    alive = threading.active_count()
    if alive > 1:
        notes.append(f"{alive} Python threads are alive: their scheduling under valgrind can move the counts")
    return notes


def _children_state() -> tuple[int, frozenset[str]]:
    """Evidence of child processes: page faults of reaped children, and the children still running."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    running: set[str] = set()
    for task in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        try:
            running.update(task.read_text().split())
        except OSError:
            continue
    return usage.ru_minflt + usage.ru_majflt, frozenset(running)


def _check_contained(result: CountedResult, dump: Dump | None, before: tuple[int, frozenset[str]]) -> None:
    """The window's work must have run in this process, on the CPU: anything else is invisible to callgrind."""
    faults, running = _children_state()
    if faults != before[0] or running - before[1]:
        raise CountedError(f"{result.name} started a process while counted; callgrind counts only this one: run "
                           "the work in-process (no subprocess, multiprocessing or num_workers > 0) or use the "
                           "measured meter", result)
    torch = sys.modules.get("torch")
    gpu = dump.gpu_objects if dump else []
    if gpu or (torch is not None and torch.cuda.is_initialized()):
        what = ", ".join(gpu) if gpu else "torch initialised CUDA"
        raise CountedError(f"{result.name} used a GPU ({what}); counted energy models CPU instructions only: run "
                           "it on the CPU or use the measured meter for GPU work", result)
