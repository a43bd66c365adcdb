"""The comparison table ``energybench run`` prints: one row per benchmark (method x workload).

Gross energy per item is the headline; energy above idle is a second, labelled column. The ratio column
carries its CI and a verdict in words, so a method that saves nothing reads "no significant saving".

By default the table fits the terminal (100 columns when output is not a terminal): one block per workload
with its phase, item and provenance in the block's title, intervals folded under their figures when a line
would be too long, and the least needed columns (size, throughput, energy above idle) left out last, with a
footer that says so. ``wide=True`` (``--wide``) prints every column on one line per benchmark.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

from energybench import stats, units
from energybench.record import Benchmark, Run
from energybench.render import cells
from energybench.render.carbon import NO_REGION, basis
from energybench.render.printable import printable_output
from energybench.render.tables import Column, Row, fit_table, terminal_width
from energybench.report.run_view import RunView
from energybench.verdicts.baseline import VsBaseline

_SHORT_METRIC = {"perplexity": "ppl", "cosine": "cos"}

WIDE_COLUMNS = (
    Column(("benchmark",)), Column(("method",)), Column(("phase",)),
    Column(("energy/item", "median [95% CI]"), right=True), Column(("above idle",), right=True),
    Column(("ratio to baseline", "[95% CI]")), Column(("verdict",)), Column(("quality (change)",)),
    Column(("size",)), Column(("throughput",), right=True), Column(("source",)),
)
NARROW_COLUMNS = (
    Column(("method",), shrink=True),
    Column(("energy per item", "[95% CI]"), right=True),
    Column(("vs baseline", "[95% CI]"), right=True),
    Column(("verdict",)),
    Column(("quality", "(change)")),
    Column(("above idle",), right=True, drop=1),
    Column(("throughput",), right=True, drop=2),
    Column(("size",), drop=3),
)
#: Kept for callers that list the wide table's headers.
HEADER = [" ".join(c.header) for c in WIDE_COLUMNS]


def _quality(b: Benchmark) -> tuple[str, ...]:
    q = b.quality
    if q is None:
        return ("-",)
    parts = [f"{_SHORT_METRIC.get(q.metric, q.metric)} {q.value:.4g}"]
    if q.change is not None and not b.is_baseline:
        parts.append(f"({units.change(q.change)})")
    if "nn_agreement" in q.extra and not b.is_baseline:
        parts.append(f"nn {units.percent(q.extra['nn_agreement'])}")
    return tuple(parts)


def _size(b: Benchmark) -> tuple[str, ...]:
    s, tables = b.size, cells.tables_size(b.quality)
    if s is None:
        return (tables,) if tables else ("-",)
    parts = [units.si(s.bytes, "B"), f"{units.count(s.params)} params"]
    if s.nonzero_fraction < 0.95:
        parts.append(f"{units.percent(s.nonzero_fraction)} nz")
    return (*parts, tables) if tables else tuple(parts)


def _energy(s: stats.Summary, unit: str | None = None, ci: bool = True) -> tuple[str, ...]:
    """``("27.3 nJ", "[26.9, 27.8]")``: the unit once when both ends share the figure's prefix."""
    if not s.n:
        return ("-",)
    figure = units.per(units.joules(s.median), unit)
    interval = units.compact_interval(s.ci_low, s.ci_high, s.median, units.joules) if ci and s.n > 1 else ""
    return (figure, interval) if interval else (figure,)


def _ratio(b: Benchmark, vs: VsBaseline | None) -> tuple[str, ...]:
    if b.is_baseline:
        return ("1 (baseline)",)
    if vs is None:
        return ("-",)
    text = cells.ratio_with_ci(vs.ratio, vs.ci_low, vs.ci_high)
    figure, _, interval = text.partition(" ")
    return (figure, interval) if interval else (figure,)


#: Characters per line of a verdict cell's reason in the narrow table (as wide as "adj. p=0.00034, n=12").
VERDICT_WIDTH = 24


def _verdict(b: Benchmark, vs: VsBaseline | None, wide: bool = False) -> tuple[str, ...]:
    if not b.ok:
        return (f"{b.status.replace('-', ' ')} (below)",)
    if b.is_baseline or vs is None:
        return ("",)
    evidence = cells.evidence(vs) if wide else cells.short_evidence(vs)
    mark = (repeats,) if (repeats := cells.repeats(vs)) else ()
    if evidence and vs.significant:
        return (cells.verdict(vs, marked=False), *mark, evidence)
    if (decided := cells.decided(vs)) and vs.outcome == "same":
        return (cells.verdict(vs, marked=False), *mark, decided)
    if mark:
        return (cells.verdict(vs, marked=False), *mark)
    head, sep, rest = cells.verdict(vs).partition(": ")  # "cannot be tested:" above "1 trial pair(s), 3 needed"
    if not sep:
        return (head,)
    # the narrow table keeps the cell as narrow as a claim's evidence: why a row cannot be tested runs to ~70
    # characters once trials were left out, and on one line it pushed the table past 100 columns
    return (head + sep.rstrip(), *(textwrap.wrap(rest, VERDICT_WIDTH) if not wide else (rest,)))


def _throughput(b: Benchmark) -> tuple[str, ...]:
    t = b.summary("throughput_items_per_s")
    return (units.rate(t.median, b.item_unit or ""),) if t.n else ("-",)


def _ordered(run: Run) -> list[Benchmark]:
    return sorted(run.benchmarks, key=lambda x: (x.name, x.device or "cpu", not x.is_baseline))


def _shown_name(b: Benchmark) -> str:
    """The workload's name, with ``@device`` when it ran somewhere other than the CPU."""
    return b.name if b.device in (None, "cpu") else f"{b.name}@{b.device}"


def rows(view: RunView) -> list[list[str]]:
    """The wide table's rows as plain text (one line per benchmark, every column)."""
    return [[" ".join(cell) for cell in _wide_row(b, view.verdicts.get(b.key))] for b in _ordered(view.run)]


def _wide_row(b: Benchmark, vs: VsBaseline | None) -> list[tuple[str, ...]]:
    return [(_shown_name(b),), (b.method,), (b.phase,), _energy(b.energy_per_item, b.item_unit),
            _energy(b.summary("energy_above_idle_per_item_j"), b.item_unit, ci=False), _ratio(b, vs),
            _verdict(b, vs, wide=True), _quality(b), _size(b), _throughput(b), (b.source,)]


def _narrow_rows(run: Run, verdicts: Mapping[str, VsBaseline]) -> list[Row]:
    """One block per workload: a title line (phase, item, provenance), then a row per method."""
    out: list[Row] = []
    groups: dict[str, list[Benchmark]] = {}
    for b in _ordered(run):
        groups.setdefault(_shown_name(b), []).append(b)
    for name, benches in groups.items():
        measured = [b for b in benches if b.rounds]
        sources = sorted({b.source for b in measured}) or ["not measured"]
        first = benches[0]
        out.append(f"{name} ({first.phase}, per {first.item_unit or 'item'}; {' and '.join(sources)})")
        for b in benches:
            vs = verdicts.get(b.key)
            method = b.method + (f" ({b.source})" if len(sources) > 1 and b.rounds else "")
            tables = cells.tables_size(b.quality)  # kept when the size column is left out to fit
            out.append([(method, tables) if tables else (method,), _energy(b.energy_per_item), _ratio(b, vs),
                        _verdict(b, vs), _quality(b),
                        _energy(b.summary("energy_above_idle_per_item_j"), ci=False), _throughput(b), _size(b)])
    return out


@printable_output
def format_table(view: RunView, *, width: int | None = None, wide: bool = False) -> str:
    """The run's table and its footer, no wider than ``width`` (default: the terminal's, 100 when not a
    terminal) unless ``wide``: then every column, one line per benchmark."""
    run, verdicts = view.run, view.verdicts
    width = terminal_width() if width is None else width
    if wide:
        lines = fit_table(WIDE_COLUMNS, [_wide_row(b, verdicts.get(b.key)) for b in _ordered(run)],
                          wide=True).lines
        return "\n".join(lines + footer(view))
    fitted = fit_table(NARROW_COLUMNS, _narrow_rows(run, verdicts), width, indent="  ")
    notes = [f"columns left out to fit {width} characters: {', '.join(fitted.dropped)} (--wide shows every "
             "column)"] if fitted.dropped else []
    lines = list(fitted.lines) + [part for line in notes + footer(view) for part in _wrap(line, width)]
    return "\n".join(lines)


def _wrap(line: str, width: int) -> list[str]:
    return textwrap.wrap(line, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False) or [""]


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
    devices = run.environment.devices
    if devices is None or not (devices.gpus_measured or devices.gpus_not_measured):
        return None
    measured, left_out = devices.gpus_measured, devices.gpus_not_measured
    named = ", ".join(f"{g.get('key')} ({g.get('name')})" if g.get("name") else str(g.get("key")) for g in measured)
    text = f"GPUs measured: {named or 'none'} (chosen by {devices.chosen_by or 'the run'})"
    if left_out:
        text += f"; seen but not measured: {', '.join(left_out)} (not used by this run)"
    return text


def slurm_lines(run: Run) -> list[str]:
    """Inside a Slurm job: the job, step and CPUs, and sacct's figure over the trials beside energybench's own
    joules of them (a second opinion from Slurm's energy plugin, or why there is none)."""
    job = run.environment.slurm
    if job is None:
        return []
    from energybench.samplers.cpu_time import cpu_list

    where = job.job_step + (f" on {job.node}" if job.node else "")
    cpus = f"CPUs {cpu_list(job.cpus)} ({job.cpus_source})" if job.cpus else job.cpus_source or "CPUs unknown"
    figure = units.joules(job.sacct_j) if job.sacct_j is not None else "n/a"
    return [f"slurm job {where}; {cpus}",
            f"sacct: {figure} over the trials beside energybench's {units.joules(run.energy_j)} of them "
            f"({job.sacct_reason or 'no reason recorded'})"]


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


def status_lines(benches: Sequence[Benchmark]) -> list[str]:
    """What happened to every cell that was not measured as planned: failed (the error's first line, and how
    many trials it finished) or not applicable (why)."""
    out = []
    for b in benches:
        if b.ok:
            continue
        kept = f"; {len(b.rounds)} finished trial(s) kept" if b.rounds else ""
        out.append(f"{b.status}: {b.key}: {b.status_reason or 'no reason recorded'}{kept}")
    return out


def footer(view: RunView) -> list[str]:
    run = view.run
    out = [line for line in (cells.method_line(view.verdicts),) if line]
    out.append(carbon_line(run))
    if view.load is not None:
        out.append(f"load: measured on {view.load}; trial pairs whose two sides saw different load are set aside, "
                   "a steady load keeps them")
    if (gpus := gpu_line(run)) is not None:
        out.append(gpus)
    out += slurm_lines(run)
    if run.idle:
        out.append(f"idle power {units.watts(run.idle.power_w)} over {units.seconds(run.idle.duration_s)} "
                   f"({run.idle.source}); 'above idle' subtracts it; gross energy is the headline")
    for b in run.benchmarks:
        if b.key not in view.break_evens or b.one_off is None:
            continue
        be = view.break_evens[b.key]
        when = f"break-even {cells.break_even(be, b.item_unit)}" if be else "no break-even: no significant saving"
        out.append(f"{b.name} [{b.method}]: {b.one_off.what} cost {cells.one_off(b.one_off)}; {when}")
    out += hardware_lines(view)
    unstable = [f"{b.name} [{b.method}]" for b in run.benchmarks if b.stability_warning is not None]
    if unstable:
        out.append(f"warning: {len(unstable)} of {len(run.benchmarks)} benchmarks spread > "
                   f"{units.percent(stats.UNSTABLE_SPREAD)} between trials "
                   "(other load on the machine, or rounds too short): trust only ratios whose CI excludes 1; "
                   f"e.g. {', '.join(unstable[:3])}")
    out += status_lines(run.benchmarks)
    for b in run.benchmarks:
        if b.partial_warning:
            out.append(f"warning: {b.name} [{b.method}]: {b.partial_warning}")
    out += [f"warning: {text} ({_places(where)})" for text, where in _warnings_by_text(run).items()]
    said = tuple(f"not applicable: {b.status_reason}" for b in run.benchmarks if b.status == "not-applicable")
    out += [f"note: {n}" for n in run.notes if not n.endswith(said)]  # the status lines above say it already
    out += [f"warning: {w}" for w in run.warnings]
    return out


def hardware_lines(view: RunView) -> list[str]:
    """The same workload and method on two devices: which one does the job with less energy per item."""
    out = []
    for c in view.hardware:
        unit = c.bench.item_unit or "item"
        out.append(f"hardware: {c.name} [{c.method}]: {c.device} "
                   f"{cells.energy_per_item(c.bench.energy_per_item.median, None, None, unit)} vs {c.reference} "
                   f"{cells.energy_per_item(c.reference_bench.energy_per_item.median, None, None, unit)}, "
                   f"{cells.ratio_with_ci(c.vs.ratio, c.vs.ci_low, c.vs.ci_high)} {cells.verdict(c.vs)}")
    return out
