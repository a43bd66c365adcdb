"""``energybench sensors``: what can be read on this machine, measured or estimated, and why not."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from energybench.errors import ConfigError
from energybench.options import SAMPLER_OPTIONS, add_to_argparse, from_namespace, sampler_options
from energybench.render.tables import wrap


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sensors", help="list samplers, whether they can read here, and why not")
    add_to_argparse(parser, SAMPLER_OPTIONS, "samplers")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.samplers import detect_samplers, probe_all

    options = sampler_options(from_namespace(args, SAMPLER_OPTIONS))
    probes = probe_all(options)
    try:
        used = {s.name for s in detect_samplers(options)}
        problem = None
    except ConfigError as exc:  # still show the table: it is what explains the problem
        used, problem = set(), str(exc)
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "available": p.available,
            "used": p.name in used,
            "source": p.source,
            "domains": list(p.domains),
            "reason": p.reason,
            "details": p.details,
        }
        for p in probes
    ]
    from energybench.counted.probe import probe as probe_counted

    counted = probe_counted()  # a meter, not a sampler: listed after them, never "used" by the samplers' meter
    if args.json:
        print(json.dumps([*rows, {"name": counted.name, "meter": "counted", "available": counted.available,
                                  "used": False, "source": counted.source, "domains": [], "reason": counted.reason,
                                  "details": counted.details}], indent=2, default=str))
        return 2 if problem else 0
    width = max(len(r["name"]) for r in rows) if rows else 8
    for r in rows:
        print("\n".join(_row_lines(r, width, problem)))
    state = "available with --meter counted" if counted.available else "unavailable"
    print("\n".join(wrap(f"{counted.name:<{width}}  {counted.source:<9}  {state}: {counted.reason}", hang=width + 13)))
    if problem:
        print(f"energybench: error: {problem}", file=sys.stderr)
        return 2
    if not used:
        print("no sampler can read here: energy cannot be measured or estimated")
        return 1
    if any(r["used"] and r["source"] == "estimated" for r in rows):
        print("\n".join(wrap("estimated = a power model (no hardware counter), not a measurement; see README "
                             "'What estimated means'")))
    return 0


def _row_lines(r: dict[str, Any], width: int, problem: str | None) -> list[str]:
    """One sampler's lines: whether it reads here and is used, its domains or why not, then its warnings."""
    if r["available"]:
        state = ("used" if r["used"] else "available, not used (see the error below)" if problem
                 else "available, not used (a measured sampler covers its device)")
        line = f"{r['name']:<{width}}  {r['source']:<9}  {state}: {', '.join(r['domains'])}"
        if r["reason"]:
            line += f"  ({r['reason']})"
    else:
        line = f"{r['name']:<{width}}  {'-':<9}  unavailable: {r['reason']}"
    out = wrap(line, hang=width + 13)  # under the state, so the name and source columns stay clear
    if r["details"].get("config_error"):
        out += wrap(f"{'':<{width}}  {'':<9}  cannot be used as configured: {r['details']['config_error']}", hang=2)
    for warning in r["details"].get("warnings") or ():
        out += wrap(f"{'':<{width}}  {'':<9}  warning: {warning}", hang=2)
    return list(out)
