"""Labels on the energy-vs-quality scatter never overlap each other or a marker, and every point is named.

Checked on the SVG itself (its own coordinates: the chart scales uniformly, so this holds at every width);
``test_report_browser.py`` checks the same in a real Chromium at 390 px and 1400 px, with the fonts it draws.
"""

from __future__ import annotations

import random
import re

import pytest
from report_fixtures import CLUSTER, cluster_run, fake_lookup, make_run

from energybench import units
from energybench.render.labels import overlap, place_labels, text_width
from energybench.render.plots import FONT, Point, scatter_pareto
from energybench.render.report_html import render_html
from energybench.report import build_report

TEXT = re.compile(r'<text x="([\d.-]+)" y="([\d.-]+)" text-anchor="(\w+)" font-size="(\d+)" '
                  r'class="(label|legend)"[^>]*>([^<]*)</text>')
MARKER = re.compile(r'<circle class="point[^"]*" cx="([\d.-]+)" cy="([\d.-]+)"|<path class="point baseline" '
                    r'd="M([\d.-]+),([\d.-]+)l8')


def _boxes(svg: str) -> tuple[list[tuple[str, tuple[float, float, float, float]]], list[str], list[tuple]]:
    labels, legend = [], []
    for x, y, anchor, size, kind, text in TEXT.findall(svg):
        if kind == "legend":
            legend.append(text.split(":")[0])
            continue
        x, y, size = float(x), float(y), float(size)
        w = text_width(text, size)
        x0 = x - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
        labels.append((text, (x0, y - size, x0 + w, y + 3)))
    markers = []
    for cx, cy, bx, by in MARKER.findall(svg):
        x, y = (float(cx), float(cy)) if cx else (float(bx), float(by) + 8)
        markers.append((x - 6, y - 6, x + 6, y + 6))
    return labels, legend, markers


def _pareto(html: str) -> str:
    return re.search(r'<svg class="eb-plot" data-plot="pareto".*?</svg>', html, re.S).group(0)


def _check(svg: str, names: list[str]) -> tuple[int, int]:
    labels, legend, markers = _boxes(svg)
    assert len(markers) == len(names)
    shown = [t.removesuffix(" (baseline)") for t, _ in labels] + [t.removesuffix(" (baseline)") for t in legend]
    assert sorted(shown) == sorted(names), "every point is named once, beside it or in the legend"
    for i, (a, box) in enumerate(labels):
        for b, other in labels[i + 1:]:
            assert overlap(box, other) == 0, f"labels {a!r} and {b!r} overlap"
        for m in markers:
            assert overlap(box, m) == 0, f"label {a!r} covers a marker"
    return len(labels), len(legend)


def test_the_clustered_labels_of_a_quick_run_do_not_overlap():
    html = render_html(build_report([cluster_run()], lookup=fake_lookup))
    direct, legend = _check(_pareto(html), [m for m, *_ in CLUSTER])
    assert direct >= 7  # most are labelled in place; only what truly has no room goes to the legend
    # control: the old placement (eight spots next to each point, least overlap wins) did overlap here
    old = _old_greedy(cluster_run())
    assert any(overlap(a, b) > 0 for i, a in enumerate(old) for b in old[i + 1:])


def _old_greedy(run) -> list[tuple[float, float, float, float]]:  # noqa: ANN001
    """The placement this project shipped before (kept here as the control the new one must beat)."""
    report = build_report([run], lookup=fake_lookup)
    svg = _pareto(render_html(report))
    _, _, markers = _boxes(svg)
    centers = [((m[0] + m[2]) / 2, (m[1] + m[3]) / 2) for m in markers]
    names = [m for m, *_ in CLUSTER]
    size = FONT - 1
    taken = [(x - 7, y - 7, x + 7, y + 7) for x, y in centers]
    spots = ((9, -7, "start"), (9, 13, "start"), (-9, -7, "end"), (-9, 13, "end"), (0, -11, "middle"),
             (0, 22, "middle"), (16, 3, "start"), (-16, 3, "end"))
    placed = []
    for (x, y), name in sorted(zip(centers, names, strict=True), key=lambda c: c[0][1]):
        w = text_width(name, size)
        best, cost = None, float("inf")
        for dx, dy, anchor in spots:
            lx = x + dx - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
            box = (lx, y + dy - size + 1, lx + w, y + dy + 3)
            c = sum(overlap(box, t) for t in taken)
            if c < cost:
                best, cost = box, c
        taken.append(best)
        placed.append(best)
    return placed


@pytest.mark.parametrize("seed", range(12))
def test_random_scatters_never_overlap(seed: int):
    rng = random.Random(seed)
    n = rng.randint(3, 12)
    names = [f"method-{i}-{'x' * rng.randint(0, 6)}" for i in range(n)]  # short enough to be shown whole
    points = [Point(label=name, x=rng.uniform(1e-3, 2e-3), y=rng.uniform(10, 10.5 if seed % 2 else 80),
                    baseline=i == 0) for i, name in enumerate(names)]
    svg = scatter_pareto(points, title="t", fmt_x=units.joules, x_label="J", y_label="q")
    _check(svg, names)


def test_a_label_with_no_room_goes_to_the_legend():
    anchors = [(100.0, 100.0, f"label-{i}") for i in range(30)]  # thirty points on one spot
    placed = place_labels(anchors, (0, 0, 480, 380), 14)
    assert 8 <= sum(p is not None for p in placed) < 30  # as many as fit around it, the rest in the legend
    boxes = [p.box for p in placed if p is not None]
    assert all(overlap(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_make_run_scatter_still_labels_everything_in_place():
    html = render_html(build_report([make_run()], lookup=fake_lookup))
    direct, legend = _check(_pareto(html), ["baseline", "pruned-50", "int8-dynamic", "distilled", "pruned-90"])
    assert legend == 0
