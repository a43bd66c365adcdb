"""The energy table pytest prints at the end of a session, laid out like pytest-benchmark's.

As pytest-benchmark does with ``--benchmark-sort/-columns/-group-by``, the table is sorted (lowest energy per
call first by default), its columns chosen, and its rows grouped (one block per module, function, family,
parameter...). It fits the terminal (100 columns when output is not one) by folding each interval under its
figure and leaving out the least needed columns (named in a footer); columns chosen with ``--energy-columns``
are all kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from energybench import units
from energybench.record import Benchmark
from energybench.render.tables import Column, Fitted, Row, fit_table


@dataclass(frozen=True)
class _Col:
    column: Column
    cell: Callable[[Benchmark], tuple[str, ...]]


def _figure(b: Benchmark, figure: str, fmt: Callable[[float | None], str]) -> tuple[str, ...]:
    s = b.summary(figure)
    return (fmt(s.median),) if s.n else ("-",)


def _energy(b: Benchmark) -> tuple[str, ...]:
    e = b.summary("energy_per_call_j")
    if not e.n:
        return ("-",)
    interval = units.compact_interval(e.ci_low, e.ci_high, e.median, units.joules) if e.n > 1 else ""
    return (units.joules(e.median), interval) if interval else (units.joules(e.median),)


def _item(b: Benchmark) -> tuple[str, ...]:
    return (units.per(units.joules(b.energy_per_item.median), b.item_unit),) if b.has_items else ("-",)


def _spread(b: Benchmark) -> tuple[str, ...]:
    e = b.summary("energy_per_call_j")
    return (units.percent(e.spread) + (" !" if b.stability_warning or b.warnings else ""),) if e.n else ("-",)


#: ``--energy-columns`` names, in the order the table shows them (``drop``: left out first to fit, highest first).
COLUMNS: dict[str, _Col] = {
    "energy": _Col(Column(("energy/call", "[95% CI]"), right=True), _energy),
    "item": _Col(Column(("energy/item",), right=True), _item),
    "power": _Col(Column(("power",), right=True, drop=3), lambda b: _figure(b, "power_w", units.watts)),
    "time": _Col(Column(("time/call",), right=True, drop=1),
                 lambda b: _figure(b, "duration_per_call_s", units.seconds)),
    "co2e": _Col(Column(("CO2e/call",), right=True, drop=2), lambda b: _figure(b, "co2e_per_call_g", units.grams)),
    "source": _Col(Column(("source",)), lambda b: (b.source,)),
    "rounds": _Col(Column(("rounds x iters",), right=True, drop=4),
                   lambda b: (f"{len(b.rounds)} x {b.extra.get('iterations')}",)),
    "spread": _Col(Column(("spread",), right=True), _spread),
}
#: ``--energy-sort`` keys: a figure (lowest first, as pytest-benchmark sorts by min) or a name.
SORTS: dict[str, Callable[[Benchmark], object]] = {
    "energy": lambda b: b.summary("energy_per_call_j").median, "item": lambda b: b.energy_per_item.median,
    "power": lambda b: b.summary("power_w").median, "time": lambda b: b.summary("duration_per_call_s").median,
    "co2e": lambda b: b.summary("co2e_per_call_g").median, "spread": lambda b: b.summary("energy_per_call_j").spread,
    "rounds": lambda b: len(b.rounds), "name": lambda b: _func(b), "fullname": lambda b: b.name,
}
GROUPS = ("module", "func", "family", "method", "phase", "param", "name", "fullname")


def _func(b: Benchmark) -> str:
    """``test_fn[64]``: the test's name without its module (and its method, unless baseline: ``mm [half]``)."""
    return b.key.split("::", 1)[-1]


def _group_value(b: Benchmark, key: str) -> str:
    if key.startswith("param:"):
        return f"{key}={b.params.get(key[6:], '-')}"
    return {
        "module": lambda: b.name.split("::", 1)[0], "func": lambda: _func(b).split("[", 1)[0],
        "family": lambda: str(b.family or "-"), "method": lambda: b.method, "phase": lambda: b.phase,
        "param": lambda: ", ".join(f"{k}={v}" for k, v in sorted(b.params.items())) or "no params",
        "name": lambda: _func(b), "fullname": lambda: b.name,
    }[key]()


def _names(text: str, allowed: Sequence[str], what: str, params: bool = False) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in str(text).split(",") if n.strip())
    bad = [n for n in names if n not in allowed and not (params and n.startswith("param:") and len(n) > 6)]
    if bad or not names:
        extra = ", param:NAME" if params else ""
        raise ValueError(f"unknown {what} {', '.join(bad) or repr(text)}; use a comma list of {', '.join(allowed)}"
                         f"{extra}")
    return names


def parse_columns(text: str) -> tuple[str, ...]:
    """``energy,time,source`` -> the columns to show (after the test's name), as ``--energy-columns`` takes."""
    return _names(text, tuple(COLUMNS), "column")


def parse_sort(text: str) -> str:
    names = _names(text, tuple(SORTS), "sort key")
    if len(names) != 1:
        raise ValueError(f"sort by one key, got {text!r}; one of {', '.join(SORTS)}")
    return names[0]


def parse_group_by(text: str) -> tuple[str, ...]:
    """``module`` or ``func,param:size``: rows are grouped by these values, as ``--benchmark-group-by``."""
    return _names(text, GROUPS, "group-by key", params=True)


def _sort_key(key: str) -> Callable[[Benchmark], tuple[int, object]]:
    def k(b: Benchmark) -> tuple[int, object]:
        v = SORTS[key](b)
        missing = isinstance(v, float) and math.isnan(v)
        return (1, 0.0) if missing else (0, v)

    return k


def summary_table(benches: Sequence[Benchmark], *, columns: Sequence[str] | None = None, sort: str = "energy",
                  group_by: Sequence[str] = (), width: int | None = None) -> Fitted:
    """Energy per call with its CI, energy per item (tests that count items), mean power, time, CO2e,
    provenance, rounds and spread (``!`` marks an unstable benchmark); ``columns`` given keeps exactly those."""
    chosen = list(columns) if columns else [c for c in COLUMNS if c != "item" or any(b.has_items for b in benches)]
    cols = [Column(("test",), shrink=True)] + [replace(COLUMNS[c].column, drop=0) if columns else COLUMNS[c].column
                                  for c in chosen]  # columns the user chose are folded to fit, never dropped
    groups: dict[tuple[str, ...], list[Benchmark]] = {}
    for b in sorted(benches, key=_sort_key(sort)):
        groups.setdefault(tuple(_group_value(b, k) for k in group_by), []).append(b)
    rows: list[Row] = []
    for values, members in groups.items():
        modules = {b.name.split("::", 1)[0] for b in members}
        short = len(modules) == 1 and all("::" in b.name for b in members)
        title = " \u00b7 ".join(values) if values else next(iter(modules)) if short else ""
        if title:
            rows.append(f"{title} ({len(members)} test{'s' if len(members) != 1 else ''})")
        rows += [[(_func(b) if short else b.key,), *(COLUMNS[c].cell(b) for c in chosen)] for b in members]
    return fit_table(cols, rows, width)
