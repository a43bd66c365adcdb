"""The comparison table ``energybench run`` prints: one row per benchmark (method x workload).

Gross energy per item is the headline; energy above idle is a second, labelled column. The ratio column
carries its CI and a verdict in words, so a method that saves nothing reads "no significant saving".
"""

from __future__ import annotations

from collections.abc import Mapping

from energybench import stats
from energybench.record import Benchmark, Run
from energybench.render import cells, units
from energybench.render.carbon import NO_REGION, basis
from energybench.render.printable import printable_output
from energybench.render.tables import text_table
from energybench.verdicts import VsBaseline, break_even, run_verdicts

HEADER = ["benchmark", "method", "phase", "energy/item median [95% CI]", "above idle",
          "ratio to baseline [CI]", "quality (change)", "size", "throughput", "source"]
_SHORT_METRIC = {"perplexity": "ppl", "cosine": "cos"}


def _quality(b: Benchmark) -> str:
    q = b.quality
    if q is None:
        return "-"
    text = f"{_SHORT_METRIC.get(q.metric, q.metric)} {q.value:.4g}"
    if q.change is not None and not b.is_baseline:
        text += f" ({units.change(q.change)})"
    if "nn_agreement" in q.extra and not b.is_baseline:
        text += f" nn {units.percent(q.extra['nn_agreement'])}"
    return text


def _size(b: Benchmark) -> str:
    s = b.size
    if s is None:
        return "-"
    text = f"{units.si(s.bytes, 'B')} {units.count(s.params)} params"
    return text + (f" {units.percent(s.nonzero_fraction)} nz" if s.nonzero_fraction < 0.95 else "")


def _energy(s: stats.Summary, unit: str | None, ci: bool = True) -> str:
    if not s.n:
        return "-"
    return cells.energy_per_item(s.median, s.ci_low if ci and s.n > 1 else None, s.ci_high, unit)


def _ratio(b: Benchmark, verdicts: Mapping[str, VsBaseline]) -> str:
    if b.is_baseline:
        return "1 (baseline)"
    vs = verdicts.get(b.key)
    if vs is None:
        return "-"
    text = f"{cells.ratio_with_ci(vs.ratio, vs.ci_low, vs.ci_high)} {cells.verdict(vs)}"
    return text + (f" ({evidence})" if (evidence := cells.evidence(vs)) and vs.significant else "")


def rows(run: Run, verdicts: Mapping[str, VsBaseline] | None = None) -> list[list[str]]:
    verdicts = run_verdicts(run) if verdicts is None else verdicts
    out = []
    for b in sorted(run.benchmarks, key=lambda x: (x.name, not x.is_baseline)):
        throughput = b.summary("throughput_items_per_s")
        out.append([
            b.name, b.method, b.phase, _energy(b.energy_per_item, b.item_unit),
            _energy(b.summary("energy_above_idle_per_item_j"), b.item_unit, ci=False),
            _ratio(b, verdicts), _quality(b), _size(b),
            units.rate(throughput.median, b.item_unit or "") if throughput.n else "-", b.source,
        ])
    return out


@printable_output
def format_table(run: Run) -> str:
    verdicts = run_verdicts(run)
    return "\n".join(text_table(HEADER, rows(run, verdicts)) + footer(run, verdicts))


def carbon_line(run: Run) -> str:
    """CO2e of every trial's joules, with the region, factor, year, source and PUE it came from."""
    joules = run.energy_j
    partial = sum(1 for _, r in run.rounds() if r.partial)
    some = f" ({partial} partial trial(s) in them: a lower bound)" if partial else ""
    if run.carbon is None:
        return f"CO2e: n/a for the {units.joules(joules)} of all trials{some} ({NO_REGION})"
    return (f"CO2e: {units.grams(run.co2e_g or 0.0)} for the {units.joules(joules)} of all trials{some} "
            f"({basis(run.carbon, run.effective_intensity_g_per_kwh)})")


def gpu_line(run: Run) -> str | None:
    """Which GPUs the run measured and which it saw but left out (``None`` on a machine without GPUs)."""
    devices = run.environment.get("devices") or {}
    measured, left_out = devices.get("gpus_measured") or [], devices.get("gpus_not_measured") or []
    if not measured and not left_out:
        return None
    named = ", ".join(f"{g.get('key')} ({g.get('name')})" if g.get("name") else str(g.get("key")) for g in measured)
    text = f"GPUs measured: {named or 'none'} (chosen by {devices.get('chosen_by', 'the run')})"
    if left_out:
        text += f"; seen but not measured: {', '.join(left_out)} (not used by this run)"
    return text


def _warnings_by_text(run: Run) -> dict[str, list[str]]:
    """Each distinct benchmark or trial warning once, with the benchmarks it came from (the CO2e line
    already says why there are no grams)."""
    found: dict[str, list[str]] = {}
    for b in run.benchmarks:
        for w in dict.fromkeys([*b.warnings, *(w for r in b.rounds for w in r.warnings)]):
            if w.startswith("no CO2e:"):
                continue
            found.setdefault(w, []).append(f"{b.name} [{b.method}]")
    return found


def _places(where: list[str]) -> str:
    return ", ".join(where) if len(where) <= 3 else f"{', '.join(where[:2])} and {len(where) - 2} more"


def footer(run: Run, verdicts: Mapping[str, VsBaseline] | None = None) -> list[str]:
    verdicts = run_verdicts(run) if verdicts is None else verdicts
    out = [line for line in (cells.method_line(verdicts),) if line]
    out.append(carbon_line(run))
    if (gpus := gpu_line(run)) is not None:
        out.append(gpus)
    if run.idle:
        out.append(f"idle power {units.watts(run.idle.power_w)} over {units.seconds(run.idle.duration_s)} "
                   f"({run.idle.source}); 'above idle' subtracts it; gross energy is the headline")
    for b in run.benchmarks:
        if b.one_off is None or b.one_off.energy_j is None or b.phase != "inference":
            continue
        be = break_even(run, b, verdicts)
        when = f"break-even {cells.break_even(be, b.item_unit)}" if be else "no break-even: no significant saving"
        out.append(f"{b.name} [{b.method}]: {b.one_off.what} cost {cells.one_off(b.one_off)}; {when}")
    unstable = [f"{b.name} [{b.method}]" for b in run.benchmarks if b.stability_warning is not None]
    if unstable:
        out.append(f"warning: {len(unstable)} of {len(run.benchmarks)} benchmarks spread > "
                   f"{units.percent(stats.UNSTABLE_SPREAD)} between trials "
                   "(other load on the machine, or rounds too short): trust only ratios whose CI excludes 1; "
                   f"e.g. {', '.join(unstable[:3])}")
    for b in run.benchmarks:
        if b.partial_warning:
            out.append(f"warning: {b.name} [{b.method}]: {b.partial_warning}")
    out += [f"warning: {text} ({_places(where)})" for text, where in _warnings_by_text(run).items()]
    out += [f"note: {n}" for n in run.notes]
    out += [f"warning: {w}" for w in run.warnings]
    return out
