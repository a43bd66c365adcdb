"""A grid-intensity time series read from a CSV of (timestamp, gCO2e/kWh) rows.

The series is step-wise: each value holds from its timestamp until the next one, and the last value holds
for one more step as long as the step before it (hourly data ending at 23:00 covers until 24:00). A series
that does not cover a window is an error, never extrapolated: a stale file must not silently price today's
run.

Accepted file format (comma-separated, UTF-8, ``#`` comments and blank lines ignored, one optional header row)::

    timestamp,g_per_kwh
    2024-05-01T00:00:00Z,52
    2024-05-01T01:00:00Z,48.5
    1714532400,47          # unix seconds work too

ISO-8601 timestamps without a UTC offset are taken as UTC.
"""

from __future__ import annotations

import bisect
import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from energybench.errors import IntensityDataError
from energybench.measurement import JOULES_PER_KWH
from energybench.units import is_number

Segment = tuple[float, float, float]  # (start unix s, end unix s, joules)


#: Unix seconds of 0001-01-01 and 9999-12-31T23:59:59Z: what ``datetime`` can show. A timestamp outside is
#: refused on the line it is on (millisecond epochs are the usual cause), never crashes a later message.
MIN_UNIX_S = -62_135_596_800.0
MAX_UNIX_S = 253_402_300_799.0


def format_time(t: float) -> str:
    """ISO-8601 UTC for unix seconds; the raw number for anything ``datetime`` cannot show."""
    try:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return f"{t:g} (unix s)"


@dataclass(frozen=True)
class IntensitySeries:
    """Step-wise intensity: ``values[i]`` holds over ``[times[i], times[i+1])``, the last one until ``end``."""

    times: tuple[float, ...]
    values: tuple[float, ...]
    end: float
    path: str = "<memory>"

    @property
    def start(self) -> float:
        return self.times[0]

    def _bounds(self, i: int) -> tuple[float, float]:
        return self.times[i], (self.times[i + 1] if i + 1 < len(self.times) else self.end)

    def check_covers(self, start: float, end: float) -> None:
        """Raise ``IntensityDataError`` unless ``[start, end]`` lies inside the series."""
        if start < self.start or end > self.end:
            raise IntensityDataError(
                f"intensity series {self.path} covers {format_time(self.start)} to {format_time(self.end)} "
                f"but the window runs {format_time(start)} to {format_time(end)}: add rows that cover the "
                "window, or pass --intensity G_PER_KWH for a fixed factor"
            )

    def value_at(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t) - 1
        return self.values[max(0, min(i, len(self.values) - 1))]

    def grams_per_pue(self, segments: Sequence[Segment]) -> tuple[float, float]:
        """(gCO2e before PUE, kWh) of ``segments``, each segment's joules spread evenly over its span."""
        grams = 0.0
        joules = 0.0
        for start, end, seg_j in segments:
            joules += seg_j
            if end <= start:  # an instant: price it at the value holding then
                grams += seg_j / JOULES_PER_KWH * self.value_at(start)
                continue
            span = end - start
            i = max(0, bisect.bisect_right(self.times, start) - 1)
            while i < len(self.times):
                lo, hi = self._bounds(i)
                if lo >= end:
                    break
                overlap = min(hi, end) - max(lo, start)
                if overlap > 0:
                    grams += seg_j * (overlap / span) / JOULES_PER_KWH * self.values[i]
                i += 1
        return grams, joules / JOULES_PER_KWH

    def time_weighted_mean(self, start: float, end: float) -> float:
        """Mean intensity over ``[start, end]``, for windows that used no energy."""
        if end <= start:
            return self.value_at(start)
        grams, kwh = self.grams_per_pue([(start, end, JOULES_PER_KWH)])
        return grams / kwh


def parse_timestamp(text: str) -> float:
    """Unix seconds, from unix seconds or ISO-8601 (no offset means UTC). ``ValueError`` if neither."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            value = dt.timestamp()
        except (OverflowError, OSError) as exc:  # an offset that pushes year 1 or 9999 out of range
            raise ValueError(f"timestamp {text!r} is out of range: {exc}") from None
    if not math.isfinite(value):
        raise ValueError(f"timestamp {text!r} is not finite")
    if not MIN_UNIX_S <= value <= MAX_UNIX_S:
        hint = " (milliseconds? divide by 1000)" if MIN_UNIX_S * 1000 <= value <= MAX_UNIX_S * 1000 else ""
        raise ValueError(f"timestamp {text!r} is not unix seconds between years 1 and 9999{hint}")
    return value


def _is_timestamp(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True




def parse_intensity_series(text: str, path: str = "<memory>") -> IntensitySeries:
    """Parse CSV text into a series; every problem names its line and how to fix it."""
    times: list[float] = []
    values: list[float] = []
    header_allowed = True
    first_line = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        raw = line.split("#", 1)[0].strip()  # ISO-8601 never contains '#', so this only drops comments
        if not raw:
            continue
        cells = [c.strip() for c in next(csv.reader([raw]))]
        while cells and not cells[-1]:
            cells.pop()
        if header_allowed and len(cells) >= 2 and not _is_timestamp(cells[0]) and not is_number(cells[1]):
            header_allowed = False  # "timestamp,g_per_kwh": neither cell is data, so it is the header
            continue
        header_allowed = False
        where = f"intensity CSV {path} line {lineno}"
        if len(cells) != 2:
            raise IntensityDataError(f"{where}: expected 2 columns (timestamp, gCO2e/kWh), got {len(cells)}: {raw!r}")
        try:
            t = parse_timestamp(cells[0])
        except ValueError as exc:
            why = str(exc) if "unix seconds between" in str(exc) else f"bad timestamp {cells[0]!r}"
            raise IntensityDataError(
                f"{where}: {why}: use ISO-8601 (2024-05-01T13:00:00Z) or unix seconds"
            ) from None
        try:
            v = float(cells[1])
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or v < 0:
            raise IntensityDataError(f"{where}: bad intensity {cells[1]!r}: give gCO2e/kWh as a number >= 0")
        if times and t <= times[-1]:
            raise IntensityDataError(
                f"{where}: timestamp {cells[0]} is not after the previous row's: sort the rows by time "
                "and drop duplicates"
            )
        if not times:
            first_line = lineno
        times.append(t)
        values.append(v)
    if len(times) < 2:
        got = "no data rows" if not times else f"only one data row (line {first_line})"
        raise IntensityDataError(
            f"intensity CSV {path} has {got}: give at least two (timestamp, gCO2e/kWh) rows so each step's "
            "length is known, or pass --intensity G_PER_KWH for a fixed factor"
        )
    end = times[-1] + (times[-1] - times[-2])
    return IntensitySeries(times=tuple(times), values=tuple(values), end=end, path=path)


def load_intensity_csv(path: str | os.PathLike[str]) -> IntensitySeries:
    """Read and parse an intensity CSV file; an unreadable file is an ``IntensityDataError`` with the fix."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IntensityDataError(f"intensity CSV {p} not found: check the path given to --intensity-csv") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IntensityDataError(
            f"cannot read intensity CSV {p}: {exc.__class__.__name__}: {exc}; give a readable UTF-8 CSV file"
        ) from None
    return parse_intensity_series(text, path=str(p))
