"""A comparison as JSON (``energybench compare --json``): the figures a CI step or a dashboard reads.

The same figures as the terminal and Markdown outputs: one p per row (its deciding gate's corrected p when
gated), and per gate its decision, minimum detectable effect and whether it is blind. Non-finite numbers are
written as ``null`` so every JSON reader can load the file.
"""

from __future__ import annotations

import json
import math
from typing import Any

from energybench.verdicts.compare import Comparison, Row
from energybench.verdicts.gate import GateResult

SCHEMA = "energybench/comparison"
VERSION = 1


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _gate(g: GateResult) -> dict[str, Any]:
    return {
        "gate": g.gate.describe(), "metric": g.gate.metric.name, "field": g.gate.metric.field,
        "passed": g.passed, "reason": g.reason, "blind": g.blind, "enforces": g.enforces,
        "base_median": _num(g.base_median), "new_median": _num(g.new_median), "change": _num(g.change),
        "ci_low": _num(g.ci_low), "ci_high": _num(g.ci_high), "p": _num(g.p_adjusted), "p_uncorrected": _num(g.p),
        "mde": _num(g.mde), "mde_power": 0.8, "family": g.family, "n_base": g.n_base, "n_new": g.n_new,
        "between_run_sd": _num(g.between_sd) if g.mode == "independent" else None,
    }


def _row(r: Row) -> dict[str, Any]:
    return {
        "benchmark": r.key, "verdict": r.verdict(), "no_data": r.no_data,
        "base_energy_per_call_j": _num(r.base_energy), "new_energy_per_call_j": _num(r.new_energy),
        "change": _num(r.change), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high),
        "p": None if r.no_data else _num(r.shown_p), "n_base": r.n_base, "n_new": r.n_new, "source": r.source,
        "gates": [_gate(g) for g in r.gates],
    }


def to_dict(cmp: Comparison) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "version": VERSION, "base": cmp.base_id, "new": cmp.new_id, "mode": cmp.mode,
        "test": cmp.test, "correction": cmp.correction, "alpha": cmp.alpha, "exit_code": cmp.exit_code,
        "between_run_sd": _num(cmp.drift.sd) if cmp.drift else None,
        "between_run_source": cmp.drift.source if cmp.drift else None,
        "rows": [_row(r) for r in cmp.rows], "only_base": cmp.only_base, "only_new": cmp.only_new,
        "warnings": cmp.warnings, "notes": cmp.notes,
    }


def to_json(cmp: Comparison) -> str:
    return json.dumps(to_dict(cmp), indent=1, allow_nan=False) + "\n"
