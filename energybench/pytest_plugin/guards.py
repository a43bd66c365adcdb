"""What keeps a pytest energy session honest when something other than a test goes wrong.

Three things, kept out of ``pytest_plugin`` so that file stays about benchmarks:

* **SIGTERM** (what a CI timeout sends) ends pytest at once by default, so the session never reaches the
  point where finished benchmarks are saved. ``TermHandler`` turns it into ``pytest.exit``, which pytest
  handles like Ctrl-C: the session finishes, finished benchmarks are saved and printed, and the exit status
  becomes 143 (128 + SIGTERM) instead of a silent death.
* **Option values written with a space.** pytest picks its root directory (and with it every test's node id,
  which is a benchmark's name) before it loads this plugin, so ``--energy-results DIR`` is read then as a
  test path called ``DIR``; if DIR exists and lies outside the project, the root directory and every
  benchmark name change, and a comparison silently finds nothing in common. ``check_rootdir`` recomputes
  the root directory with the options known and refuses the run, with the fix, when they differ.
* **Internal errors.** ``internal_exit`` ends a session whose plugin code failed unexpectedly with pytest's
  own internal-error code (3), one line saying where to report it, and the traceback behind
  ``ENERGYBENCH_DEBUG=1``: never the 1 of a failed test or a regression.
"""

from __future__ import annotations

import copy
import inspect
import os
import shlex
import signal
import threading
from pathlib import Path
from typing import Any, NoReturn

import pytest

from energybench.errors import EXIT_SIGTERM, debug_enabled, internal_error_line

#: pytest's own code for an internal error: what an unexpected exception in this plugin ends a session with.
INTERNAL_ERROR = pytest.ExitCode.INTERNAL_ERROR


class TermHandler:
    """SIGTERM -> ``pytest.exit`` (handled like Ctrl-C), installed only over the default action and only in
    the main thread; ``received`` tells the session to end with 143."""

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None
        self.installed = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # someone (xdist, a CI wrapper, the user) has their own plan for SIGTERM
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self.installed = True

    def _handle(self, signum: int, _frame: object) -> None:
        if self.received:
            return  # the session is already ending: let it finish saving
        self.received = True
        pytest.exit(f"terminated by signal {signum} (SIGTERM): finishing the session to keep finished "
                    "energy benchmarks", returncode=pytest.ExitCode.INTERRUPTED)

    def restore(self) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self._previous)
            self.installed = False

    @staticmethod
    def exit_status() -> int:
        return EXIT_SIGTERM


def internal_exit(exc: BaseException) -> NoReturn:
    """End pytest with exit status 3 and one line for an unexpected exception (re-raise it under debug)."""
    if debug_enabled():
        raise exc
    pytest.exit(f"energybench: {internal_error_line(exc)}", returncode=INTERNAL_ERROR)


def check_rootdir(config: pytest.Config, option_flags: list[str]) -> None:
    """Refuse a run whose root directory (and so every benchmark name) was changed by the value of an
    ``--energy-*`` option given with a space; ``pytest.UsageError`` with the ``=`` spelling as the fix.

    The root directory is recomputed from the real test paths with and without those values; only when the
    values change it, and pytest did use the changed one, is the run refused (a value of another plugin's
    option given with a space is that plugin's business).
    """
    args = _initial_args(config)
    spaced = [(flag, args[i + 1]) for i, flag in enumerate(args[:-1]) if flag in option_flags]
    if not spaced:
        return
    setup = _root_finder(config, args)
    if setup is None:
        return
    positional, find = setup
    correct = find(positional)
    hijacked = find([*positional, *(value for _, value in spaced)])
    if correct is None or hijacked is None or hijacked == correct or Path(config.rootpath) == correct:
        return
    flag, value = next(((f, v) for f, v in spaced if Path(v).exists()), spaced[0])
    raise pytest.UsageError(
        f"energybench: `{flag} {value}` (with a space) made pytest take {value!r} for a test path when it chose "
        f"its root directory ({config.rootpath} instead of {correct}), which renames every benchmark; write "
        f"{flag}={value} instead"
    )


def _initial_args(config: pytest.Config) -> list[str]:
    """The arguments pytest chose its root directory from: ``PYTEST_ADDOPTS`` then the command line."""
    env = os.environ.get("PYTEST_ADDOPTS", "")
    try:
        extra = shlex.split(env) if env else []
    except ValueError:
        extra = []
    return [*extra, *map(str, config.invocation_params.args)]


def _root_finder(config: pytest.Config, args: list[str]) -> tuple[list[str], Any] | None:
    """The real test paths of ``args`` (every option now known) and a function giving the root directory
    pytest would choose for a list of paths; ``None`` if this pytest's internals do not allow it (then
    nothing is refused)."""
    try:
        from _pytest.config.findpaths import determine_setup

        ns = config._parser.parse_known_args(args, namespace=copy.copy(config.option))
        accepted = inspect.signature(determine_setup).parameters
        fixed = {"inifile": ns.inifilename, "override_ini": getattr(ns, "override_ini", None),
                 "rootdir_cmd_arg": ns.rootdir or None, "invocation_dir": config.invocation_params.dir}
        positional = [str(a) for a in ns.file_or_dir]
    except Exception:  # a private API that moved: the check is a courtesy, the run goes on
        return None

    def find(paths: list[str]) -> Path | None:
        try:
            kwargs = {k: v for k, v in {**fixed, "args": paths}.items() if k in accepted}
            return Path(determine_setup(**kwargs)[0])
        except Exception:  # as above
            return None

    return positional, find
