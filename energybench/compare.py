"""Comparison of two runs: per-benchmark rows, gate verdicts, warnings, and terminal/Markdown writers.

The pytest plugin and ``energybench compare`` both build a ``Comparison`` here and print it with the same
writers, so a CI log, a PR comment and a local run all show the same figures. The report issue reuses
``format_table`` / ``to_markdown``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from energybench import stats
from energybench.errors import ResultsError
from energybench.gate import DEFAULT_ALPHA, Gate, GateResult, evaluate_gate, round_values
from energybench.machine import identity_mismatches
from energybench.measurement import format_joules
from energybench.storage import benchmark_source
from energybench.tables import text_table


def bench_key(bench: Mapping[str, Any]) -> str:
    """How a benchmark is matched across runs: its name, plus the subject when it is not the baseline."""
    subject = bench.get("subject") or "baseline"
    return bench["name"] if subject == "baseline" else f"{bench['name']} [{subject}]"


@dataclass(frozen=True)
class Row:
    """One benchmark present in both runs."""

    key: str
    base_energy: float  # median J per call
    new_energy: float
    change: float  # relative change of medians
    ci_low: float
    ci_high: float
    p_higher: float
    p_lower: float
    n_base: int
    n_new: int
    source: str
    gates: tuple[GateResult, ...] = ()

    @property
    def failed(self) -> bool:
        return any(not g.passed for g in self.gates)

    def verdict(self, alpha: float) -> str:
        if self.gates:
            return "REGRESSION" if self.failed else "pass"
        if self.p_higher < alpha:
            return "higher"
        if self.p_lower < alpha:
            return "lower"
        return "no significant change"


@dataclass
class Comparison:
    """Everything a comparison found; ``exit_code`` is 1 when a gate failed, else 0."""

    base_id: str | None
    new_id: str
    alpha: float = DEFAULT_ALPHA
    gates: tuple[Gate, ...] = ()
    rows: list[Row] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[GateResult]:
        return [g for r in self.rows for g in r.gates if not g.passed]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def compare_runs(
    base: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    gates: Sequence[Gate] = (),
    *,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Compare ``new`` against ``base`` (``None``: no baseline yet, which passes with a note)."""
    cmp = Comparison(base_id=base.get("run_id") if base else None, new_id=str(new.get("run_id")), alpha=alpha,
                     gates=tuple(gates))
    if base is None:
        cmp.notes.append("no baseline to compare against yet: passing (the first run becomes the baseline)")
        return cmp
    base_b = {bench_key(b): b for b in base.get("benchmarks", [])}
    new_b = {bench_key(b): b for b in new.get("benchmarks", [])}
    shared = [k for k in new_b if k in base_b]
    if not shared:
        raise ResultsError(
            f"runs {cmp.base_id} and {cmp.new_id} share no benchmark (baseline has "
            f"{_some(sorted(base_b))}); compare runs of the same suite"
        )
    cmp.only_base = sorted(k for k in base_b if k not in new_b)
    cmp.only_new = sorted(k for k in new_b if k not in base_b)
    for msg in identity_mismatches(base.get("machine") or {}, new.get("machine") or {}):
        cmp.warnings.append(f"machines differ, energy may not be comparable: {msg}")
    for key in shared:
        b, n = base_b[key], new_b[key]
        be, ne = round_values(b, "energy_j"), round_values(n, "energy_j")
        results = []
        for gate in gates:
            res = evaluate_gate(
                gate, round_values(b, gate.metric.field), round_values(n, gate.metric.field), alpha=alpha,
                benchmark=key,
            )
            results.append(res)
            if res.warning and res.warning not in cmp.warnings:
                cmp.warnings.append(res.warning)
        mb, mn = stats.median(be), stats.median(ne)
        lo, hi = stats.change_ci(be, ne)
        unstable = stats.stability_warning(ne)
        if unstable:
            cmp.warnings.append(f"{key} (new run): {unstable}")
        cmp.rows.append(
            Row(
                key=key,
                base_energy=mb,
                new_energy=mn,
                change=(mn / mb - 1.0) if mb else math.nan,
                ci_low=lo,
                ci_high=hi,
                p_higher=stats.mann_whitney_greater(be, ne).p,
                p_lower=stats.mann_whitney_greater(ne, be).p,
                n_base=len(be),
                n_new=len(ne),
                source=benchmark_source(n),
                gates=tuple(results),
            )
        )
    for key in cmp.only_base:
        cmp.notes.append(f"{key}: only in the baseline (removed?)")
    for key in cmp.only_new:
        cmp.notes.append(f"{key}: new benchmark, no baseline yet")
    return cmp


def format_change(x: float) -> str:
    """A relative change as ``+12.3%`` (``n/a`` when unknown), as every comparison table shows it."""
    return "n/a" if math.isnan(x) else f"{x * 100:+.1f}%"


def _cells(row: Row, alpha: float) -> list[str]:
    p = min(row.p_higher, row.p_lower)
    return [
        row.key,
        format_joules(row.base_energy),
        format_joules(row.new_energy),
        format_change(row.change),
        f"[{format_change(row.ci_low)}, {format_change(row.ci_high)}]",
        f"{p:.3g}",
        f"{row.n_base}/{row.n_new}",
        row.source,
        row.verdict(alpha),
    ]


HEADERS = ["benchmark", "baseline (median)", "new (median)", "change", "95% CI", "p", "n", "source", "verdict"]


def _title(cmp: Comparison) -> str:
    return f"energy comparison: {cmp.base_id or '(no baseline)'} -> {cmp.new_id}"


def format_table(cmp: Comparison) -> str:
    """Fixed-width text for terminals and CI logs."""
    lines = [_title(cmp)]
    if cmp.rows:
        lines += text_table(HEADERS, [_cells(r, cmp.alpha) for r in cmp.rows], right=range(1, len(HEADERS)))
    for r in cmp.rows:
        for g in r.gates:
            lines.append(g.message)
    lines += [f"warning: {w}" for w in cmp.warnings]
    lines += [f"note: {n}" for n in cmp.notes]
    if cmp.gates:
        lines.append(
            f"{len(cmp.regressions)} energy regression(s)" if cmp.regressions else "energy gates passed"
        )
    return "\n".join(lines)


def to_markdown(cmp: Comparison) -> str:
    """GitHub-flavoured Markdown (for ``$GITHUB_STEP_SUMMARY`` or a PR comment)."""
    # names come from result files: every cell and message is escaped so none can become markup
    from energybench.report.markdown import markdown_table, md_escape

    out = [f"### energy comparison: {md_escape(cmp.base_id or '(no baseline)')} → {md_escape(cmp.new_id)}", ""]
    if cmp.rows:
        rows = []
        for r in cmp.rows:
            cells = _cells(r, cmp.alpha)
            if r.failed:
                cells[-1] = "❌ REGRESSION"
            rows.append(cells)
        out += [markdown_table(HEADERS, rows, align="l" + "r" * (len(HEADERS) - 2) + "c"), ""]
    details = [g.message for r in cmp.rows for g in r.gates]
    if details:
        out += [f"- {'❌' if m.startswith('FAIL') else '✅'} {md_escape(m)}" for m in details] + [""]
    out += [f"> **warning:** {md_escape(w)}" for w in cmp.warnings]
    out += [f"> note: {md_escape(n)}" for n in cmp.notes]
    if cmp.gates:
        summary = f"**{len(cmp.regressions)} energy regression(s)**" if cmp.regressions else "**energy gates passed**"
        out += ["", summary]
    return "\n".join(out).rstrip() + "\n"


def _some(names: list[str], shown: int = 5) -> str:
    """A few names and how many more: an error stays one readable line for a suite of hundreds."""
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
