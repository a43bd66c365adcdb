"""Gate verdicts for a report over two runs, taken from ``energybench.compare`` (one gate logic, not two)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from energybench.compare import format_change
from energybench.measurement import format_joules
from energybench.report.model import GateRow, Notice


def comparison_rows(
    base: Mapping[str, Any], new: Mapping[str, Any], gate_texts: Sequence[str] = (), alpha: float | None = None
) -> tuple[list[GateRow], list[Notice]]:
    """Compare ``new`` with ``base`` exactly as ``energybench compare`` does, as rows and notices.

    Without gates the verdict is the rank test's (higher / lower / no significant change at ``alpha``).
    """
    from energybench.compare import compare_runs
    from energybench.gate import DEFAULT_ALPHA, check_alpha, parse_gates

    a = check_alpha(alpha) if alpha is not None else DEFAULT_ALPHA
    cmp = compare_runs(base, new, parse_gates(list(gate_texts)), alpha=a)
    rows = []
    for r in cmp.rows:
        detail = "; ".join(g.message for g in r.gates) or (
            f"median {format_joules(r.base_energy)} -> {format_joules(r.new_energy)} per round, "
            f"p={min(r.p_higher, r.p_lower):.3g}, n={r.n_base}/{r.n_new}"
        )
        change = f"{format_change(r.change)} [{format_change(r.ci_low)}, {format_change(r.ci_high)}]"
        rows.append(GateRow(benchmark=r.key, verdict=r.verdict(cmp.alpha), change=change, detail=detail))
    where = f"{cmp.base_id} -> {cmp.new_id}"
    notices = [Notice(where, w) for w in cmp.warnings] + [Notice(where, n) for n in cmp.notes]
    return rows, notices
