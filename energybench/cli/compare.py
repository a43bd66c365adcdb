"""``energybench compare BASE NEW``: the energy gate outside pytest (exit 0 pass, 1 regression, 2 bad input)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from energybench.atomic import write_error, write_text_atomic
from energybench.errors import ResultsError
from energybench.options import add_to_argparse, from_namespace
from energybench.record import Run

SHARED = ("results", "fail_on", "alpha", "require_baseline", "allow_missing_baseline", "history")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare two runs and fail on an energy regression",
        description=(
            "Compare two saved runs per benchmark (medians, change with 95%% CI, rank test) and apply gates. "
            "BASE and NEW are result files, run ids (0003_main), counters (3), run names, or 'latest' / "
            "'latest-1'. Exit 0: pass, 1: regression, 2: bad input. A missing BASE passes as a first run when "
            "the results directory is empty (or with --allow-missing-baseline); a BASE that matches no run while "
            "other runs are saved is a typo (exit 2)."
        ),
    )
    p.add_argument("base", metavar="BASE", help="baseline run (file, run id, counter, name, latest)")
    p.add_argument("new", metavar="NEW", nargs="?", default="latest", help="new run (default: latest)")
    add_to_argparse(p, SHARED)
    p.add_argument("--markdown", metavar="PATH", help="also write the comparison as Markdown to PATH (overwritten)")
    p.add_argument("--wide", action="store_true",
                   help="print every column on one line (default: fit the terminal, 100 columns when not one)")
    p.set_defaults(func=run)


def _load(ref: str, directory: str) -> Run:
    from energybench.record.storage import load_run, resolve_run

    return load_run(resolve_run(ref, directory))


def run(args: argparse.Namespace) -> int:
    from energybench.render.comparison import format_table, to_markdown
    from energybench.verdicts.compare import compare_runs
    from energybench.verdicts.gate import parse_gates
    from energybench.verdicts.reference import resolve_baseline

    values = from_namespace(args, SHARED)
    gates = parse_gates(values["fail_on"])
    new = _load(args.new, values["results"])
    reference = resolve_baseline(args.base, values["results"], require=values["require_baseline"],
                                 allow_missing=values["allow_missing_baseline"])
    base = reference.run
    if reference.note:
        print(f"note: {reference.note}")
    if base is not None and base.path == new.path:
        raise ResultsError(f"BASE and NEW are the same run ({new.label}); name two different runs")
    from energybench.record.storage import history_runs

    history = history_runs(base, values["results"], values["history"]) if base is not None else []
    cmp = compare_runs(base, new, gates, alpha=values["alpha"], history=history)
    print(format_table(cmp, wide=args.wide))
    sys.stdout.flush()
    if args.markdown:
        try:
            write_text_atomic(args.markdown, to_markdown(cmp))
        except OSError as exc:
            error = write_error("the Markdown comparison", args.markdown, exc, "the table above is the comparison")
            if cmp.exit_code:  # the verdict comes first: a regression stays exit 1, with the line below it
                print(f"energybench: error: {error}", file=sys.stderr)
                return cmp.exit_code
            raise error from None
    return cmp.exit_code
