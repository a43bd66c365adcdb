"""Small SVG charts written by hand, so a report needs no plotting library, no CDN and no network.

Every chart is a string of inline SVG that scales to its container (``viewBox`` + ``width=100%``) and escapes
every label it draws: names come from result files, which anyone can write. Each chart carries
``data-plot="<kind>"`` so tests (and people reading the DOM) can tell the charts apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from energybench.render.labels import distinct_cuts, place_labels

# Okabe-Ito (distinguishable with the common kinds of colour blindness), then Paul Tol's muted scheme for
# suites with many subjects; yellow last because it is faint on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#882255", "#44AA99",
           "#999933", "#332288", "#000000", "#F0E442")
BASELINE_COLOR = "#555555"
WIDTH = 480
FONT = 15


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def esc(text: object) -> str:
    """Escape for both element text and attribute values."""
    return escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(v, 12))
    return ticks


def short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _svg(kind: str, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg class="eb-plot" data-plot="{esc(kind)}" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" role="img" aria-label="{esc(title)}" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="{FONT}">'
        f"<title>{esc(title)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = FONT, extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>{esc(text)}</text>'
    )


Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Bar:
    """One horizontal bar; ``low``/``high`` draw an error bar, ``note`` is printed after it."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    color: str = PALETTE[0]
    note: str = ""


# Bars sit under their label (not beside it) so long subject names are shown whole and every bar gets the
# full width, which is what keeps a chart legible at phone width.
LEFT, ROW_H, BAR_H = 6.0, 38.0, 14.0


def _value_axis(ticks: Sequence[float], sx: Callable[[float], float], top: float, axis_y: float, fmt: Formatter,
                axis_label: str) -> list[str]:
    """Grid lines, axis and tick labels; drawn first so the bars lie on top of the grid."""
    out = [f'<path d="M{sx(t):.1f},{top}V{axis_y + 4}" stroke="#e6e6e6"/>' for t in ticks if t]
    out.append(f'<path d="M{LEFT},{top}V{axis_y}H{sx(ticks[-1]):.1f}" stroke="#888" fill="none"/>')
    for t in ticks:
        out.append(_text(sx(t), axis_y + 17, fmt(t) if t else "0", anchor="middle", size=FONT - 2))
    out.append(_text(WIDTH / 2, axis_y + 34, axis_label, anchor="middle", size=FONT - 1))
    return out


def hbar_chart(bars: Sequence[Bar], *, kind: str, title: str, fmt: Formatter, axis_label: str) -> str:
    """Horizontal bars from zero, each under its name, with optional CI whiskers and a note at the end."""
    right_pad, top = 140.0, 4.0  # room for "0.0726 mJ 1.13x" after the longest whisker
    plot_w = WIDTH - LEFT - right_pad
    hi = max([b.high if b.high is not None else b.value for b in bars] + [0.0])
    ticks = nice_ticks(0.0, hi or 1.0)

    def sx(v: float) -> float:
        return LEFT + plot_w * max(v, 0.0) / ticks[-1]

    axis_y = top + ROW_H * len(bars) + 2
    body = _value_axis(ticks, sx, top, axis_y, fmt, axis_label)
    y = top
    for bar in bars:
        by = y + 18
        cy = by + BAR_H / 2
        body.append(
            f'<g class="bar"><title>{esc(bar.label)}: {esc(fmt(bar.value))}</title>'
            + _text(LEFT, y + 14, short(bar.label, 58), size=FONT - 1)
            + f'<rect x="{LEFT}" y="{by:.1f}" width="{sx(bar.value) - LEFT:.1f}" height="{BAR_H}" '
            f'fill="{esc(bar.color)}" rx="2"/>'
        )
        if bar.low is not None and bar.high is not None:
            x0, x1 = sx(bar.low), sx(bar.high)
            body.append(
                f'<path class="errorbar" d="M{x0:.1f},{cy:.1f}H{x1:.1f}M{x0:.1f},{cy - 6:.1f}V{cy + 6:.1f}'
                f'M{x1:.1f},{cy - 6:.1f}V{cy + 6:.1f}" stroke="#222" stroke-width="1.5" fill="none"/>'
            )
        end = sx(max(bar.value, bar.high if bar.high is not None else bar.value))
        body.append(_text(end + 5, cy + 5, f"{fmt(bar.value)} {bar.note}".strip(), size=FONT - 1))
        body.append("</g>")
        y += ROW_H
    return _svg(kind, axis_y + 42, title, body)


@dataclass(frozen=True)
class Point:
    """A subject on the energy-quality plane; ``x_low``/``x_high`` are its energy CI."""

    label: str
    x: float
    y: float
    x_low: float | None = None
    x_high: float | None = None
    baseline: bool = False
    on_front: bool = False
    color: str = PALETTE[0]


@dataclass(frozen=True)
class Axis:
    """A linear or logarithmic axis from ``lo`` to ``hi`` with its tick values."""

    lo: float
    hi: float
    log: bool
    ticks: tuple[float, ...]

    def frac(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            return (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return (v - self.lo) / (self.hi - self.lo)


def make_axis(values: Sequence[float], *, log_ratio: float = 8.0) -> Axis:
    """Linear, unless the values are positive and span more than ``log_ratio`` x: then log, so a 0.04x
    subject and a 1.3x one (or a perplexity of 13 and one of 75) are both readable on one plot."""
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > log_ratio:
        k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        marks = sorted(m * 10.0**k for k in range(k0 - 1, k1 + 1) for m in (1, 2, 5))
        below = max(c for c in marks if c <= lo * (1 + 1e-12))
        above = min(c for c in marks if c >= hi * (1 - 1e-12))
        ticks = [c for c in marks if below <= c <= above]
        if len(ticks) > 8:
            ticks = [c for c in ticks if math.isclose(10 ** round(math.log10(c)), c)] or ticks
        return Axis(below, above, True, tuple(ticks))
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    t = nice_ticks(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    return Axis(t[0], t[-1], False, tuple(t))


def _marker(p: Point, cx: float, cy: float, tip: str = "", cls: str = "point") -> str:
    """The point's symbol: a diamond for the baseline, a ringed disc on the Pareto front, a disc otherwise
    (``cls="key"`` for its copy in the legend)."""
    if p.baseline:
        return (f'<path class="{cls} baseline" d="M{cx:.1f},{cy - 8:.1f}l8,8l-8,8l-8,-8z" '
                f'fill="{BASELINE_COLOR}" stroke="#000">{tip}</path>')
    ring = ' stroke="#009E73" stroke-width="3"' if p.on_front else ' stroke="#fff"'
    return f'<circle class="{cls}" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{esc(p.color)}"{ring}>{tip}</circle>'


def scatter_pareto(points: Sequence[Point], *, title: str, fmt_x: Formatter, x_label: str, y_label: str) -> str:
    """Energy (x) against quality (y): the Pareto front joined by a dashed line, the baseline a diamond.

    Labels never overlap (``labels.place_labels``): beside their point, further out with a leader line, or,
    where a cluster leaves no room, in a legend under the chart with the point's marker and figures."""
    left, right, top, bottom = 64.0, 24.0, 16.0, 52.0
    plot_h = 380.0
    pw, ph = WIDTH - left - right, plot_h - top - bottom
    xs = [p.x for p in points] + [v for p in points for v in (p.x_low, p.x_high) if v is not None and v > 0]
    xa = make_axis(xs)
    ya = make_axis([p.y for p in points], log_ratio=4.0)

    def sx(v: float) -> float:
        return left + pw * xa.frac(v)

    def sy(v: float) -> float:
        return top + ph * (1 - ya.frac(v))

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#bbb"/>']
    for t in xa.ticks:
        body.append(f'<path d="M{sx(t):.1f},{top}V{top + ph}" stroke="#e6e6e6"/>')
        body.append(_text(sx(t), top + ph + 16, fmt_x(t) if t else "0", anchor="middle", size=FONT - 2))
    for t in ya.ticks:
        body.append(f'<path d="M{left},{sy(t):.1f}H{left + pw}" stroke="#e6e6e6"/>')
        body.append(_text(left - 6, sy(t) + 4, f"{t:.4g}", anchor="end", size=FONT - 2))
    body += _axis_labels(x_label + (" (log scale)" if xa.log else ""), y_label + (" (log)" if ya.log else ""),
                         left + pw / 2, plot_h - 12, top + ph / 2)
    front = sorted((p for p in points if p.on_front), key=lambda p: p.x)
    if len(front) > 1:
        d = "M" + " L".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in front)
        body.append(f'<path class="pareto" d="{d}" stroke="#009E73" stroke-width="2" '
                    'stroke-dasharray="6 4" fill="none"/>')
    for p in points:
        cy = sy(p.y)
        if p.x_low is not None and p.x_high is not None:
            body.append(f'<path d="M{sx(p.x_low):.1f},{cy:.1f}H{sx(p.x_high):.1f}" stroke="#999"/>')
    labels = [p.label if not p.baseline or "baseline" in p.label else f"{p.label} (baseline)" for p in points]
    cuts = distinct_cuts(labels, short, 28)  # two points never carry the same label
    names = [cuts[label] for label in labels]
    spots = place_labels([(sx(p.x), sy(p.y), n) for p, n in zip(points, names, strict=True)],
                         (left, top, left + pw, top + ph), FONT - 1)
    for spot, p in zip(spots, points, strict=True):
        if spot is not None and spot.leader is not None:
            body.append(f'<path class="leader" d="M{sx(p.x):.1f},{sy(p.y):.1f}L{spot.leader[0]:.1f},'
                        f'{spot.leader[1]:.1f}" stroke="#777" stroke-width="1"/>')
    for p in points:
        tip = f"<title>{esc(p.label)}: {esc(fmt_x(p.x))}, {p.y:.4g}</title>"
        body.append(_marker(p, sx(p.x), sy(p.y), tip))
    for spot, name in zip(spots, names, strict=True):
        if spot is not None:
            body.append(_text(spot.x, spot.y, name, anchor=spot.anchor, size=FONT - 1,
                              extra=' class="label" paint-order="stroke" stroke="#fafafa" stroke-width="3"'))
    legend = [(p, n) for p, n, spot in zip(points, names, spots, strict=True) if spot is None]
    y = _legend(body, legend, plot_h + 6, fmt_x)
    return _svg("pareto", y + (4 if legend else -6), title, body)


def _axis_labels(x_label: str, y_label: str, x_mid: float, x_y: float, y_mid: float) -> list[str]:
    return [_text(x_mid, x_y, x_label, anchor="middle", size=FONT - 1),
            _text(14, y_mid, y_label, anchor="middle", size=FONT - 1,
                  extra=f' transform="rotate(-90 14 {y_mid:.1f})"')]


def _legend(body: list[str], legend: Sequence[tuple[Point, str]], y: float, fmt_x: Formatter) -> float:
    """Points too close to label, listed under the chart with their marker and figures; the next free y."""
    if not legend:
        return y
    body.append(_text(LEFT, y + 12, "Points too close to label:", size=FONT - 2))
    y += 20
    for p, name in legend:
        body.append(_marker(p, LEFT + 10, y + 6, cls="key"))
        body.append(_text(LEFT + 24, y + 11, f"{name}: {fmt_x(p.x)}, {p.y:.4g}", size=FONT - 1,
                          extra=' class="legend"'))
        y += 22
    return y


@dataclass(frozen=True)
class StackRow:
    label: str
    parts: dict[str, float] = field(default_factory=dict)


def stacked_hbar(rows: Sequence[StackRow], *, title: str, fmt: Formatter, axis_label: str,
                 colors: dict[str, str] | None = None) -> str:
    """One horizontal bar per row, split into device/domain segments, with a legend on top."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.parts if k not in keys]
    colors = {k: (colors or {}).get(k, color(i)) for i, k in enumerate(keys)}
    right_pad = 80.0
    plot_w = WIDTH - LEFT - right_pad
    body: list[str] = []
    # legend, wrapped over as many lines as it needs
    lx, ly = LEFT, 14.0
    for k in keys:
        w = 26 + 7.6 * len(short(k, 30))
        if lx + w > WIDTH:
            lx, ly = LEFT, ly + 18
        body.append(f'<rect x="{lx:.1f}" y="{ly - 10:.1f}" width="12" height="12" fill="{colors[k]}"/>')
        body.append(_text(lx + 16, ly, short(k, 30), size=FONT - 1))
        lx += w
    top = ly + 8
    totals = [sum(r.parts.values()) for r in rows]
    ticks = nice_ticks(0.0, max(totals + [0.0]) or 1.0)

    def sx(v: float) -> float:
        return LEFT + plot_w * v / ticks[-1]

    axis_y = top + ROW_H * len(rows) + 2
    body += _value_axis(ticks, sx, top, axis_y, fmt, axis_label)
    y = top
    for r, total in zip(rows, totals, strict=True):
        by = y + 18
        body.append(_text(LEFT, y + 14, short(r.label, 58), size=FONT - 1))
        x = LEFT
        for k, v in r.parts.items():
            w = sx(v) - LEFT
            body.append(
                f'<rect class="segment" x="{x:.1f}" y="{by:.1f}" width="{w:.1f}" height="{BAR_H}" '
                f'fill="{colors[k]}"><title>{esc(r.label)} {esc(k)}: {esc(fmt(v))}</title></rect>'
            )
            x += w
        body.append(_text(x + 5, by + BAR_H / 2 + 5, fmt(total), size=FONT - 1))
        y += ROW_H
    return _svg("domains", axis_y + 42, title, body)


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               fmt_y: Formatter | None = None) -> str:
    """Power over time: one polyline per series, sharing the axes, legend below the title."""
    left, right, bottom = 56.0, 20.0, 48.0
    top = 12.0 + 18 * math.ceil(len(series) / 3)
    height = top + 240.0 + bottom
    pw, ph = WIDTH - left - right, 240.0
    xs = [t for s in series for t, _ in s.points]
    ys = [v for s in series for _, v in s.points]
    xt = nice_ticks(min(xs + [0.0]), max(xs + [1e-3]))
    yt = nice_ticks(0.0, max(ys + [1e-3]))

    def sx(v: float) -> float:
        return left + pw * (v - xt[0]) / (xt[-1] - xt[0])

    def sy(v: float) -> float:
        return top + ph * (1 - (v - yt[0]) / (yt[-1] - yt[0]))

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#bbb"/>']
    for i, s in enumerate(series):
        lx, ly = 4 + (i % 3) * (WIDTH / 3), 14 + 18 * (i // 3)
        body.append(f'<rect x="{lx:.1f}" y="{ly - 9:.1f}" width="14" height="4" fill="{esc(s.color)}"/>')
        body.append(_text(lx + 18, ly, short(s.label, 20), size=FONT - 1))
    for t in xt:
        body.append(f'<path d="M{sx(t):.1f},{top}V{top + ph}" stroke="#e6e6e6"/>')
        body.append(_text(sx(t), top + ph + 16, f"{t:g}", anchor="middle", size=FONT - 2))
    for t in yt:
        body.append(f'<path d="M{left},{sy(t):.1f}H{left + pw}" stroke="#e6e6e6"/>')
        body.append(_text(left - 6, sy(t) + 4, fmt_y(t) if fmt_y and t else f"{t:.4g}", anchor="end", size=FONT - 2))
    for s in series:
        pts = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in s.points)
        body.append(f'<polyline class="series" points="{pts}" fill="none" stroke="{esc(s.color)}" '
                    f'stroke-width="2"><title>{esc(s.label)}</title></polyline>')
    body.append(_text(left + pw / 2, height - 10, x_label, anchor="middle", size=FONT - 1))
    body.append(
        _text(14, top + ph / 2, y_label, anchor="middle", size=FONT - 1,
              extra=f' transform="rotate(-90 14 {top + ph / 2:.1f})"')
    )
    return _svg("timeline", height, title, body)
