"""Terminal, Markdown and HTML renderings: content, escaping of hostile names, self-containment."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from report_fixtures import cluster_run, fake_lookup, make_bench, make_run

from energybench.render.report_html import render_html
from energybench.render.report_markdown import render_markdown
from energybench.render.report_text import render_terminal
from energybench.render.tables import markdown_table, md_escape
from energybench.report import build_report
from energybench.verdicts.compare import compare_runs
from energybench.verdicts.gate import parse_gates

EVIL = "<script>document.title='pwned'</script>"
EVIL_SUBJECT = 'pipe|<img src=x onerror="document.title=1">'


def _evil_run():
    return make_run(benchmarks=[make_bench(EVIL, "baseline", 1.0, 10.0),
                                make_bench(EVIL, EVIL_SUBJECT, 0.5, 11.0)])


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Collect()
    p.feed(html)
    return p.tags


def test_terminal_lists_subjects_ratios_and_regions():
    text = render_terminal(build_report([make_run()], lookup=fake_lookup), wide=True)
    assert "lm/inference-generate (inference)" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("int8-dynamic"))
    assert re.search(r"0\.5\dx \[0\.[45]\d, 0\.[56]\d\]", line) and "saves 4" in line and "perplexity 12.6" in line
    assert "FRA (yours)" in text and "CHN" in text
    assert "estimated, not measured" in text


def test_terminal_fits_100_columns_by_folding_intervals_under_their_figures():
    report = build_report([make_run()], lookup=fake_lookup)
    wide = render_terminal(report, wide=True)
    assert max(len(line) for line in wide.splitlines()) > 100  # the control: all of it on one line is too wide
    text = render_terminal(report, width=100)
    assert max(len(line) for line in text.splitlines()) <= 100
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith("int8-dynamic"))
    assert re.search(r"4\.\d\d mJ/token +0\.5\dx +saves 4\d%", lines[at])
    assert re.search(r"\[4\.\d\d, 4\.\d\d\] +\[0\.[45]\d, 0\.[56]\d\] +adj\. p[=<]", lines[at + 1])  # the unit once
    assert not re.search(r"\de[+-]\d+ ?(?:[munpkMG]?(?:J|g|W|s)\b|/)", text)  # never 2.73e-05 mJ: SI prefixes
    # ten methods with long names (a real quick run's): still 100 columns, provenance in each block's title
    text = render_terminal(build_report([cluster_run()], lookup=fake_lookup), width=100)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "lm/inference-generate (inference): estimated" in text and "distill-hard-w0.5-d0.5" in text


def test_markdown_table_shape_and_escaping():
    md = render_markdown(build_report([_evil_run()], lookup=fake_lookup))
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ")]
    cells = [len(re.findall(r"(?<!\\)\|", ln)) for ln in rows[:4]]
    assert len(set(cells)) == 1, "an unescaped | in a name would add a column"


def test_markdown_helpers_for_compare():
    assert md_escape("a|b <i>_x_</i>\nline") == r"a\|b &lt;i&gt;\_x\_&lt;/i&gt; line"
    table = markdown_table(["name", "J"], [["x|y", 1.5]], align="lr")
    assert table.splitlines() == ["| name | J |", "| --- | ---: |", r"| x\|y | 1.5 |"]


def test_html_escapes_every_name():
    html = render_html(build_report([_evil_run()], lookup=fake_lookup))
    assert EVIL not in html and "onerror=" not in html.replace("onerror=&quot;", "")
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in html
    tags = [t for t, _ in _tags(html)]
    assert "script" not in tags and "img" not in tags


def test_html_is_self_contained():
    html = render_html(build_report([make_run()], lookup=fake_lookup))
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", html, re.I)
    for tag, attrs in _tags(html):
        assert tag not in {"script", "link", "iframe", "img", "object", "embed"}, tag
        for key in ("src", "href"):
            assert attrs.get(key) is None or attrs[key].startswith("data:"), (tag, attrs)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert 'name="viewport"' in html


def test_html_has_every_plot():
    html = render_html(build_report([make_run()], lookup=fake_lookup))
    plots = re.findall(r'data-plot="(\w+)"', html)
    assert plots == ["energy", "pareto", "domains", "timeline", "regions"]
    assert html.count('class="errorbar"') == 5  # one CI whisker per subject
    assert html.count('class="pareto"') == 1 and "point baseline" in html


def test_html_says_when_there_is_no_timeline():
    run = make_run(benchmarks=[make_bench("b", "baseline", 1.0, None, timeline=False)])
    html = render_html(build_report([run], lookup=fake_lookup))
    assert 'data-plot="timeline"' not in html
    assert "No power timeline was recorded" in html
    assert "No benchmark has a quality metric" in html


def test_gate_rows_render_in_every_format():
    base = make_run("0001_a", benchmarks=[make_bench("b <x>", "baseline", 1.0, None, rounds=10)])
    new = make_run("0002_b", benchmarks=[make_bench("b <x>", "baseline", 1.25, None, rounds=10, seed=1)])
    cmp = compare_runs(base, new, parse_gates(["energy:+5%"]))
    report = build_report([base, new], lookup=fake_lookup, comparison=cmp)
    text = render_terminal(report)
    assert "REGRESSION" in text and "FAIL b <x> energy:+5%" in text
    assert "| b &lt;x&gt; | REGRESSION |" in render_markdown(report)
    html = render_html(report)
    assert 'class="verdict-regression">REGRESSION' in html and "b &lt;x&gt;" in html


def test_break_even_units_are_pluralised_once() -> None:
    from energybench.render.cells import break_even
    from energybench.verdicts.baseline import BreakEven

    assert break_even(BreakEven(1234.0, 1000.0, 1500.0), "token") == "after 1.23k tokens [1k, 1.5k]"
    assert break_even(BreakEven(0.876, 0.5, 2.0), "1k sentences").startswith("after 0.876 1k sentences [")
    # the saving's interval reaches zero at its far end: the upper bound is "never"
    assert break_even(BreakEven(300.0, 200.0, float("inf")), "image") == "after 300 images [200, never]"
    assert break_even(None, "image") == ""
