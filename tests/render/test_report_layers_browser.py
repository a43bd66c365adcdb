"""The report's "Energy by layer" section in a real headless Chromium: it shows which layers went down (green)
or up (red), and a wide comparison of many methods still fits a phone without scrolling the page sideways."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from browser import colour_counts, dump_dom_at, phone_frame, require_chromium, screenshot
from report_fixtures import SUBJECTS, fake_lookup, make_run

from energybench.record import LayerEnergy, LayerProfile
from energybench.render.report_html import render_html
from energybench.report import build_report

GOOD, BAD = (0x0B, 0x7A, 0x3E), (0xB3, 0x26, 0x1E)  # the report's --good and --bad colours


def _profile(i: int) -> LayerProfile:
    """A split that changes with the method: later methods move energy from the first layer to the head."""
    parts = {"encoder.layers.0.self_attn": 4.0 - 0.4 * i, "encoder.layers.0.linear1": 3.0, "encoder.layers.1": 2.0,
             "head": 1.0 + 0.5 * i, "(outside the model)": 0.5}
    total = sum(parts.values())
    return LayerProfile(energy_j=total, duration_s=1.0, items=10, resolution_s=0.1, source="estimated",
                        method="host time per module (torch.profiler) x power timeline",
                        layers=tuple(LayerEnergy(n, j, j / 10, calls=3, below_resolution=True)
                                     for n, j in parts.items()))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_chromium()
    run = make_run()
    run = run.with_benchmarks([replace(b, layers=_profile(i)) for i, b in enumerate(run.benchmarks)])
    report = build_report([run], lookup=fake_lookup)
    assert len(report.layers) == 1 and len(report.layers[0][1].methods) == len(SUBJECTS) - 1
    path = tmp_path_factory.mktemp("layers") / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_the_layer_section_is_drawn_in_green_and_red(page: Path, tmp_path: Path) -> None:
    html = page.read_text(encoding="utf-8")
    start = html.index("<section><h2>Energy by layer")
    section = html[start : html.index("</section>", start) + 10]
    alone = tmp_path / "layers.html"  # the section on its own page, so the screenshot is of it
    alone.write_text(html[: html.index("<main>") + 6] + section + "</main></body></html>", encoding="utf-8")
    counts = colour_counts(screenshot(alone, tmp_path / "layers.png", 1280, 900), step=1)
    assert counts.get(GOOD, 0) > 50 and counts.get(BAD, 0) > 50, "no green or red change drawn"
    assert "encoder.layers.0" in section and "\u2020" in section  # rows at layer depth, fast layers marked


def test_a_wide_layer_table_does_not_scroll_the_phone_page_sideways(page: Path, tmp_path: Path) -> None:
    framed = tmp_path / "phone.html"
    framed.write_text(phone_frame(page.read_text(encoding="utf-8"), 390, 900), encoding="utf-8")
    m = re.search(r"<title>W=(\d+) V=(\d+) S=(\d+)</title>", dump_dom_at(framed, 600))
    assert m, "the frame never loaded"
    scroll_w, view_w, _ = map(int, m.groups())
    assert view_w == 390 and scroll_w <= view_w
