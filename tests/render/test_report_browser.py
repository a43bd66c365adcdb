"""The HTML report in a real headless Chromium: it renders (pixels), fits a phone, needs no network, and a
hostile name stays text.

Each check has a control that proves the harness can see the failure it guards against (a page that does
fetch, a page whose script does run), so a pass means something. Skipped where Chromium is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import (
    NetworkSpy,
    colour_counts,
    dump_dom,
    dump_dom_at,
    measure_report,
    phone_frame,
    require_chromium,
    screenshot,
)
from report_fixtures import CLUSTER, cluster_run, fake_lookup, make_bench, make_run

from energybench.render.plots import PALETTE
from energybench.render.report_html import render_html
from energybench.report import build_report

EVIL = "<script>document.title='pwned'</script>"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_chromium()
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(build_report([make_run()], lookup=fake_lookup)), encoding="utf-8")
    return path


def _check_pixels(png: Path, width: int) -> None:
    counts = colour_counts(png, width=width)
    total = sum(counts.values())
    background = counts.get((255, 255, 255), 0) + counts.get((244, 245, 247), 0)
    assert background < 0.97 * total, "page looks blank"
    assert counts.get((0x12, 0x26, 0x3A), 0) > 200, "header band missing"
    # bars of the first subjects are drawn in exact palette colours (no antialiasing inside a bar)
    for colour in PALETTE[:3]:
        assert counts.get(_rgb(colour), 0) > 30, f"no {colour} pixels: energy chart not drawn"


def test_laptop_screenshot_shows_the_plots(page: Path, tmp_path: Path):
    _check_pixels(screenshot(page, tmp_path / "laptop.png", 1280, 1400), 1280)


def test_phone_screenshot_shows_the_plots(page: Path, tmp_path: Path):
    framed = tmp_path / "phone.html"
    framed.write_text(phone_frame(page.read_text(encoding="utf-8"), 390, 1400), encoding="utf-8")
    _check_pixels(screenshot(framed, tmp_path / "phone.png", 500, 1400), 390)


def test_phone_width_does_not_scroll_sideways(page: Path, tmp_path: Path):
    framed = tmp_path / "phone.html"
    framed.write_text(phone_frame(page.read_text(encoding="utf-8"), 390, 900), encoding="utf-8")
    m = re.search(r"<title>W=(\d+) V=(\d+) S=(\d+)</title>", dump_dom_at(framed, 600))
    assert m, "the frame never loaded"
    scroll_w, view_w, svgs = map(int, m.groups())
    assert view_w == 390 and scroll_w <= view_w and svgs == 5


def test_loads_with_network_disabled(page: Path, tmp_path: Path):
    with NetworkSpy() as spy:
        dom = dump_dom(page, proxy_port=spy.port)
    assert spy.page_hosts() == [], f"the report tried the network: {spy.requests[:3]}"
    assert dom.count("<svg") == 5 and "Energy per item" in dom
    # control: a page that needs the network is seen by the spy
    needy = tmp_path / "needy.html"
    needy.write_text('<html><body><img src="http://cdn.example.com/x.png">hi</body></html>', encoding="utf-8")
    with NetworkSpy() as spy:
        dump_dom(needy, proxy_port=spy.port)
    assert "cdn.example.com" in spy.page_hosts(), "spy cannot see requests: test is blind"


def test_hostile_names_render_as_text(tmp_path: Path):
    require_chromium()
    run = make_run(benchmarks=[make_bench(EVIL, "baseline", 1.0, 3.0), make_bench(EVIL, "<b>bold</b>", 0.5, 4.0)])
    path = tmp_path / "evil.html"
    path.write_text(render_html(build_report([run], lookup=fake_lookup)), encoding="utf-8")
    dom = dump_dom(path)
    assert "<title>energybench report: 0001_main</title>" in dom
    assert "pwned" in dom and "<script" not in dom.lower() and "<b>bold</b>" not in dom
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    # control: the same payload unescaped, without a CSP, does run in this browser
    control = tmp_path / "control.html"
    control.write_text(f"<html><head><title>x</title></head><body>{EVIL}</body></html>", encoding="utf-8")
    assert "<title>pwned</title>" in dump_dom(control)


def _overlap(a: list[float], b: list[float], slack: float = 0.5) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0]) - slack) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]) - slack)


@pytest.mark.parametrize("width", [390, 1400])
def test_scatter_labels_do_not_overlap_as_chromium_draws_them(tmp_path: Path, width: int):
    """The issue's picture (baseline, bf16, fp16 and int8 in one spot), drawn by Chromium at phone and laptop
    width: no label box meets another or a marker; each point is named beside it or in the legend."""
    require_chromium()
    html = render_html(build_report([cluster_run()], lookup=fake_lookup))
    got = measure_report(html, width, tmp_path)
    assert got["view"] == width and got["scroll"] <= width, "the page must not scroll sideways"
    (plot,) = got["plots"]
    assert 0 < plot["width"] <= width
    labels = plot["labels"]
    assert len(labels) + len(plot["legend"]) == len(CLUSTER) == len(plot["markers"])
    for i, (a, box) in enumerate(labels):
        assert box[2] - box[0] > 5, f"label {a!r} not drawn"
        for b, other in labels[i + 1:]:
            assert _overlap(box, other) == 0, f"{a!r} and {b!r} overlap at {width}px: {box} {other}"
        for m in plot["markers"]:
            assert _overlap(box, m) == 0, f"{a!r} covers a marker at {width}px"
    # control: the measuring sees overlap where there is some (two labels of the page moved onto each other)
    first = labels[0][1]
    assert _overlap(first, [first[0] + 3, first[1] + 2, first[2] + 3, first[3] + 2]) > 0


def test_headline_respects_the_quality_budget_and_says_estimated(tmp_path: Path):
    require_chromium()
    html = render_html(build_report([cluster_run()], lookup=fake_lookup))
    got = measure_report(html, 390, tmp_path)
    (card,) = got["glance"]
    # distill-hard saves the most (-65%) at 5.7x the perplexity: named as left out, never the headline
    headline = card.split("Bigger savings left out")[0]
    assert "int8-dynamic" in headline and "distill-hard" not in headline and "estimated" in headline
    assert "distill-hard-w0.5-d0.5 -65%" in card and "over the 1.0% budget" in card
    # every chart of estimated joules says so in its caption
    assert got["captions"] and all(c.rstrip().endswith("estimated") for c in got["captions"])
    wide = render_html(build_report([cluster_run()], lookup=fake_lookup, quality_budget=float("inf")))
    (card,) = measure_report(wide, 390, tmp_path)["glance"]
    assert card.split("Bigger savings left out")[0].count("distill-hard") >= 1  # no budget: the biggest saver
