"""``fit_table``: a table no wider than asked, by folding, then leaving columns out (said), then cutting names."""

from __future__ import annotations

from energybench.render.tables import Column, fit_table

COLS = (Column(("name",), shrink=True), Column(("energy", "[95% CI]"), right=True),
        Column(("size",), drop=1), Column(("throughput",), drop=2))  # the highest drop goes first
ROWS = [[("short",), ("27.3 nJ", "[26.9, 27.8]"), ("1.2 MB",), ("2.02k token/s",)],
        [("a-rather-long-method-name-0.5",), ("1.05 mJ", "[331 uJ, 2.46 mJ]"), ("600 kB",), ("512 token/s",)]]


def widest(lines: list[str]) -> int:
    return max(len(line) for line in lines)


def test_a_table_that_fits_is_one_line_per_row():
    fitted = fit_table(COLS, ROWS, 200)
    assert len(fitted.lines) == 4 and not fitted.folded and not fitted.dropped
    assert "27.3 nJ [26.9, 27.8]" in fitted.lines[2]


def test_intervals_fold_under_their_figures_before_anything_is_left_out():
    one_line = widest(fit_table(COLS, ROWS, 200).lines)
    fitted = fit_table(COLS, ROWS, one_line - 5)
    assert fitted.folded and not fitted.dropped and widest(fitted.lines) <= one_line - 5
    assert fitted.lines[-1].strip() == "[331 uJ, 2.46 mJ]"  # the interval on its own line, right-aligned


def test_columns_are_left_out_in_their_order_and_named():
    fitted = fit_table(COLS, ROWS, 60)
    assert fitted.dropped == ("throughput",) and widest(fitted.lines) <= 60
    fitted = fit_table(COLS, ROWS, 50)
    assert fitted.dropped == ("throughput", "size") and widest(fitted.lines) <= 50
    assert "a-rather-long-method-name-0.5" in "\n".join(fitted.lines)  # names stay whole while columns can go


def test_names_are_cut_in_the_middle_last_and_only_the_long_ones():
    fitted = fit_table(COLS, ROWS, 40)
    text = "\n".join(fitted.lines)
    assert widest(fitted.lines) <= 40 and "short" in text
    cut = next(line for line in fitted.lines if "\u2026" in line).split()[0]
    assert cut.startswith("a-rather") and cut.endswith("name-0.5")


def test_wide_keeps_every_column_on_one_line():
    fitted = fit_table(COLS, ROWS, 40, wide=True)
    assert not fitted.dropped and widest(fitted.lines) > 40 and len(fitted.lines) == 4


def test_names_cut_to_fit_stay_distinct():
    """Cut in the middle to 16 characters, both distillation settings read ``distill…0.5-d0.5``: the rows they
    name must still be told apart, so the clashing names keep more of themselves."""
    names = ["baseline", "distill-hard-w0.5-d0.5", "distill-soft-t2-w0.5-d0.5", "int8-weight-pergroup-g32"]
    rows = [[(n,), ("1.05 mJ", "[331 uJ, 2.46 mJ]"), ("600 kB",), ("512 token/s",)] for n in names]
    fitted = fit_table(COLS, rows, 30)
    shown = [line.split()[0] for line in fitted.lines if line[:1].strip() and not line.startswith(("name", "-"))]
    assert any("\u2026" in s for s in shown) and len(shown) == len(names)
    assert len(set(shown)) == len(names), shown


def test_distinct_cuts_cut_only_what_clashes_further():
    from energybench.render.labels import distinct_cuts
    from energybench.render.plots import short
    from energybench.render.tables import cut_middle

    names = ["distill-hard-w0.5-d0.5", "distill-soft-t2-w0.5-d0.5", "a-rather-long-method-name-0.5", "short"]
    cuts = distinct_cuts(names, cut_middle, 16)
    assert len(set(cuts.values())) == len(names) and cuts["short"] == "short"
    assert cuts["a-rather-long-method-name-0.5"] == cut_middle("a-rather-long-method-name-0.5", 16)  # no clash
    ends = distinct_cuts(["prune-structured-heads-0.5-a", "prune-structured-heads-0.5-b"], short, 12)
    assert len(set(ends.values())) == 2 and all(v.endswith(("a", "b")) for v in ends.values())


def test_a_long_text_cell_is_wrapped_rather_than_run_past_the_width():
    """A verdict like ``cannot be tested: ...`` is one part: once nothing else helps, it wraps, so a table that
    says it fits 100 columns does (a quick run's report printed rows of 154)."""
    cols = (Column(("method",), shrink=True), Column(("energy",), right=True), Column(("verdict",)),
            Column(("rounds",), right=True, drop=1))
    long = "cannot be tested: 2 trial pair(s) (3 set aside: load differed between their sides, or partial), 5 needed"
    rows = [[("distill-soft-t2-w0.5-d0.5",), ("1.05 mJ",), (long,), ("5",)],
            [("baseline",), ("2.10 mJ",), ("",), ("5",)]]
    fitted = fit_table(cols, rows, 60)
    assert widest(fitted.lines) <= 60, fitted.lines
    text = " ".join(" ".join(fitted.lines).split())
    assert "cannot be tested:" in text and "5 needed" in text and "1.05 mJ" in text
