"""Text a terminal, a Markdown viewer or a browser shows as it is written.

Names, methods, notes and error messages reach every output from results files and plugins that anyone can
write. A NUL or an escape sequence in a benchmark name can clear a terminal, rewrite the lines above it, hide
a regression in a CI log or break a file's encoding; bidirectional overrides can make text read differently
from what it is ("Trojan source"). Every renderer's output passes through ``printable``, which drops them and
keeps newlines and tabs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

#: C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidi embedding/override/isolate marks.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

F = TypeVar("F", bound=Callable[..., Any])


def printable(text: str) -> str:
    """``text`` without control characters (newlines and tabs kept)."""
    return _UNPRINTABLE.sub("", text)


def printable_output(fn: F) -> F:
    """Decorate a renderer that returns text or a list of lines so that its output is ``printable``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        if isinstance(out, str):
            return printable(out)
        if isinstance(out, list):
            return [printable(line) if isinstance(line, str) else line for line in out]
        return out

    return cast(F, wrapper)
