"""``energybench subjects``: every benchmark subject and compression method, built-in or plugin, and
whether it can be used here (a plugin that fails to load is listed with its reason, not hidden)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from energybench.render.plugins import plugin_lines


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("subjects", help="list benchmark subjects and compression methods (plugins too)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def _rows() -> dict[str, list[dict[str, Any]]]:
    from energybench.subjects.api import methods, subjects

    out: dict[str, list[dict[str, Any]]] = {"subjects": [], "methods": []}
    for name, e in sorted(subjects().items()):
        row: dict[str, Any] = {"name": name, "origin": e.origin, "available": e.error is None}
        if e.error:
            row["reason"] = e.error
        else:
            reason = e.obj.unavailable_reason()
            row.update(description=e.obj.description, default_methods=list(e.obj.default_methods))
            if reason:
                row.update(available=False, reason=reason)
        out["subjects"].append(row)
    for name, e in sorted(methods().items()):
        row = {"name": name, "origin": e.origin, "available": e.error is None}
        if e.error:
            row["reason"] = e.error
        else:
            row.update(description=e.obj.description, example=e.obj.example or name)
        out["methods"].append(row)
    return out


def run(args: argparse.Namespace) -> int:
    data = _rows()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for section in ("subjects", "methods"):
        print(f"{section}:")
        print("\n".join(plugin_lines(data[section], lambda r: r["description"] + (
            f"  (e.g. {r['example']})" if r.get("example") else ""))))
    return 0
