"""The comparison table ``energybench run`` prints: one row per benchmark (method x workload).

Gross energy per item is the headline; energy above idle is a second, labelled column. The ratio column
carries its CI and a verdict in words, so a method that saves nothing reads "no significant saving".
"""

from __future__ import annotations

from energybench import stats
from energybench.devices import device_comparisons
from energybench.record import Benchmark, Run
from energybench.render import cells, units
from energybench.render.carbon import NO_REGION, basis
from energybench.render.tables import text_table
from energybench.verdicts import break_even_items, vs_baseline

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


def _ratio(run: Run, b: Benchmark) -> str:
    if b.is_baseline:
        return "1 (baseline)"
    vs = vs_baseline(run, b)
    if vs is None:
        return "-"
    return f"{cells.ratio_with_ci(vs.ratio, vs.ci_low, vs.ci_high)} {cells.verdict(vs)}"


def rows(run: Run) -> list[list[str]]:
    out = []
    for b in sorted(run.benchmarks, key=lambda x: (x.name, x.device or "cpu", not x.is_baseline)):
        throughput = b.summary("throughput_items_per_s")
        name = b.name if b.device in (None, "cpu") else f"{b.name}@{b.device}"
        out.append([
            name, b.method, b.phase, _energy(b.energy_per_item, b.item_unit),
            _energy(b.summary("energy_above_idle_per_item_j"), b.item_unit, ci=False),
            _ratio(run, b), _quality(b), _size(b),
            units.rate(throughput.median, b.item_unit or "") if throughput.n else "-", b.source,
        ])
    return out


def format_table(run: Run) -> str:
    return "\n".join(text_table(HEADER, rows(run)) + footer(run))


def carbon_line(run: Run) -> str:
    """CO2e of every trial's joules, with the region, factor, year, source and PUE it came from."""
    joules = run.energy_j
    if run.carbon is None:
        return f"CO2e: n/a for the {units.joules(joules)} of all trials ({NO_REGION})"
    return (f"CO2e: {units.grams(run.co2e_g or 0.0)} for the {units.joules(joules)} of all trials "
            f"({basis(run.carbon, run.effective_intensity_g_per_kwh)})")


def footer(run: Run) -> list[str]:
    out = [carbon_line(run)]
    if run.idle:
        out.append(f"idle power {units.watts(run.idle.power_w)} over {units.seconds(run.idle.duration_s)} "
                   f"({run.idle.source}); 'above idle' subtracts it; gross energy is the headline")
    for b in run.benchmarks:
        items = break_even_items(run, b)
        if items is not None and b.one_off is not None:
            out.append(f"{b.name} [{b.method}]: {b.one_off.what} cost {units.joules(b.one_off.energy_j)} "
                       f"({b.one_off.source}); break-even {cells.break_even(items, b.item_unit)}")
    out += hardware_lines(run)
    unstable = [f"{b.name} [{b.method}]" for b in run.benchmarks if b.stability_warning is not None]
    if unstable:
        out.append(f"warning: {len(unstable)} of {len(run.benchmarks)} benchmarks spread > "
                   f"{units.percent(stats.UNSTABLE_SPREAD)} between trials "
                   "(other load on the machine, or rounds too short): trust only ratios whose CI excludes 1; "
                   f"e.g. {', '.join(unstable[:3])}")
    for b in run.benchmarks:
        for w in b.warnings:
            out.append(f"warning: {b.name} [{b.method}]: {w}")
    out += [f"note: {n}" for n in run.notes]
    out += [f"warning: {w}" for w in run.warnings]
    return out


def hardware_lines(run: Run) -> list[str]:
    """The same workload and method on two devices: which one does the job with less energy per item."""
    out = []
    for c in device_comparisons(run):
        unit = c.bench.item_unit or "item"
        out.append(f"hardware: {c.name} [{c.method}]: {c.device} "
                   f"{cells.energy_per_item(c.bench.energy_per_item.median, None, None, unit)} vs {c.reference} "
                   f"{cells.energy_per_item(c.reference_bench.energy_per_item.median, None, None, unit)}, "
                   f"{cells.ratio_with_ci(c.vs.ratio, c.vs.ci_low, c.vs.ci_high)} {cells.verdict(c.vs)}")
    return out
