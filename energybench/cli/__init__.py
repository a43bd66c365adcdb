"""The ``energybench`` command line.

Each subcommand lives in its own module in this package and exposes ``register(subparsers)``; this module
discovers them, so adding a command never means editing a central list. Subcommand modules keep heavy
imports (torch, pandas) inside their run functions: ``energybench sensors`` must start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from energybench.errors import (
    EXIT_INTERNAL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EnergybenchError,
    Terminated,
    debug_enabled,
    internal_error_line,
)


class _OneLineErrors(argparse.ArgumentParser):
    """Usage errors as one line naming the problem and where the help is, not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"energybench: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(
        prog="energybench",
        description="Measure the energy (J) and carbon (g CO2e) of ML work, and whether compression saves it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (docs/failure-modes.md): 0, 1 for a verdict or a failed
    command, 2 bad input, 3 a plugin raised, 70 an internal error, 73 a file could not be written (figures
    printed), 130 Ctrl-C, 143 SIGTERM; ``measure`` passes on its command's code."""
    parser = build_parser()
    args = _parse(parser, list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = _terminate_like_ctrl_c()
    try:
        return int(args.func(args) or 0)
    except EnergybenchError as exc:
        _error(str(exc))
        return exc.exit_code
    except Terminated:
        print("energybench: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        print("energybench: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:  # `energybench report ... | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain
        return 0
    except Exception as exc:  # a bug: never a verdict's code, never a bare traceback unless asked for
        if debug_enabled():
            raise
        _error(internal_error_line(exc))
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _error(text: str) -> None:
    from energybench.redact import redact
    from energybench.render.printable import printable

    print(f"energybench: error: {' '.join(printable(redact(text)).split())}", file=sys.stderr)


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(f"signal {signum}")


def _terminate_like_ctrl_c() -> Any:
    """SIGTERM (what a CI timeout or ``kill`` sends) raises ``Terminated`` where Ctrl-C raises
    ``KeyboardInterrupt``, so the same code keeps every finished trial and says so. Only in the main thread
    and only over the default action; returns the handler to restore (``None`` if left alone)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """A command that takes a command line after ``--`` (``energybench ab BASE --fail-on X -- pytest ...``) declares
    ``tail`` (the attribute that receives it): argparse alone would give it everything after BASE."""
    if "--" in argv:
        cut = argv.index("--")
        head = parser.parse_args(argv[:cut])
        if getattr(head, "tail", None):
            setattr(head, head.tail, argv[cut + 1:])
            return head
    return parser.parse_args(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
