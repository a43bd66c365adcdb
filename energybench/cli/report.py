"""``energybench report RESULTS...``: terminal summary, plus optional HTML, Markdown and CSV files.

Every output path is checked before anything is computed (``energybench.outputs``: never a saved run or an
input), and each file is written through a temp file and ``os.replace``: a bad path costs one clear line
(exit 2), never a half-written report or a lost run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError, ResultsError, WriteError
from energybench.options import add_to_argparse, from_namespace
from energybench.outputs import check_outputs, write_output

SHARED = ("results", "fail_on", "alpha", "quality_budget")

DEFAULT_REGIONS = "FRA,DEU,USA,CHN,IND"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="summarise runs: energy per item, ratio to baseline, quality, CO2e (terminal, HTML, Markdown, CSV)",
        description=(
            "Report on one or more saved runs. RESULTS are result files, directories of runs, run ids "
            "(0003_main), counters (3), run names or 'latest'. With two runs the gate verdicts of "
            "`energybench compare` are included (the report itself always exits 0 on success)."
        ),
    )
    p.add_argument("runs", metavar="RESULTS", nargs="+", help="result files, directories or run ids")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report (works offline)")
    p.add_argument("--markdown", metavar="PATH", help="write a compact Markdown table (PR comment, step summary)")
    p.add_argument("--csv", metavar="PATH", help="write the tidy per-round table (one row per round)")
    p.add_argument("--baseline", metavar="METHOD", default="baseline",
                   help="method the ratios are taken against (default: baseline)")
    p.add_argument("--regions", metavar="LIST", default=DEFAULT_REGIONS,
                   help=f"grids to compare CO2e with, after your own (default: {DEFAULT_REGIONS}; "
                        "names: energybench regions)")
    p.add_argument("--wide", action="store_true",
                   help="print every column on one line (default: fit the terminal, 100 columns when not one)")
    add_to_argparse(p, SHARED)
    p.set_defaults(func=run)


def resolve_paths(refs: list[str], directory: str) -> list[Path]:
    """Files for every RESULTS argument, in order, each once; a directory contributes all its runs."""
    from energybench.record.storage import list_runs, resolve_run

    paths: list[Path] = []
    for ref in refs:
        p = Path(ref)
        if p.is_dir():
            found = list_runs(p)
            if not found:
                raise ResultsError(f"no results files (NNNN_name.json) in {p}; run `energybench run` first")
        else:
            found = [resolve_run(ref, directory)]
        paths += [f for f in found if f.resolve() not in {q.resolve() for q in paths}]
    return paths


def load_inputs(refs: list[str], directory: str) -> tuple[list[Any], list[Path]]:
    """The runs of every RESULTS argument, each once, and their files. A file named on the command line must
    load; an unreadable file of a directory, or the newest one when ``latest`` is asked for (the run before it
    is then ``latest``), is skipped with a warning naming it: one bad file must not cost the whole directory."""
    from energybench.record.storage import list_runs, load_latest, load_readable, load_run, resolve_run

    runs: dict[Path, Any] = {}
    skipped: list[str] = []
    for ref in refs:
        if Path(ref).is_dir():
            found, bad = load_readable(list_runs(ref))
        elif (latest := load_latest(ref, directory)) is not None:
            found, bad = [latest[0]], latest[1]
        else:
            found, bad = [load_run(resolve_run(ref, directory))], []
        skipped += bad
        for one in found:
            runs.setdefault(Path(one.path or ref).resolve(), one)  # loaded from a file: it has its path
    for line in dict.fromkeys(skipped):
        print(f"energybench: warning: {line}", file=sys.stderr)
    if not runs:
        raise ResultsError(f"no readable results file in {' '.join(refs)}: each was skipped (see the warnings)")
    return list(runs.values()), list(runs)


def write_report_file(path: str, text: str, what: str) -> None:
    """Atomic write; a failure is one ``WriteError`` line naming the file, the reason and the fix (the terminal
    report was printed first, so nothing computed is lost)."""
    write_output(path, text, what)


def _regions(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    from energybench.carbon import lookup_region

    for n in names:
        lookup_region(n)  # an unknown name fails here with suggestions, before any work
    return names


def run(args: argparse.Namespace) -> int:
    from energybench.render.report_html import render_html
    from energybench.render.report_markdown import render_markdown
    from energybench.render.report_text import render_terminal
    from energybench.report import build_report

    values = from_namespace(args, SHARED)
    regions = _regions(args.regions)
    paths = resolve_paths(args.runs, values["results"])
    check_outputs([(args.html, "HTML report"), (args.markdown, "Markdown report"), (args.csv, "CSV table")],
                  inputs=paths, results=values["results"])  # never over a saved run or an input
    runs, paths = load_inputs(args.runs, values["results"])  # an unreadable file of a directory: skipped, said
    comparison = None
    sessions = len(runs) > 2 and all(r.kind == "pytest" for r in runs)
    if len(runs) == 2 or sessions:
        from energybench.verdicts.compare import compare_runs
        from energybench.verdicts.gate import parse_gates

        # pytest sessions: the newest against the one before, the older ones as its history (as the plugin gates)
        comparison = compare_runs(runs[-2], runs[-1], parse_gates(values["fail_on"]), alpha=values["alpha"],
                                  history=runs[-3::-1])
    elif values["fail_on"]:
        raise ConfigError(f"--fail-on needs exactly two runs to compare (or pytest sessions), got {len(runs)}")
    report = build_report(runs, baseline=args.baseline, regions=regions, comparison=comparison,
                          quality_budget=values["quality_budget"])
    print(render_terminal(report, wide=args.wide), end="")
    failures: list[WriteError] = []  # each file is tried even when another failed; then one line each
    if args.html:
        _write(args.html, lambda: render_html(report), "HTML report", failures)
    if args.markdown:
        _write(args.markdown, lambda: render_markdown(report), "Markdown report", failures)
    if args.csv:
        from energybench.record.frames import load_results
        from energybench.render.csv import safe_csv

        table = load_results(paths)
        _write(args.csv, lambda: safe_csv(table), "CSV table", failures, f" ({len(table)} rounds)")
    for extra in failures[:-1]:
        print(f"energybench: error: {extra}", file=sys.stderr)
    if failures:
        raise failures[-1]
    return 0


def _write(path: str, render: Callable[[], str], what: str, failures: list[WriteError], detail: str = "") -> None:
    try:
        write_report_file(path, render(), what)
    except WriteError as exc:
        failures.append(exc)
    else:
        print(f"{what}: {path}{detail}")
