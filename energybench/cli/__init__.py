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
import sys
from collections.abc import Sequence
from typing import NoReturn

from energybench.errors import EnergybenchError


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
    parser = build_parser()
    args = _parse(parser, list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EnergybenchError as exc:
        print(f"energybench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("energybench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `energybench report ... | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain
        return 0


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
