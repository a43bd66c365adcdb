"""The text listing of plugins (subjects, methods, intensity providers, exporters): one line per name, the
names aligned, what it does or why it is unavailable, and where a third party's plugin comes from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from energybench.render.tables import wrap

__all__ = ["plugin_lines"]


def plugin_lines(rows: Sequence[Mapping[str, Any]], detail: Callable[[Mapping[str, Any]], str] | None = None,
                 width: int | None = None) -> list[str]:
    """Rows hold ``name``, ``origin`` (``builtin`` or the entry point), ``available``, ``description`` and
    ``reason``; ``detail`` says what an available row shows (default: its description)."""
    names = max((len(r["name"]) for r in rows), default=4)
    out: list[str] = []
    for r in rows:
        origin = "" if r["origin"] == "builtin" else f"  [plugin {r['origin']}]"
        shown = (detail(r) if detail else r["description"]) if r["available"] else f"unavailable: {r['reason']}"
        out += wrap(f"  {r['name'].ljust(names)}  {shown}{origin}", width, hang=names + 2)
    return out
