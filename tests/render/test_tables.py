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
