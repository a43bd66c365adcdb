"""Plain-text tables for terminals and CI logs, the one layout every command prints."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Collection[int] = ()) -> list[str]:
    """Columns padded to their widest cell; indexes in ``right`` are right-aligned (numbers)."""
    cells = [list(headers)] + [[" ".join(str(c).split()) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
