"""Reading parsed JSON field by field: every type error names its path (``benchmarks[2].rounds[0].energy_j``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any

from energybench.errors import ResultsError

#: The largest magnitude a figure in a run file may have (1e15 J is 278 GWh in one round; 1e15 s is 31 million
#: years): anything larger is a corrupt file, not a measurement.
MAX_FIGURE = 1e15


def one_line(path: str) -> str:
    """A field's path as one printable line: a key of a hand-edited or corrupt file may hold a newline or another
    control character, and the error that names it must stay one line (``"\\n"`` is written as such)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


class _Field:
    """A cursor into the JSON being parsed: every type error names its path (``benchmarks[2].rounds[0]``)."""

    def __init__(self, value: Any, path: str, where: str) -> None:
        self.value = value
        self.path = path
        self.where = where

    def fail(self, problem: str) -> ResultsError:
        return ResultsError(f"{self.where}: malformed results file: {one_line(self.path)}: {problem}")

    def child(self, key: str | int) -> _Field:
        if isinstance(key, int):
            return _Field(self.value[key], f"{self.path}[{key}]", self.where)
        value = self.value.get(key) if isinstance(self.value, dict) else None
        return _Field(value, f"{self.path}.{key}" if self.path else key, self.where)

    def obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.fail(f"expected an object, got {_kind(self.value)}")
        return self.value

    def opt_obj(self) -> dict[str, Any] | None:
        return None if self.value is None else self.obj()

    def items(self) -> Iterator[_Field]:
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {_kind(self.value)}")
        return (self.child(i) for i in range(len(self.value)))

    def number(self, *, allow_nan: bool = False, minimum: float | None = None, above: float | None = None,
               maximum: float | None = MAX_FIGURE) -> float:
        """A finite number (NaN only with ``allow_nan``) within ``[minimum, maximum]`` and ``> above``.

        ``maximum`` defaults to ``MAX_FIGURE``: a figure beyond any real measurement is a corrupt file, and
        refusing it here keeps every sum, ratio and statistic downstream finite.
        """
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(f"expected a number, got {_kind(v)}")
        try:
            v = float(v)
        except OverflowError:  # an integer literal beyond any float
            raise self.fail("is too large to be a number") from None
        if math.isnan(v):
            if allow_nan:
                return v
            raise self.fail("is NaN")
        if math.isinf(v):
            raise self.fail("is infinite")
        if minimum is not None and v < minimum:
            raise self.fail(f"must be >= {minimum:g}, got {v:g}")
        if above is not None and v <= above:
            raise self.fail(f"must be > {above:g}, got {v:g}")
        if maximum is not None and abs(v) > maximum:
            raise self.fail(f"{v:g} is beyond any plausible figure (at most {maximum:g})")
        return v

    def boolean(self, default: bool) -> bool:
        if self.value is None:
            return default
        if not isinstance(self.value, bool):
            raise self.fail(f"expected true or false, got {_kind(self.value)}")
        return self.value

    def opt_number(self, **kw: Any) -> float | None:
        return None if self.value is None else self.number(**kw)

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail(f"expected a string, got {_kind(self.value)}")
        return self.value

    def opt_text(self) -> str | None:
        return None if self.value is None else self.text()

    def texts(self) -> tuple[str, ...]:
        if self.value is None:
            return ()
        return tuple(str(f.text()) for f in self.items())

    def numbers(self, **kw: Any) -> dict[str, float]:
        """An object of ``key -> number`` (domains, watts)."""
        if self.value is None:
            return {}
        return {str(k): self.child(k).number(**kw) for k in self.obj()}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


def _extra(d: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in known}


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}



def _required_list(f: _Field, key: str) -> list[_Field]:
    child = f.child(key)
    if child.value is None:
        raise child.fail("missing (a list is required)")
    return list(child.items())


def _checked_entries(f: _Field, texts: Sequence[str] = (), numbers: Sequence[str] = (),
                     text_lists: Sequence[str] = ()) -> tuple[dict[str, Any], ...]:
    """A list of free-form objects (GPUs, samplers) whose keys that readers show are checked by type, so a
    report never meets a list where it prints a name."""
    if f.value is None:
        return ()
    out = []
    for item in f.items():
        d = item.obj()
        for key in texts:
            item.child(key).opt_text()
        for key in numbers:
            item.child(key).opt_number(allow_nan=True)
        for key in text_lists:
            item.child(key).texts()
        out.append(d)
    return tuple(out)
