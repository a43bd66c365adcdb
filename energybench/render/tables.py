"""Tables for terminals, CI logs and Markdown: the one layout every command prints.

``markdown_table`` escapes every cell: names come from result files, and a ``|`` or ``<script>`` in a
benchmark name must neither break the table nor become markup in a PR comment.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from energybench.render.printable import printable

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Collection[int] = ()) -> list[str]:
    """Columns padded to their widest cell; indexes in ``right`` are right-aligned (numbers)."""
    cells = [list(headers)] + [[" ".join(printable(str(c)).split()) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]


def md_escape(text: object) -> str:
    """Text safe inside a Markdown table cell: HTML entities, Markdown specials backslashed, one line."""
    s = printable(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A GitHub-flavoured table; ``align`` is one letter per column (``l``/``r``/``c``), left by default.

    Cells are escaped here, so callers pass raw names and figures.
    """
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    spec = [marks.get(align[i] if i < len(align) else "l", "---") for i in range(len(headers))]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "| " + " | ".join(spec) + " |"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
