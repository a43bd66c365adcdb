"""Parsing intensity CSVs: accepted formats, and each malformation reported with its line and fix."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from energybench.carbon import load_intensity_csv, parse_intensity_series, resolve_provider
from energybench.errors import IntensityDataError

DATA = Path(__file__).parents[1] / "support" / "data"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_iso_unix_header_comments_and_bom_are_accepted(tmp_path):
    f = tmp_path / "mixed.csv"
    f.write_text(
        "\ufeff# exported from somewhere\n"
        "Datetime (UTC),Carbon intensity gCO2eq/kWh\n"
        "\n"
        "2024-05-01T00:00:00Z,52   # comment\n"
        "2024-05-01T00:30:00,40\n"  # no offset: UTC
        "2024-05-01T03:00:00+02:00,10\n"  # = 01:00Z
        f"{ts('2024-05-01T01:30:00'):.0f},20\n",  # unix seconds
        encoding="utf-8",
    )
    s = load_intensity_csv(f)
    assert s.times == (
        ts("2024-05-01T00:00:00"),
        ts("2024-05-01T00:30:00"),
        ts("2024-05-01T01:00:00"),
        ts("2024-05-01T01:30:00"),
    )
    assert s.values == (52.0, 40.0, 10.0, 20.0)
    assert s.end == ts("2024-05-01T02:00:00")


def test_shipped_example_parses():
    s = load_intensity_csv(DATA / "intensity_hourly.csv")
    assert len(s.times) == 4 and s.values[-1] == 75.25


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("t,v\n2024-05-01T00:00:00Z,52\n2024-05-01T01:00:00Z,forty\n", 3, "bad intensity 'forty'"),
        ("t,v\n2024-05-01T00:00:00Z,52\n2024-05-01T01:00:00Z,-3\n", 3, "bad intensity '-3'"),
        ("2024-05-01T00:00:00Z,52\nyesterday,50\n", 2, "bad timestamp 'yesterday'"),
        ("2024-05-01T00:00:00Z,52\n2024-05-01T01:00:00Z,50,FR\n", 2, "expected 2 columns"),
        ("2024-05-01T00:00:00Z,52\n2024-05-01T01:00:00Z\n", 2, "expected 2 columns"),
        ("2024-05-01T01:00:00Z,52\n2024-05-01T00:00:00Z,50\n", 2, "is not after the previous row"),
        ("1714521600,52\n1714521600,50\n", 2, "is not after the previous row"),
    ],
)
def test_malformed_rows_name_the_line_and_the_fix(text, line, fragment):
    with pytest.raises(IntensityDataError) as info:
        parse_intensity_series(text, path="grid.csv")
    msg = str(info.value)
    assert f"grid.csv line {line}:" in msg
    assert fragment in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "no data rows"),
        ("timestamp,g\n# nothing\n", "no data rows"),
        ("1714521600,52\n", "only one data row (line 1)"),
    ],
)
def test_too_few_rows_say_why(text, fragment):
    with pytest.raises(IntensityDataError, match="at least two") as info:
        parse_intensity_series(text, path="grid.csv")
    assert fragment in str(info.value)


def test_malformed_file_fails_when_the_provider_is_resolved_not_after_the_run():
    with pytest.raises(IntensityDataError, match=r"intensity_malformed\.csv line 3: bad intensity 'forty'"):
        resolve_provider(intensity_csv=DATA / "intensity_malformed.csv")


def test_missing_file_says_which_option(tmp_path):
    with pytest.raises(IntensityDataError, match="not found: check the path given to --intensity-csv"):
        resolve_provider(intensity_csv=tmp_path / "nope.csv")
