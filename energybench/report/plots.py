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

# Okabe-Ito: distinguishable with the common kinds of colour blindness.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
BASELINE_COLOR = "#555555"
WIDTH = 480
FONT = 14


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
    group: str = ""


def hbar_chart(bars: Sequence[Bar], *, kind: str, title: str, fmt: Formatter, axis_label: str) -> str:
    """Horizontal bars with optional CI whiskers, grouped under header lines (one per ``group``)."""
    label_w, right_pad, row_h, top = 130.0, 112.0, 26.0, 8.0
    plot_w = WIDTH - label_w - right_pad
    hi = max([b.high if b.high is not None else b.value for b in bars] + [0.0])
    ticks = nice_ticks(0.0, hi or 1.0)
    xmax = ticks[-1]

    def sx(v: float) -> float:
        return label_w + plot_w * max(v, 0.0) / xmax

    body: list[str] = []
    y = top
    group = None
    for bar in bars:
        if bar.group and bar.group != group:
            group = bar.group
            body.append(_text(4, y + 15, short(group, 52), extra=' font-weight="600"'))
            y += row_h
        cy = y + row_h / 2
        body.append(
            f'<g class="bar"><title>{esc(bar.label)}: {esc(fmt(bar.value))}</title>'
            + _text(label_w - 6, cy + 4, short(bar.label, 16), anchor="end")
            + f'<rect x="{label_w:.1f}" y="{y + 4:.1f}" width="{sx(bar.value) - label_w:.1f}" '
            f'height="{row_h - 8:.1f}" fill="{esc(bar.color)}" rx="2"/>'
        )
        if bar.low is not None and bar.high is not None:
            x0, x1 = sx(bar.low), sx(bar.high)
            body.append(
                f'<path class="errorbar" d="M{x0:.1f},{cy:.1f}H{x1:.1f}M{x0:.1f},{cy - 6:.1f}V{cy + 6:.1f}'
                f'M{x1:.1f},{cy - 6:.1f}V{cy + 6:.1f}" stroke="#222" stroke-width="1.5" fill="none"/>'
            )
        end = sx(bar.high if bar.high is not None else bar.value)
        body.append(_text(end + 5, cy + 4, f"{fmt(bar.value)} {bar.note}".strip(), size=FONT - 1))
        body.append("</g>")
        y += row_h
    axis_y = y + 4
    body.append(f'<path d="M{label_w},{top}V{axis_y}H{label_w + plot_w}" stroke="#888" fill="none"/>')
    for t in ticks:
        x = sx(t)
        body.append(f'<path d="M{x:.1f},{axis_y}v4" stroke="#888"/>')
        body.append(_text(x, axis_y + 17, fmt(t) if t else "0", anchor="middle", size=FONT - 2))
    body.append(_text(label_w + plot_w / 2, axis_y + 34, axis_label, anchor="middle", size=FONT - 1))
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


def scatter_pareto(points: Sequence[Point], *, title: str, fmt_x: Formatter, x_label: str, y_label: str) -> str:
    """Energy (x) against quality (y): the Pareto front joined by a dashed line, the baseline a diamond."""
    left, right, top, bottom = 64.0, 24.0, 16.0, 52.0
    height = 330.0
    pw, ph = WIDTH - left - right, height - top - bottom
    xs = [p.x for p in points] + [p.x_low for p in points if p.x_low is not None]
    xs += [p.x_high for p in points if p.x_high is not None]
    ys = [p.y for p in points]
    xlo, xhi = min(xs), max(xs)
    pad = (xhi - xlo) * 0.08 or abs(xhi) * 0.1 or 1.0
    xt = nice_ticks(max(0.0, xlo - pad), xhi + pad)
    ylo, yhi = min(ys), max(ys)
    ypad = (yhi - ylo) * 0.1 or abs(yhi) * 0.05 or 1.0
    yt = nice_ticks(ylo - ypad, yhi + ypad)

    def sx(v: float) -> float:
        return left + pw * (v - xt[0]) / (xt[-1] - xt[0])

    def sy(v: float) -> float:
        return top + ph * (1 - (v - yt[0]) / (yt[-1] - yt[0]))

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#bbb"/>']
    for t in xt:
        body.append(f'<path d="M{sx(t):.1f},{top}V{top + ph}" stroke="#e6e6e6"/>')
        body.append(_text(sx(t), top + ph + 16, fmt_x(t) if t else "0", anchor="middle", size=FONT - 2))
    for t in yt:
        body.append(f'<path d="M{left},{sy(t):.1f}H{left + pw}" stroke="#e6e6e6"/>')
        body.append(_text(left - 6, sy(t) + 4, f"{t:.4g}", anchor="end", size=FONT - 2))
    body.append(_text(left + pw / 2, height - 12, x_label, anchor="middle", size=FONT - 1))
    body.append(
        _text(14, top + ph / 2, y_label, anchor="middle", size=FONT - 1,
              extra=f' transform="rotate(-90 14 {top + ph / 2:.1f})"')
    )
    front = sorted((p for p in points if p.on_front), key=lambda p: p.x)
    if len(front) > 1:
        d = "M" + " L".join(f"{sx(p.x):.1f},{sy(p.y):.1f}" for p in front)
        body.append(f'<path class="pareto" d="{d}" stroke="#009E73" stroke-width="2" '
                    'stroke-dasharray="6 4" fill="none"/>')
    for p in points:
        cx, cy = sx(p.x), sy(p.y)
        tip = f"<title>{esc(p.label)}: {esc(fmt_x(p.x))}, {p.y:.4g}</title>"
        if p.x_low is not None and p.x_high is not None:
            body.append(f'<path d="M{sx(p.x_low):.1f},{cy:.1f}H{sx(p.x_high):.1f}" stroke="#444"/>')
        if p.baseline:
            body.append(
                f'<path class="point baseline" d="M{cx:.1f},{cy - 8:.1f}l8,8l-8,8l-8,-8z" '
                f'fill="{BASELINE_COLOR}" stroke="#000">{tip}</path>'
            )
        else:
            ring = ' stroke="#009E73" stroke-width="3"' if p.on_front else ' stroke="#fff"'
            body.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{esc(p.color)}"{ring}>'
                        f"{tip}</circle>")
        anchor = "end" if cx > left + pw * 0.7 else "start"
        dx = -10 if anchor == "end" else 10
        name = p.label if not p.baseline or "baseline" in p.label else f"{p.label} (baseline)"
        body.append(_text(cx + dx, cy - 8, short(name, 28), anchor=anchor, size=FONT - 1))
    return _svg("pareto", height, title, body)


@dataclass(frozen=True)
class StackRow:
    label: str
    parts: dict[str, float] = field(default_factory=dict)
    group: str = ""


def stacked_hbar(rows: Sequence[StackRow], *, title: str, fmt: Formatter, axis_label: str) -> str:
    """One horizontal bar per row, split into device/domain segments, with a legend on top."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r.parts if k not in keys]
    colors = {k: color(i) for i, k in enumerate(keys)}
    label_w, right_pad, row_h = 130.0, 70.0, 26.0
    plot_w = WIDTH - label_w - right_pad
    body: list[str] = []
    # legend, wrapped over as many lines as it needs
    lx, ly = 4.0, 14.0
    for k in keys:
        w = 24 + 7.6 * len(short(k, 30))
        if lx + w > WIDTH:
            lx, ly = 4.0, ly + 18
        body.append(f'<rect x="{lx:.1f}" y="{ly - 10:.1f}" width="12" height="12" fill="{colors[k]}"/>')
        body.append(_text(lx + 16, ly, short(k, 30), size=FONT - 1))
        lx += w
    top = ly + 12
    totals = [sum(r.parts.values()) for r in rows]
    ticks = nice_ticks(0.0, max(totals + [0.0]) or 1.0)

    def sx(v: float) -> float:
        return plot_w * v / ticks[-1]

    y, group = top, None
    for r, total in zip(rows, totals, strict=True):
        if r.group and r.group != group:
            group = r.group
            body.append(_text(4, y + 15, short(group, 52), extra=' font-weight="600"'))
            y += row_h
        body.append(_text(label_w - 6, y + row_h / 2 + 4, short(r.label, 16), anchor="end"))
        x = label_w
        for k, v in r.parts.items():
            w = sx(v)
            body.append(
                f'<rect class="segment" x="{x:.1f}" y="{y + 4:.1f}" width="{w:.1f}" height="{row_h - 8:.1f}" '
                f'fill="{colors[k]}"><title>{esc(r.label)} {esc(k)}: {esc(fmt(v))}</title></rect>'
            )
            x += w
        body.append(_text(x + 5, y + row_h / 2 + 4, fmt(total), size=FONT - 1))
        y += row_h
    axis_y = y + 4
    body.append(f'<path d="M{label_w},{top}V{axis_y}H{label_w + plot_w}" stroke="#888" fill="none"/>')
    for t in ticks:
        body.append(_text(label_w + sx(t), axis_y + 17, fmt(t) if t else "0", anchor="middle", size=FONT - 2))
    body.append(_text(label_w + plot_w / 2, axis_y + 34, axis_label, anchor="middle", size=FONT - 1))
    return _svg("domains", axis_y + 42, title, body)


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str) -> str:
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
        body.append(_text(left - 6, sy(t) + 4, f"{t:.4g}", anchor="end", size=FONT - 2))
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
