"""``energybench compare BASE NEW``: the energy gate outside pytest (exit 0 pass, 1 regression, 2 bad input)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from energybench.errors import ResultsError, WriteError
from energybench.options import add_to_argparse, from_namespace
from energybench.outputs import check_outputs, write_output
from energybench.record import Run

SHARED = ("results", "fail_on", "alpha", "require_baseline", "allow_missing_baseline", "allow_blind", "history")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare two runs and fail on an energy regression",
        description=(
            "Compare two saved runs per benchmark (medians, change with 95%% CI, a t test on the logs that allows "
            "for this machine's between-run spread) and apply gates; each gate states the change it can detect. "
            "BASE and NEW are result files, run ids (0003_main), counters (3), run names, or 'latest' / "
            "'latest-1'. Exit 0: pass, 1: regression, 2: bad input, 6: a gate could not fail (blind; "
            "--allow-blind passes it). A missing BASE passes as a first run when "
            "the results directory is empty (or with --allow-missing-baseline); a BASE that matches no run while "
            "other runs are saved is a typo (exit 2)."
        ),
    )
    p.add_argument("base", metavar="BASE", help="baseline run (file, run id, counter, name, latest)")
    p.add_argument("new", metavar="NEW", nargs="?", default="latest", help="new run (default: latest)")
    add_to_argparse(p, SHARED)
    p.add_argument("--markdown", metavar="PATH", help="also write the comparison as Markdown to PATH (overwritten)")
    p.add_argument("--json", metavar="PATH", help="also write the comparison as JSON to PATH (overwritten): rows, "
                   "one p each, and per gate its decision, detectable change and blindness")
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
    inputs = [r.path for r in (base, new) if r is not None and r.path]
    check_outputs([(args.markdown, "Markdown comparison"), (args.json, "JSON comparison")],
                  results=values["results"], inputs=inputs)  # never over a saved run
    from energybench.record.storage import history_runs
    from energybench.verdicts.drift import from_store

    history = history_runs(base, values["results"], values["history"]) if base is not None else []
    drift = from_store(base, new, values["results"]) if base is not None else None
    cmp = compare_runs(base, new, gates, alpha=values["alpha"], history=history, drift=drift,
                       allow_blind=values["allow_blind"])
    print(format_table(cmp, wide=args.wide))
    sys.stdout.flush()
    from energybench.render.comparison_json import to_json

    for path, what, render in ((args.markdown, "Markdown comparison", to_markdown),
                               (args.json, "JSON comparison", to_json)):
        if not path:
            continue
        try:
            write_output(path, render(cmp), what, "the table above is the comparison")
        except WriteError as error:
            if cmp.exit_code:  # the verdict comes first: a regression stays exit 1, with the line below it
                print(f"energybench: error: {error}", file=sys.stderr)
                return cmp.exit_code
            raise
    return cmp.exit_code
