"""Point labels that never overlap: placed beside their point, further out with a leader line, or in a legend.

Why: on an energy-vs-quality scatter the interesting points cluster (baseline, bf16, fp16 and int8 all near
the baseline's energy and quality), and a label drawn on top of another is worse than none. Placement is done
in the SVG's own coordinates; the chart scales uniformly with the page (``viewBox``), so a layout free of
overlaps there is free of them at phone and at laptop width alike. Text width is estimated per character
(``text_width``) on the generous side of common sans-serif fonts (tests check it against a real browser).

Greedy, hardest first (the point with most neighbours chooses first): each label tries spots next to its
point, then spots further out joined by a leader line; a spot must stay inside the plot and clear every
marker and every label already placed. A label with no free spot goes to the legend under the chart,
drawn with its point's marker, so nothing is ever hidden or illegible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x0, y0, x1, y1

#: Average advance of a character as a fraction of the font size: wide enough for DejaVu Sans / Roboto /
#: Segoe UI lowercase and digits, so an estimated box contains the drawn text.
CHAR_EM = 0.62
MARKER_R = 8.0  # half the side of the box a marker keeps free (radius 6 plus its outline)
PAD = 2.0


def text_width(text: str, size: float) -> float:
    """Estimated width of ``text`` drawn at ``size``: narrow letters count less, capitals and wide ones more."""
    narrow, wide = set("iljtf.,:;'!|() "), set("mwMW%@")
    units = sum(0.45 if c in narrow else 1.3 if c in wide else 1.12 if c.isupper() else 1.0 for c in text)
    return units * CHAR_EM * size


@dataclass(frozen=True)
class Placed:
    """Where a label went: text position and anchor, its box, and a leader line's end when it sits apart."""

    x: float
    y: float
    anchor: str
    box: Box
    leader: tuple[float, float] | None = None  # where the leader line meets the label (it starts at the point)


def overlap(a: Box, b: Box) -> float:
    """Area shared by two boxes (0 when they only touch)."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _spots(r: float) -> list[tuple[float, float, str]]:
    """(dx, dy, anchor) around a point at distance ``r``: beside, above, below and the diagonals."""
    return [(r, 4, "start"), (-r, 4, "end"), (0, -r, "middle"), (0, r + 10, "middle"), (r * 0.8, -r * 0.7, "start"),
            (-r * 0.8, -r * 0.7, "end"), (r * 0.8, r * 0.7 + 8, "start"), (-r * 0.8, r * 0.7 + 8, "end")]


def place_labels(anchors: Sequence[tuple[float, float, str]], bounds: Box, size: float) -> list[Placed | None]:
    """A free spot for each (x, y, text), or ``None`` where there is none (that label goes to a legend)."""
    h = size + 2.0
    taken: list[Box] = [(x - MARKER_R, y - MARKER_R, x + MARKER_R, y + MARKER_R) for x, y, _ in anchors]

    def crowding(i: int) -> int:
        x, y, _ = anchors[i]
        return -sum(1 for j, (x2, y2, _) in enumerate(anchors) if j != i and math.hypot(x2 - x, y2 - y) < 60)

    out: list[Placed | None] = [None] * len(anchors)
    for i in sorted(range(len(anchors)), key=lambda i: (crowding(i), anchors[i][1])):
        x, y, text = anchors[i]
        w = text_width(text, size)
        for r, lead in ((11.0, False), (26.0, True), (44.0, True)):
            for dx, dy, anchor in _spots(r):
                lx = x + dx - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
                box = (lx - PAD, y + dy - h + 3 - PAD, lx + w + PAD, y + dy + 3 + PAD)
                inside = box[0] >= bounds[0] and box[2] <= bounds[2] and box[1] >= bounds[1] and box[3] <= bounds[3]
                if inside and all(overlap(box, t) == 0 for t in taken):
                    out[i] = Placed(x + dx, y + dy, anchor, box, _edge(box, x, y) if lead else None)
                    taken.append(box)
                    break
            if out[i] is not None:
                break
    return out


def _edge(box: Box, x: float, y: float) -> tuple[float, float]:
    """The point of ``box`` nearest to (x, y): where a leader line from the marker should end."""
    return min(max(x, box[0]), box[2]), min(max(y, box[1]), box[3])


def distinct_cuts(texts: Iterable[str], cut: Callable[[str, int], str], keep: int,
                  name: Callable[[str], str] = lambda text: text) -> dict[str, str]:
    """Each text shortened by ``cut`` to ``keep`` characters (an ellipsis where text was left out), and further
    only where a label could be read as another text's name: ``distill-hard-w0.5-d0.5`` and
    ``distill-soft-t2-w0.5-d0.5`` both cut in the middle to 16 are ``distill\u2026w0.5-d0.5``, a label that names
    two rows and so neither. Such labels keep one more character at a time until each fits only its own text
    (at worst the whole text). ``name`` is the part that must tell texts apart (a mark after a name, such as
    the Pareto front's ``*``, does not)."""
    out = {t: cut(t, keep) for t in dict.fromkeys(texts)}
    names = {t: name(t) for t in out}
    longest = max((len(t) for t in out), default=0)
    while keep < longest:
        clashing = [t for t, label in out.items()
                    if any(names[u] != names[t] and _reads_as(name(label), names[u]) for u in out)]
        if not clashing:
            break
        keep += 1
        for t in clashing:
            out[t] = cut(t, keep)
    return out


def _reads_as(label: str, text: str) -> bool:
    """Whether ``label`` (``head\u2026tail``, or whole) could stand for ``text``."""
    head, ellipsis, tail = label.partition("\u2026")
    if not ellipsis:
        return label == text
    return len(text) >= len(head) + len(tail) and text.startswith(head) and text.endswith(tail)
