"""``energybench history``: the trend of benchmarks over saved runs, with the runs where their level changed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from energybench.errors import ConfigError, ResultsError
from energybench.options import add_to_argparse, from_namespace
from energybench.record import FIGURES


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "history",
        help="a benchmark's figure over saved runs, with change points (when did it get slower?)",
        description="Show each benchmark's median (with its 95%% CI) run by run over the saved runs in --results, "
        "oldest first, and mark where its level changed (PELT change-point detection on log run medians).",
    )
    p.add_argument("benchmarks", nargs="*", metavar="BENCHMARK", help="only benchmarks whose key contains this")
    p.add_argument("--name", help="only runs saved under this name (e.g. main)")
    p.add_argument("--figure", default="energy_per_item_j", choices=FIGURES, help="the figure (energy_per_item_j)")
    p.add_argument("--last", type=int, default=50, metavar="N", help="the N most recent runs (50)")
    add_to_argparse(p, ["results"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.record.storage import list_runs, load_readable
    from energybench.render.history import format_trends
    from energybench.verdicts.history import trends

    values = from_namespace(args, ["results"])
    if args.last < 1:
        raise ConfigError(f"--last must be at least 1, got {args.last}")
    paths = list_runs(values["results"])
    if args.name:
        paths = [p for p in paths if p.stem.split("_", 1)[-1] == args.name]
    if not paths:
        raise ResultsError(f"no saved runs{' named ' + repr(args.name) if args.name else ''} in {values['results']}; "
                           "save runs first (energybench run, or pytest --energy-save NAME)")
    runs, skipped = load_readable(paths[-args.last:])  # one unreadable file must not cost the whole history
    for line in skipped:
        print(f"energybench: warning: {line}", file=sys.stderr)
    found = trends(runs, args.figure, args.benchmarks)
    if not found:
        raise ResultsError(f"no benchmark matches {' '.join(args.benchmarks)!r} in {len(paths)} run(s)")
    print(format_trends(found), end="")
    return 0
