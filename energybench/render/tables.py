"""Tables for terminals, CI logs and Markdown: the one layout every command prints.

``markdown_table`` escapes every cell: names come from result files, and a ``|`` or ``<script>`` in a
benchmark name must neither break the table nor become markup in a PR comment.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from energybench.render.labels import distinct_cuts
from energybench.render.printable import printable

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
#: Width of a table that does not go to a terminal (a CI log, a file, a pipe): what a PR comment, a paper's
#: listing or a side-by-side diff shows without wrapping.
DEFAULT_WIDTH = 100
GAP = "  "


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


def wrap(line: str, width: int | None = None, hang: int = 4) -> list[str]:
    """``line`` wrapped to ``width`` (the terminal's by default), later lines indented by ``hang`` spaces past
    the line's own indent; words (names, paths) are never broken."""
    width = terminal_width() if width is None else width
    lead = len(line) - len(line.lstrip(" "))
    return textwrap.wrap(line[lead:], width, initial_indent=" " * lead, subsequent_indent=" " * (lead + hang),
                         break_long_words=False, break_on_hyphens=False) or [line]


def terminal_width(default: int = DEFAULT_WIDTH) -> int:
    """Columns of the terminal on stdout, or ``default`` when it is not a terminal (``$COLUMNS`` wins, as in
    ``shutil.get_terminal_size``)."""
    return shutil.get_terminal_size((default, 24)).columns


@dataclass(frozen=True)
class Column:
    """A column of a ``fit_table``: its header lines, alignment, and when it may be left out.

    ``drop``: 0 never; otherwise columns are left out highest ``drop`` first until the table fits.
    """

    header: tuple[str, ...]
    right: bool = False
    drop: int = 0
    shrink: bool = False  # a name column: cut in the middle (``test_a_lo…_to_be[3]``) when nothing else helps


Cell = tuple[str, ...]  # a cell's parts: one line when the table is wide enough, one part per line when folded
Row = Sequence[Cell] | str  # a str is a heading line between rows (a group title)


@dataclass(frozen=True)
class Fitted:
    """A laid-out table: its lines, the headers of the columns left out to fit, and whether cells were folded."""

    lines: list[str]
    dropped: tuple[str, ...] = ()
    folded: bool = False


def _clean(text: str) -> str:
    """One line of printable text: names and notes come from results files and plugins anyone can write."""
    return " ".join(printable(str(text)).split())


def _layout(columns: Sequence[Column], rows: Sequence[Row], fold: bool, indent: str) -> list[str]:
    def lines_of(cell: Cell) -> list[str]:
        parts = [_clean(p) for p in cell if _clean(p)]
        return (parts or [""]) if fold else [" ".join(parts)]

    header = [list(c.header) if fold else [" ".join(c.header)] for c in columns]
    body = [[lines_of(cell) for cell in row] if not isinstance(row, str) else row for row in rows]
    widths = [max([len(x) for x in header[i]] + [len(x) for r in body if not isinstance(r, str) for x in r[i]])
              for i in range(len(columns))]

    def emit(cells: list[list[str]]) -> list[str]:
        height = max(len(c) for c in cells)
        out = []
        for k in range(height):
            parts = []
            for c, w, col in zip(cells, widths, columns, strict=True):
                text = c[k] if k < len(c) else ""
                parts.append(text.rjust(w) if col.right else text.ljust(w))
            out.append((indent + GAP.join(parts)).rstrip())
        return out

    lines = emit([h + [""] * (max(len(x) for x in header) - len(h)) for h in header])
    lines.append(indent + GAP.join("-" * w for w in widths))
    for r in body:
        lines += [r] if isinstance(r, str) else emit(r)
    return lines


def fit_table(columns: Sequence[Column], rows: Sequence[Row], width: int | None = None, *, indent: str = "",
              wide: bool = False) -> Fitted:
    """A text table no wider than ``width`` (default: the terminal's, 100 when not a terminal).

    Tried in order, keeping the first that fits: every column on one line per row; cells folded (each part of
    a cell on its own line, e.g. a figure above its interval); the same with columns left out, highest
    ``Column.drop`` first (the caller says which: ``Fitted.dropped``); then names cut in the middle
    (``Column.shrink``, not below 16 characters, never two alike): a name is what tells rows apart; last, long
    text cells wrapped (``_wrapped``). ``wide`` keeps every column on one line whatever the width. Heading rows
    (plain strings) are left whole.
    """
    width = terminal_width() if width is None else width
    if wide:
        return Fitted(_layout(columns, rows, False, indent))
    order = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    lines: list[str] = []
    cols: list[Column] = []
    sub: list[Row] = []
    for n in range(len(order) + 1):
        dropped = order[:n]
        keep = [i for i in range(len(columns)) if i not in dropped]
        cols = [columns[k] for k in keep]
        sub = [r if isinstance(r, str) else [r[k] for k in keep] for r in rows]
        last = n == len(order)
        for fold, cut in ((False, False), (True, False), *(((True, True),) if last else ())):
            if cut:
                sub = _shrunk(cols, sub, lines, width, 16)
            lines = _layout(cols, sub, fold, indent)
            if _fits(lines, rows, width):
                return Fitted(lines, tuple(" ".join(columns[d].header) for d in dropped), fold)
    return Fitted(_wrapped(cols, sub, width, indent), tuple(" ".join(columns[d].header) for d in order), True)


def _shrunk(cols: Sequence[Column], rows: Sequence[Row], lines: Sequence[str], width: int, floor: int) -> list[Row]:
    """Rows with the cells of ``shrink`` columns no longer than their column's width less what the widest line
    is over ``width`` (and not below ``floor``): only the longest names are cut, and never two alike."""
    over = max((len(line) for line in lines), default=0) - width
    cuts: dict[int, dict[str, str]] = {}
    for i, c in enumerate(cols):
        if c.shrink:
            parts = [p for r in rows if not isinstance(r, str) for p in r[i]]
            keep = max(floor, max((len(p) for p in parts), default=0) - over)
            cuts[i] = distinct_cuts(parts, _cut_name, keep, name=_first_word)
    return [r if isinstance(r, str) else [tuple(cuts[i][p] for p in cell) if i in cuts else cell
                                          for i, cell in enumerate(r)] for r in rows]


def _first_word(text: str) -> str:
    """A row's name: ``int8-dynamic`` of ``int8-dynamic *`` (the mark after it is not part of the name)."""
    return text.split(" ", 1)[0]


def _cut_name(part: str, keep: int) -> str:
    """``part`` no longer than ``keep``, its first word (the name) cut in the middle and a mark after it kept."""
    if len(part) <= keep:
        return part
    word, space, mark = part.partition(" ")
    return cut_middle(word, max(keep - len(space + mark), 3)) + space + mark


def cut_middle(part: str, keep: int) -> str:
    """``part`` cut in the middle to ``keep`` characters when longer: the ends are what tell names apart (a
    module's name, a test's parameters)."""
    if len(part) <= keep:
        return part
    head = (keep - 1) // 2
    return part[:head] + "\u2026" + part[len(part) - (keep - 1 - head):]


def _wrapped(cols: Sequence[Column], rows: Sequence[Row], width: int, indent: str, floor: int = 12) -> list[str]:
    """The last resort, so a table never runs past ``width`` while saying it fits: the text cells (a long
    verdict such as ``cannot be tested: ... set aside ...``, a quality note; never a figure) wrapped onto more
    lines, the widest column first, none narrower than ``floor`` or its longest word."""
    rows = list(rows)
    stuck: set[int] = set()
    while True:
        lines = _layout(cols, rows, True, indent)
        over = max((len(line) for line in lines if line not in {r for r in rows if isinstance(r, str)}),
                   default=0) - width
        widths = {i: max((len(_clean(p)) for r in rows if not isinstance(r, str) for p in r[i]), default=0)
                  for i, c in enumerate(cols) if not c.right and not c.shrink and i not in stuck}
        widths = {i: w for i, w in widths.items() if w > floor}
        if over <= 0 or not widths:
            return lines
        i = max(widths, key=lambda k: widths[k])
        limit = max(floor, widths[i] - over)
        rows = [r if isinstance(r, str) else [tuple(line for part in cell for line in (
                    textwrap.wrap(_clean(part), limit, break_long_words=False, break_on_hyphens=False) or [""]))
                    if k == i else cell for k, cell in enumerate(r)] for r in rows]
        if max((len(p) for r in rows if not isinstance(r, str) for p in r[i]), default=0) >= widths[i]:
            stuck.add(i)  # one word longer than the limit: this column cannot narrow further


def _fits(lines: Sequence[str], rows: Sequence[Row], width: int) -> bool:
    headings = {r for r in rows if isinstance(r, str)}
    return all(len(line) <= width for line in lines if line not in headings)
