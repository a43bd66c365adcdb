"""The comparison table ``energybench run`` prints: one row per benchmark (subject x workload).

Gross energy per item is the headline; energy above idle is a second, labelled column. The ratio column
carries its CI and a verdict in words, so a method that saves nothing reads "no significant saving".
"""

from __future__ import annotations

import math
from typing import Any

from energybench import stats
from energybench.measurement import format_grams, format_joules
from energybench.storage import benchmark_source
from energybench.tables import text_table


def _q(b: dict[str, Any]) -> str:
    q = b.get("quality") or {}
    if "value" not in q:
        return "-"
    short = {"perplexity": "ppl", "cosine": "cos"}.get(q["metric"], q["metric"])
    text = f"{short} {q['value']:.4g}"
    if q.get("change") is not None and b["subject"] != "baseline":
        text += f" ({q['change']:+.1%})"
    if "nn_agreement" in q and b["subject"] != "baseline":
        text += f" nn {q['nn_agreement']:.0%}"
    return text


def _size(b: dict[str, Any]) -> str:
    s = b.get("size") or {}
    if not s:
        return "-"
    mb = s["bytes"] / 1e6
    nz = s["nonzero_params"] / s["params"] if s.get("params") else 1.0
    return f"{mb:.3g} MB {s['params'] / 1e6:.3g}M p" + (f" {nz:.0%} nz" if nz < 0.95 else "")


def _energy(stat: dict[str, Any] | None, unit: str, ci: bool = True) -> str:
    if not stat or not stat.get("n"):
        return "-"
    text = f"{format_joules(stat['median'])}/{unit}"
    if ci and stat["n"] > 1:
        text += f" [{format_joules(stat['ci_low'])}, {format_joules(stat['ci_high'])}]"
    return text


def _ratio(b: dict[str, Any]) -> str:
    if b["subject"] == "baseline":
        return "1 (baseline)"
    vs = (b.get("extra") or {}).get("vs_baseline")
    if not vs or vs.get("ratio") is None or math.isnan(vs["ratio"]):
        return "-"
    return f"{vs['ratio']:.2f} [{vs['ci_low']:.2f}, {vs['ci_high']:.2f}] {vs['verdict']}"


def rows(run: dict[str, Any]) -> list[list[str]]:
    out = []
    for b in sorted(run["benchmarks"], key=lambda x: (x["name"], x["subject"] != "baseline")):
        st = b.get("stats") or {}
        unit = b.get("item_unit", "item")
        thr = st.get("throughput_items_per_s")
        out.append([
            b["name"], b["subject"], b["phase"],
            _energy(st.get("energy_per_item_j"), unit),
            _energy(st.get("energy_above_idle_per_item_j"), unit, ci=False),
            _ratio(b), _q(b), _size(b),
            f"{thr:.3g}/s" if thr else "-", benchmark_source(b),
        ])
    return out


HEADER = ["benchmark", "subject", "phase", "energy/item median [95% CI]", "above idle",
          "ratio to baseline [CI]", "quality (change)", "size", "throughput", "source"]


def format_table(run: dict[str, Any]) -> str:
    lines = text_table(HEADER, rows(run)) + _footer(run)
    return "\n".join(lines)


def _carbon_line(run: dict[str, Any]) -> str:
    """CO2e of every trial's joules, with the region, factor, year, source and PUE it came from."""
    rounds = [r for b in run["benchmarks"] for r in b.get("rounds") or []]
    joules = sum(r["energy_j"] for r in rounds)
    c = run.get("carbon")
    if not c:
        return f"CO2e: n/a for the {format_joules(joules)} of all trials (no region given: pass --region, e.g. FRA)"
    grams = sum(r.get("co2e_g") or 0.0 for r in rounds)
    year = f", {c['year']}" if c.get("year") else ""
    return (f"CO2e: {format_grams(grams)} for the {format_joules(joules)} of all trials ({c['region']} "
            f"{c['intensity_g_per_kwh']:.4g} gCO2e/kWh{year}, {c['source']}, PUE {c.get('pue', 1.0):g})")


def _footer(run: dict[str, Any]) -> list[str]:
    out = [_carbon_line(run)]
    idle = run.get("idle")
    if idle:
        out.append(f"idle power {idle['power_w']:.3g} W over {idle['duration_s']:.2g} s ({idle['source']}); "
                   "'above idle' subtracts it; gross energy is the headline")
    for b in run["benchmarks"]:
        one_off = (b.get("extra") or {}).get("one_off")
        if one_off and one_off.get("energy_j") is not None and b["phase"] == "inference":
            be = b["extra"].get("break_even_items")
            when = f"after {be:,.0f} {b['item_unit']}s" if be else "never (no per-item saving)"
            out.append(f"{b['name']} [{b['subject']}]: distillation cost {format_joules(one_off['energy_j'])} "
                       f"({one_off['source']}); break-even {when}")
    unstable = [f"{b['name']} [{b['subject']}]" for b in run["benchmarks"] if _unstable(b)]
    if unstable:
        out.append(f"warning: {len(unstable)} of {len(run['benchmarks'])} benchmarks spread > "
                   f"{stats.UNSTABLE_SPREAD:.0%} between trials "
                   "(other load on the machine, or rounds too short): trust only ratios whose CI excludes 1; "
                   f"e.g. {', '.join(unstable[:3])}")
    for b in run["benchmarks"]:
        stability = stats.stability_warning(_per_item_rounds(b))  # summarised above, not repeated per benchmark
        for w in b.get("warnings", []):
            if w != stability:
                out.append(f"warning: {b['name']} [{b['subject']}]: {w}")
    out += [f"note: {n}" for n in run.get("notes", [])]
    out += [f"warning: {w}" for w in run.get("warnings", [])]
    return out


def _per_item_rounds(bench: dict[str, Any]) -> list[float]:
    return [stats.per_item(r["energy_j"], r.get("items")) for r in bench.get("rounds") or []]


def _unstable(bench: dict[str, Any]) -> bool:
    """The runner's stability rule, asked of the rounds rather than read back from a warning's wording."""
    return stats.stability_warning(_per_item_rounds(bench)) is not None
