"""Text a terminal, a Markdown viewer or a browser shows as it is written.

Names, methods, notes and error messages reach every output from results files and plugins that anyone can
write. A NUL or an escape sequence in a benchmark name can clear a terminal, rewrite the lines above it, hide
a regression in a CI log or break a file's encoding; bidirectional overrides can make text read differently
from what it is ("Trojan source"). Every renderer's output passes through ``printable``, which drops them and
keeps newlines and tabs.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

#: C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidi embedding/override/isolate marks.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


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


def printable_run(record: R) -> R:
    """A frozen record (a ``Run``, its benchmarks, their rounds...) with every text field ``printable``.

    For writers of structured formats (JSON, YAML, Prometheus labels, CSV): their escaping keeps a control
    character as an escape that the reading tool turns back into the character, so the names are cleaned
    before they are serialised. Mappings (params, extra) are left as they are; unchanged objects are reused.
    """
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        return record
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if not f.init:
            continue
        value = getattr(record, f.name)
        clean = _printable_value(value)
        if clean is not value:
            changes[f.name] = clean
    return cast(R, dataclasses.replace(record, **changes)) if changes else record


def _printable_value(value: Any) -> Any:
    if isinstance(value, str):
        clean = printable(value)
        return value if clean == value else clean
    if isinstance(value, tuple):
        if not value or not (isinstance(value[0], str | tuple) or dataclasses.is_dataclass(value[0])):
            return value  # figures (a timeline's numbers): nothing to clean
        items = [_printable_value(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else tuple(items)
    return printable_run(value)
