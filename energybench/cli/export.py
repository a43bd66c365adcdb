"""``energybench export NAME RUN``: a saved run in another tool's format (MLflow, Prometheus, dashboards...).

The exporters come from the ``energybench.exporters`` entry-point group (built-ins included); each declares
its own options, parsed here only once NAME is known, so other commands never load them. This command owns
what every exporter shares: the output-path checks (``energybench.outputs``), the atomic write of the text,
names without control characters, and URLs without credentials in what is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from energybench.errors import ConfigError
from energybench.options import add_to_argparse, from_namespace
from energybench.outputs import check_outputs, write_output
from energybench.redact import redact
from energybench.render.plugins import plugin_lines
from energybench.render.printable import printable, printable_run


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="export a saved run: mlflow, prometheus, github-benchmark, bencher, hf-card, codecarbon...",
        description="Export a saved run to the format of another tool. `energybench export --list` lists the "
        "exporters (plugins too); `energybench export NAME --help` shows one's options.",
    )
    p.add_argument("--list", action="store_true", help="list the exporters and whether each can be used here")
    p.add_argument("--json", action="store_true", help="with --list: machine-readable JSON")
    p.add_argument("exporter", nargs="?", metavar="NAME", help="exporter (see --list)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="RUN and the exporter's options")
    p.set_defaults(func=run)


def _list(as_json: bool) -> int:
    from energybench.exporters import exporters

    rows: list[dict[str, Any]] = []
    for name, e in sorted(exporters().items()):
        reason = e.error or e.obj.unavailable_reason()
        rows.append({"name": name, "origin": e.origin, "available": reason is None,
                     "description": e.obj.description if e.obj is not None else "", "reason": reason})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print("\n".join(plugin_lines(rows)))
    return 0


def _parser(name: str, exporter: Any) -> argparse.ArgumentParser:
    from energybench.cli import _OneLineErrors

    p = _OneLineErrors(prog=f"energybench export {name}", description=exporter.description)
    p.add_argument("run", metavar="RUN", help="a results file, run id (0003_main), counter, name or 'latest'")
    p.add_argument("--output", "-o", metavar="PATH", help="write here instead of standard output")
    add_to_argparse(p, ["results"])
    exporter.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args.json)
    if not args.exporter:
        raise ConfigError("name an exporter: energybench export NAME RUN (list: energybench export --list)")
    from energybench.exporters import get_exporter
    from energybench.record.storage import load_run, resolve_run

    exporter = get_exporter(args.exporter)
    opts = _parser(args.exporter, exporter).parse_args(args.rest)
    values = from_namespace(opts, ["results"])
    source = resolve_run(opts.run, values["results"])
    what = f"{args.exporter} export"
    # every path an exporter writes passes the same checks as every other output: before any work, never a
    # saved run or the exported run itself
    check_outputs([(getattr(opts, dest, None), what) for dest in exporter.writes], inputs=[source],
                  results=values["results"])
    record = printable_run(load_run(source))  # names reach other tools' files and terminals as plain text
    result = exporter.export(record, opts)
    if result.text is not None:
        text = printable(result.text)
        if opts.output and opts.output != "-":
            write_output(opts.output, text, what)
            print(redact(f"wrote {opts.output}"), file=sys.stderr)
        else:
            sys.stdout.write(text)
    for line in result.messages:
        print(printable(redact(line)), file=sys.stderr)
    return 0
