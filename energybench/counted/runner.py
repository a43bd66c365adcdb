"""Starting programs under the simulator, and turning what callgrind wrote into checked results.

Two ways in:

* ``run_command(argv)``: the whole program is counted (``energybench measure --meter counted -- CMD``).
* ``count_targets(["module:factory", ...], iterations)``: a fresh Python process under callgrind with instrumentation
  off imports ``module``, calls ``factory()`` to set up (uncounted) and gets the callable to count, then
  ``window.count_calls`` counts its calls (``energybench.counted.child``). Calibration and the benchmark
  script use it; the pytest plugin can re-run a whole session the same way (``session_invocation``).

Whatever the program did, everything callgrind wrote is read back before any check fails, so the counts of a
run that broke a rule (it forked, it used a GPU) still reach the user inside the ``CountedError``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from energybench.counted.errors import CountedError
from energybench.counted.profile import Profile, resolve_profile
from energybench.counted.result import CountedResult, reprice
from energybench.counted.valgrind import (
    CacheGeometry,
    Dump,
    Invocation,
    collect,
    invocation,
    require_valgrind,
    valgrind_failure,
    valgrind_version,
    window_label,
)
from energybench.errors import Terminated

RESULT_FILE = "result.json"


@dataclass
class CommandRun:
    """One program run under callgrind: its exit code, wall time and every dump it left."""

    argv: list[str]
    returncode: int
    wall_s: float
    pid: int
    dumps: list[Dump]
    out_dir: Path
    valgrind_version: str
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False

    def processes(self) -> dict[int, Dump]:
        """Whole-process dumps by pid: more than one means the program started other processes."""
        return {d.pid: d for d in self.dumps if window_label(d.trigger) is None}


@contextlib.contextmanager
def dump_dir(keep: Path | None) -> Iterator[Path]:
    """A fresh directory for one run's dumps: a temporary one, or a new one inside ``keep`` that stays (the
    dumps open in kcachegrind / callgrind_annotate)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="counted-", dir=keep)).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="energybench-counted-") as tmp:
        yield Path(tmp)


def session_invocation(argv: Sequence[str], out_dir: Path, *, whole_program: bool = False,
                       geometry: CacheGeometry | None = None, environ: Mapping[str, str] | None = None,
                       trace_children: bool = True) -> Invocation:
    """The command line and environment that run ``argv`` under the counted meter, writing into ``out_dir``.
    With ``whole_program=False`` only ``count_calls`` windows are counted (the pytest plugin's mode, which also
    passes ``trace_children=False`` so that other tests' subprocesses run at native speed)."""
    valgrind = require_valgrind(environ)
    return invocation(list(argv), out_dir.resolve(), geometry=geometry or CacheGeometry(), whole_program=whole_program,
                      valgrind=valgrind, environ=environ, trace_children=trace_children)


def wait_for(child: subprocess.Popen[Any]) -> tuple[int, bool]:
    """Wait for a program started under valgrind: its exit code and whether we were interrupted. Ctrl-C reaches
    it as it reaches us (one process group); a SIGTERM sent to us alone is passed on. Either way we wait for it,
    so that it writes its dumps and nothing counted is lost."""
    interrupted = False
    while True:
        try:
            return child.wait(), interrupted
        except Terminated:
            interrupted = True
            child.terminate()
        except KeyboardInterrupt:
            interrupted = True


def run_command(argv: Sequence[str], *, profile: Profile | None = None, whole_program: bool = True,
                keep: Path | None = None, environ: Mapping[str, str] | None = None) -> CommandRun:
    """Run ``argv`` under callgrind with the profile's caches; returns once it exits (Ctrl-C reaches it as
    it reaches us, and its dumps are still read)."""
    prof = profile or resolve_profile(environ=environ)
    with dump_dir(keep) as out_dir:
        return _run(argv, out_dir, prof.cache, whole_program, environ)


def _run(argv: Sequence[str], out_dir: Path, geometry: CacheGeometry, whole_program: bool,
         environ: Mapping[str, str] | None) -> CommandRun:
    valgrind = require_valgrind(environ)
    version = valgrind_version(valgrind)
    inv = invocation(list(argv), out_dir, geometry=geometry, whole_program=whole_program, valgrind=valgrind,
                     environ=environ)
    began = time.perf_counter()
    child = subprocess.Popen(inv.argv, env=inv.env)
    code, interrupted = wait_for(child)
    wall = time.perf_counter() - began
    dumps = collect(out_dir)
    if not dumps:
        why = valgrind_failure(out_dir) or f"exit code {code}"
        raise CountedError(f"callgrind counted nothing for {argv[0]} ({why}): check that the command runs "
                           "without energybench, then `valgrind --tool=callgrind CMD` by hand")
    return CommandRun(list(argv), code, wall, child.pid, dumps, out_dir, version, inv.warnings, interrupted)


def command_result(run: CommandRun, profile: Profile, name: str) -> CountedResult:
    """The whole program's counts as a result; ``CountedError`` (result kept) if it forked or used a GPU."""
    processes = run.processes()
    main = processes.get(run.pid) or next(iter(processes.values()))
    result = CountedResult(name, dict(main.events), 1, profile, main.cache or profile.cache, run.wall_s,
                           warnings=tuple(run.warnings),
                           details={"valgrind": run.valgrind_version, "tool": "callgrind", "whole_program": True,
                                    "returncode": run.returncode, "processes": len(processes)},
                           start_time=time.time() - run.wall_s)
    _check_processes(run, result, processes)
    gpu = sorted({o for d in run.dumps for o in d.gpu_objects})
    if gpu:
        raise CountedError(f"{name} used a GPU ({', '.join(gpu[:3])}); counted energy models CPU instructions "
                           "only: run it on the CPU or use the measured meter for GPU work", result)
    return result


def count_targets(targets: Sequence[str], iterations: int = 1, *, warmup: int = 1, profile: Profile | None = None,
                  names: Sequence[str] | None = None, python: str | None = None, keep: Path | None = None,
                  environ: Mapping[str, str] | None = None) -> list[CountedResult]:
    """Count ``iterations`` calls of the callable each target's factory returns (``module:factory`` or
    ``path/to/file.py:factory``), all in one fresh process; set-up and imports are not counted."""
    prof = profile or resolve_profile(environ=environ)
    labels = list(names or targets)
    with dump_dir(keep) as out_dir:
        argv = [python or sys.executable, "-m", "energybench.counted.child", *targets, "--iterations", str(iterations),
                "--warmup", str(warmup), "--result", str(out_dir / RESULT_FILE)]
        for label in labels:
            argv += ["--name", label]
        run = _run(argv, out_dir, prof.cache, False, environ)
        result_path = out_dir / RESULT_FILE
        if not result_path.is_file():
            raise CountedError(f"counting {', '.join(targets)} failed (exit code {run.returncode}, see its error "
                               "above): fix the target so that `python -m energybench.counted.child TARGET` runs")
        payload = json.loads(result_path.read_text(encoding="utf-8"))
        results = [_finish(reprice(r, prof), run) for r in payload["results"]]
        if payload.get("error"):
            raise CountedError(payload["error"], results[-1])
        for result in results:
            _check_processes(run, result, run.processes())
        return results


def count_target(target: str, iterations: int = 1, *, warmup: int = 1, profile: Profile | None = None,
                 name: str | None = None, **kwargs: Any) -> CountedResult:
    """``count_targets`` for one target."""
    return count_targets([target], iterations, warmup=warmup, profile=profile, names=[name or target], **kwargs)[0]


def _finish(result: CountedResult, run: CommandRun) -> CountedResult:
    details = {**result.details, "valgrind": run.valgrind_version, "tool": "callgrind", "process_wall_s": run.wall_s}
    return replace(result, warnings=(*run.warnings, *result.warnings), details=details)


def _check_processes(run: CommandRun, result: CountedResult, processes: Mapping[int, Dump]) -> None:
    if len(processes) <= 1:
        return
    others = [d for pid, d in processes.items() if pid != run.pid]
    shown = "; ".join(d.command[:60] for d in others[:3])
    extra = sum(d.events["Ir"] for d in others)
    raise CountedError(f"{run.argv[0]} started {len(others)} other process(es) ({shown}) with {extra:,} instructions "
                       "the result leaves out: count one process (give the program itself, not a wrapper script or "
                       "shim; no subprocess or multiprocessing) or use the measured meter", result)

