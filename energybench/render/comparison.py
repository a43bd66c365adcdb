"""A comparison of two runs as text for terminals and CI logs, and as Markdown for a PR or step summary."""

from __future__ import annotations

import math
import textwrap

from energybench import units
from energybench.render.printable import printable_output
from energybench.render.tables import Column, fit_table, markdown_table, md_escape, terminal_width, text_table
from energybench.render.tables import Row as TableRow
from energybench.verdicts.compare import Comparison, Row
from energybench.verdicts.gate import GateResult
from energybench.verdicts.power import rounds_needed

HEADERS = ["benchmark", "baseline (median)", "new (median)", "change", "95% CI", "p adj.", "n", "source", "verdict"]


def why(r: GateResult) -> str:
    """The decision in words that match the change's direction."""
    if r.reason == "regression":
        return "higher, significantly, and may be over the threshold"
    if r.reason == "untested-regression":
        return "over the threshold on the change alone (too few rounds for a test)"
    if r.reason == "no-pairs":
        return "no pair stands (every pair's sides saw different load)"
    if r.reason == "not-significant":
        if r.change > 0:
            return "higher but not significantly (its interval reaches over the threshold)"
        return "not higher (its interval still reaches over the threshold)"
    return "lower, within the threshold" if r.change < 0 else "within the threshold"


def _needs(r: GateResult) -> str:
    """What would let a gate enforce its threshold: more rounds, or an A/B session where rounds cannot."""
    level = r.alpha / max(r.family, 1)
    target = r.gate.threshold if r.gate.relative else r.gate.threshold / r.base_median if r.base_median > 0 else 0.0
    if r.mode == "history":
        return "more baseline runs in the history, or an A/B session (energybench ab)"
    if not (r.tested and math.isfinite(r.se)) or target <= 0:
        return "at least 5 rounds per side"
    if r.mode == "paired":
        n = rounds_needed(r.se * math.sqrt(r.n_new), 0.0, level, target, sides=1)
        return f"n>={n} pairs" if n else "a quieter machine"
    between = 2.0 * r.between_sd**2
    within = max(r.se**2 - between, 0.0)
    per_round = math.sqrt(within / (1 / r.n_base + 1 / r.n_new)) if r.n_base and r.n_new else math.nan
    n = rounds_needed(per_round, between, level, target)
    if n is None:
        return (f"an A/B session (energybench ab): the {r.between_sd:.1%} between-run spread alone hides "
                f"{r.gate.describe()}")
    return f"n>={n} rounds per side, or an A/B session (energybench ab)"


def sees(r: GateResult) -> str:
    """What the gate can see: its MDE at its n and family size, and whether that enforces its threshold."""
    if r.reason == "no-pairs":
        return "no test: BLIND; needs a steadier machine or more rounds"
    if not r.tested:
        return "no test (threshold alone)"
    shown = gate_change(r.mde, r) if math.isfinite(r.mde) else "no finite change"
    text = f"detects {shown} (80% power, n={r.n_base}/{r.n_new}, {r.family} gate decision(s))"
    if r.blind:
        return f"{text}: BLIND, it cannot catch even a doubling; needs {_needs(r)}"
    if not r.enforces:
        return f"{text}: cannot enforce {r.gate.describe()}; needs {_needs(r)}"
    return text


def figure(value: float, unit: str) -> str:
    """A gate metric's value in its unit (SI prefixes for joules, grams, watts and seconds)."""
    if unit == "g":
        return units.grams(value)
    if unit == "s":
        return units.seconds(value)
    return units.si(value, unit)


def gate_change(value: float, result: GateResult) -> str:
    if math.isnan(value):
        return units.NA
    if result.gate.relative:
        return units.change(value)
    return ("+" if value > 0 else "") + figure(value, result.gate.metric.unit)


def gate_message(r: GateResult) -> str:
    """``FAIL bench energy:+5%: energy per call 1.2 J -> 1.5 J (median), change +25% [95% CI ...], p, n: why``."""
    unit = r.gate.metric.unit
    status = "FAIL" if not r.passed else "BLIND" if r.blind else "PASS"
    return (
        f"{status} {r.benchmark} {r.gate.describe()}: {r.gate.metric.label} "
        f"{figure(r.base_median, unit)} -> {figure(r.new_median, unit)} (median), change {gate_change(r.change, r)} "
        f"[95% CI {gate_change(r.ci_low, r)}, {gate_change(r.ci_high, r)}], p adj. {r.p_adjusted:.3g}: "
        f"{why(r)}; {sees(r)}"
    )


def change_with_ci(row: Row) -> str:
    return f"{units.change(row.change)} [{units.change(row.ci_low)}, {units.change(row.ci_high)}]"


def _cells(row: Row, alpha: float) -> list[str]:
    if row.no_data:
        return [row.key, units.NA, units.NA, units.NA, "", units.NA, f"{row.n_base}/{row.n_new}", row.source,
                row.verdict(alpha)]
    return [
        row.key, units.joules(row.base_energy), units.joules(row.new_energy), units.change(row.change),
        f"[{units.change(row.ci_low)}, {units.change(row.ci_high)}]",
        f"{row.shown_p:.3g}", f"{row.n_base}/{row.n_new}", row.source, row.verdict(alpha),
    ]


def _title(cmp: Comparison) -> str:
    return f"energy comparison: {cmp.base_id or '(no baseline)'} -> {cmp.new_id}"


def method_line(cmp: Comparison) -> str | None:
    """How the comparison decided: the test, the baseline runs, the correction and its level."""
    if not cmp.rows:
        return None
    history = f" over {len(cmp.history)} baseline runs ({', '.join(cmp.history)})" if cmp.history else ""
    across = (f"{cmp.family} gate decision(s) (p adj. of a gated row is its gate's, one-sided)" if cmp.gates
              else f"{len(cmp.rows)} benchmark(s) (two-sided)")
    return (f"test: {cmp.test}{history}; p-values corrected with {cmp.correction} across {across}, "
            f"level {cmp.alpha:g}")


def summary_line(cmp: Comparison) -> str | None:
    if not cmp.gates:
        return None
    if cmp.regressions:
        return f"{len(cmp.regressions)} energy regression(s)"
    if cmp.blind:
        allowed = "passing as allowed (--allow-blind)" if cmp.allow_blind else f"exit {cmp.exit_code}, not a pass"
        return (f"energy gates passed, but {len(cmp.blind)} of {cmp.family} could not fail (blind): {allowed}; "
                "add rounds or gate an A/B session (energybench ab)")
    weak = sum(1 for r in cmp.rows for g in r.gates if not g.enforces)
    return "energy gates passed" + (f"; {weak} of {cmp.family} cannot enforce their threshold (see each line)"
                                    if weak else "")


NARROW = (
    Column(("benchmark",), shrink=True), Column(("baseline", "(median)"), right=True),
    Column(("new", "(median)"), right=True), Column(("change", "[95% CI]"), right=True),
    Column(("p adj.",), right=True, drop=2), Column(("n",), right=True, drop=1), Column(("source",)),
    Column(("verdict",)),
)


@printable_output
def format_table(cmp: Comparison, *, width: int | None = None, wide: bool = False) -> str:
    """Text for terminals and CI logs, no wider than ``width`` (the terminal's, 100 when not one) unless ``wide``:
    intervals fold under their change, long lines wrap with an indent (a ``FAIL`` line still starts with it)."""
    width = terminal_width() if width is None else width
    lines = [_title(cmp)]
    notes: list[str] = []
    if cmp.rows:
        if wide:
            lines += text_table(HEADERS, [_cells(r, cmp.alpha) for r in cmp.rows], right=range(1, len(HEADERS)))
        else:
            rows: list[TableRow] = [[(c[0],), (c[1],), (c[2],), (c[3], c[4]), (c[5],), (c[6],), (c[7],), (c[8],)]
                               for c in (_cells(r, cmp.alpha) for r in cmp.rows)]
            fitted = fit_table(NARROW, rows, width)
            lines += fitted.lines
            if fitted.dropped:
                notes.append(f"columns left out to fit {width} characters: {', '.join(fitted.dropped)} (--wide)")
        notes.append(method_line(cmp) or "")
    notes += [gate_message(g) for r in cmp.rows for g in r.gates]
    notes += [f"warning: {w}" for w in cmp.warnings]
    notes += [f"note: {n}" for n in cmp.notes]
    if (summary := summary_line(cmp)) is not None:
        notes.append(summary)
    if wide:
        return "\n".join(lines + notes)
    return "\n".join(lines + [part for n in notes for part in _wrap(n, width)])


def _wrap(line: str, width: int) -> list[str]:
    return textwrap.wrap(line, width, subsequent_indent="    ", break_long_words=False,
                         break_on_hyphens=False) or [""]


@printable_output
def to_markdown(cmp: Comparison) -> str:
    """GitHub-flavoured Markdown (for ``$GITHUB_STEP_SUMMARY`` or a PR comment); every name is escaped."""
    out = [f"### energy comparison: {md_escape(cmp.base_id or '(no baseline)')} → {md_escape(cmp.new_id)}", ""]
    if cmp.rows:
        rows = []
        for r in cmp.rows:
            cells = _cells(r, cmp.alpha)
            if r.failed:
                cells[-1] = "❌ REGRESSION"
            rows.append(cells)
        out += [markdown_table(HEADERS, rows, align="l" + "r" * (len(HEADERS) - 2) + "c"), "",
                md_escape(method_line(cmp) or ""), ""]
    details = [("❌" if not g.passed else "⚠️" if g.blind else "✅", gate_message(g)) for r in cmp.rows
               for g in r.gates]
    if details:
        out += [f"- {mark} {md_escape(m)}" for mark, m in details] + [""]
    out += [f"> **warning:** {md_escape(w)}" for w in cmp.warnings]
    out += [f"> note: {md_escape(n)}" for n in cmp.notes]
    if (summary := summary_line(cmp)) is not None:
        out += ["", f"**{summary}**"]
    return "\n".join(out).rstrip() + "\n"
