"""Per-layer comparisons across compression methods: which layers got cheaper or dearer per item.

Kept apart from the attribution itself (``energybench.measuring.layers``), which needs torch: this is arithmetic on
saved ``LayerProfile`` records, what the report builds its per-layer section from, long after the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from energybench.record.layers import LayerProfile

__all__ = ["MAX_ROWS", "LayerRow", "LayerTable", "choose_depth", "layer_table"]

#: At most this many rows in a per-layer comparison: the deepest module level that fits is chosen.
MAX_ROWS = 24


@dataclass(frozen=True)
class LayerRow:
    """One layer (at the table's level) in every method: energy per item, ``None`` where the method's model
    has no such layer. ``fast`` is true when any of its modules was below the power figure's resolution."""

    name: str
    baseline: float | None
    methods: dict[str, float | None]
    fast: bool = False

    def change(self, method: str) -> float | None:
        """The method's energy per item in this layer minus the baseline's (``None`` if either is absent)."""
        value = self.methods.get(method)
        return None if value is None or self.baseline is None else value - self.baseline


@dataclass(frozen=True)
class LayerTable:
    """Per-layer energy per item of one benchmark's methods against its baseline, at module depth ``depth``.

    A layer's figure is its share of its model's profiled run times that model's median energy per item in
    the trials, so each column adds up to the headline figure while the split comes from the profile.
    """

    benchmark: str
    phase: str
    item_unit: str
    depth: int
    methods: tuple[str, ...]
    rows: tuple[LayerRow, ...]


def _level(name: str, depth: int) -> str:
    return name if name.startswith(("(", "<")) else ".".join(name.split(".")[:depth])


def choose_depth(names: Iterable[str], max_rows: int = MAX_ROWS) -> int:
    """The deepest module level whose distinct names fit in ``max_rows`` (1 at least)."""
    names = list(names)
    deepest = max((len(n.split(".")) for n in names if not n.startswith(("(", "<"))), default=1)
    for depth in range(deepest, 0, -1):
        if len({_level(n, depth) for n in names}) <= max_rows:
            return depth
    return 1


def _map_to(levels: Sequence[str], name: str, depth: int) -> str:
    """A module's row: the longest baseline row that is a prefix of its path (a quantization wrapper's
    ``linear1.module`` belongs to the baseline's ``linear1``), else its own name at ``depth``."""
    if name in levels:
        return name
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in levels:
            return ".".join(parts[:k])
    return _level(name, depth)


def layer_table(benchmark: str, phase: str, item_unit: str,
                models: Sequence[tuple[str, bool, float, LayerProfile | None]]) -> LayerTable | None:
    """Compare layers across methods. ``models`` are ``(method, is_baseline, median energy per item, profile)``;
    ``None`` without a baseline profile or without a method profile to compare with it."""
    base = next(((m, e, p) for m, b, e, p in models if b and p is not None and p.layers), None)
    others = [(m, e, p) for m, b, e, p in models if not b and p is not None and p.layers]
    if base is None or not others:
        return None
    depth = choose_depth(x.name for x in base[2].layers)
    levels = list(dict.fromkeys(_level(x.name, depth) for x in base[2].layers))

    def per_item(energy: float, profile: LayerProfile) -> tuple[dict[str, float], set[str]]:
        out: dict[str, float] = {}
        fast: set[str] = set()
        total = profile.energy_j
        for x in profile.layers:
            row = _map_to(levels, x.name, depth)
            share = x.energy_j / total if total and math.isfinite(total) and math.isfinite(x.energy_j) else 0.0
            out[row] = out.get(row, 0.0) + share * energy
            if x.below_resolution:
                fast.add(row)
        return out, fast

    base_values, fast = per_item(base[1], base[2])
    columns = {}
    for method, energy, profile in others:
        columns[method], more = per_item(energy, profile)
        fast |= more
    names = list(dict.fromkeys([*levels, *(n for col in columns.values() for n in col)]))
    rows = tuple(LayerRow(n, base_values.get(n), {m: col.get(n) for m, col in columns.items()}, n in fast)
                 for n in names)
    return LayerTable(benchmark, phase, item_unit, depth, tuple(columns), rows)
