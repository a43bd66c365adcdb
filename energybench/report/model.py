"""What a report says, computed once from run records and then rendered by terminal, Markdown and HTML.

Keeping the figures here (and out of the renderers) means the three outputs can never disagree: the same
energy per item, CI, ratio to baseline, verdict, Pareto front and CO2e reach every format. Input is typed
``Run`` records as ``energybench.record.storage.load_run`` returns them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from energybench.errors import ConfigError, ResultsError
from energybench.measurement import JOULES_PER_KWH
from energybench.record import BASELINE, Benchmark, LayerProfile, Quality, Run
from energybench.verdicts.baseline import BreakEven, VsBaseline, break_even, run_verdicts
from energybench.verdicts.compare import Comparison
from energybench.verdicts.devices import DeviceComparison, device_comparisons
from energybench.verdicts.history import Trend, trends
from energybench.verdicts.layers import LayerTable, layer_table

DEFAULT_BASELINE = BASELINE
# Grids compared with the user's own, chosen to span low-carbon (FRA) to coal-heavy (IND) supply.
DEFAULT_REGIONS = ("FRA", "DEU", "USA", "CHN", "IND")
#: A report over this many runs or more shows each benchmark's trend over them.
MIN_TREND_RUNS = 3


@dataclass(frozen=True)
class Estimate:
    """A central value with its confidence interval (``low``/``high`` are None when not computable)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Entry:
    """One method of one benchmark/phase in one run: the unit every table row and bar is made of."""

    run: str
    benchmark: str
    method: str
    phase: str
    item_unit: str
    per_item: Estimate
    ratio: Estimate | None
    quality: Quality | None
    domains_per_item: dict[str, float]
    source: str
    rounds: int
    energy_j: float
    co2e_g_per_item: float | None
    warnings: tuple[str, ...]
    is_baseline: bool
    vs: VsBaseline | None = None
    break_even: BreakEven | None = None
    on_front: bool = False
    timeline: tuple[tuple[float, dict[str, float]], ...] = ()
    timeline_round: int | None = None
    has_items: bool = True  # False: a pytest test that counts no items, so its figure is per call
    layers: LayerProfile | None = None  # the per-layer attribution pass, when the run made one

    @property
    def key(self) -> str:
        """The benchmark's key as runs match it (``Benchmark.key``): its name, plus the method unless baseline."""
        return self.benchmark if self.is_baseline else f"{self.benchmark} [{self.method}]"

    @property
    def per_what(self) -> str:
        """What one figure is for: the item unit, or ``call`` for a test that counts no items."""
        return self.item_unit if self.has_items else "call"

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.run, self.benchmark, self.phase)


@dataclass(frozen=True)
class RegionCO2:
    """CO2e of the report's joules on one grid, with where the factor comes from."""

    name: str
    label: str
    intensity_g_per_kwh: float
    year: int | None
    source: str
    co2e_g: float
    is_user: bool = False


@dataclass(frozen=True)
class Notice:
    """A warning together with what it is about (a benchmark/method, a run, a region)."""

    where: str
    text: str


@dataclass(frozen=True)
class Report:
    runs: tuple[Run, ...]
    entries: tuple[Entry, ...]
    baseline: str
    regions: tuple[RegionCO2, ...] = ()
    region_joules: float = 0.0
    region_note: str = ""
    comparison: Comparison | None = None  # two runs: the same comparison ``energybench compare`` makes
    trends: tuple[Trend, ...] = ()  # three or more runs: each benchmark over them, with change points
    notices: tuple[Notice, ...] = ()
    sci: tuple[Any, ...] = ()  # carbon.sci.SciReport per run that has CO2e
    quality_budget: float = 0.01  # headlines count a method only within this quality loss (report.headlines)
    layers: tuple[tuple[str, LayerTable], ...] = ()  # (run, per-layer comparison) per benchmark with profiles
    hardware: tuple[tuple[str, DeviceComparison], ...] = ()  # (run, one workload+method on two devices)

    @property
    def kind(self) -> str:
        """``pytest`` when every run came from the pytest plugin (its report is a comparison of sessions),
        else ``suite``."""
        return "pytest" if all(r.kind == "pytest" for r in self.runs) else "suite"

    def groups(self) -> list[tuple[tuple[str, str, str], list[Entry]]]:
        """Entries by (run, benchmark, phase), baseline first, in file order."""
        out: dict[tuple[str, str, str], list[Entry]] = {}
        for e in self.entries:
            out.setdefault(e.group, []).append(e)
        return [(k, sorted(v, key=lambda e: not e.is_baseline)) for k, v in out.items()]

    @property
    def multi_run(self) -> bool:
        return len(self.runs) > 1


# ----------------------------------------------------------------------------------------------- statistics


def _per_item(bench: Benchmark) -> Estimate:
    s = bench.energy_per_item
    if not s.n:
        raise ResultsError(f"benchmark {bench.name!r} has no rounds with an energy figure: nothing to report")
    return Estimate(s.median, _finite(s.ci_low), _finite(s.ci_high))


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _ratio(vs: VsBaseline) -> Estimate:
    """The verdict's ratio (geometric mean of per-trial ratios) with its 95% interval, as the run table shows it."""
    low, high = _finite(vs.ci_low), _finite(vs.ci_high)
    if low is None or high is None:
        low = high = None
    return Estimate(vs.ratio, low, high)


# ---------------------------------------------------------------------------------------------- the build


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool, rel_tol: float = 1e-3) -> list[bool]:
    """Which (energy, quality) points no other point beats on both counts (less energy, better quality).

    Qualities within ``rel_tol`` of each other count as equal: a perplexity of 13.2119 is not "better" than
    13.2118, and the cheaper of the two should win."""
    sign = 1.0 if higher_is_better else -1.0

    def at_least(q2: float, q: float) -> bool:
        return sign * (q2 - q) >= -rel_tol * max(abs(q), abs(q2))

    def better(q2: float, q: float) -> bool:
        return sign * (q2 - q) > rel_tol * max(abs(q), abs(q2))

    flags = []
    for i, (e, q) in enumerate(points):
        dominated = any(
            j != i and e2 <= e and at_least(q2, q) and (e2 < e or better(q2, q))
            for j, (e2, q2) in enumerate(points)
        )
        flags.append(not dominated)
    return flags


def _quality(bench: Benchmark) -> Quality | None:
    q = bench.quality
    return q if q is not None and math.isfinite(q.value) else None


def _domains_per_item(bench: Benchmark, per_item: float) -> dict[str, float]:
    """Energy per item split in the proportions the domains recorded over all rounds, scaled so the parts add
    up to the headline median (a mean here would disagree with the energy chart on a noisy run)."""
    totals: dict[str, float] = {}
    for r in bench.rounds:
        if r.partial:  # a domain missing from a round would skew the split
            continue
        for k, v in r.domains.items():
            if math.isfinite(v):
                totals[k] = totals.get(k, 0.0) + v
    whole = sum(totals.values())
    return {k: per_item * v / whole for k, v in totals.items()} if whole > 0 else {}


def _timeline(bench: Benchmark) -> tuple[tuple[tuple[float, dict[str, float]], ...], int | None]:
    """The timeline of the median-energy round that has one: a typical trial, not the best or worst."""
    rounds = sorted((r for r in bench.rounds if r.timeline and math.isfinite(r.energy_j) and not r.partial),
                    key=lambda r: r.energy_j)
    if not rounds:
        return (), None
    mid = rounds[(len(rounds) - 1) // 2]
    return tuple((t, dict(w)) for t, w in mid.timeline), mid.index


def common_benchmarks(runs: Sequence[Run]) -> set[str]:
    names = [{b.name for b in r.benchmarks} for r in runs]
    return set.intersection(*names) if names else set()


def build_report(
    runs: Sequence[Run],
    *,
    baseline: str = DEFAULT_BASELINE,
    regions: Sequence[str] = DEFAULT_REGIONS,
    lookup: Callable[[str], Any] | None = None,
    comparison: Comparison | None = None,
    quality_budget: float = 0.01,
) -> Report:
    """Turn runs into a ``Report``.

    With several runs only the benchmarks they all share are kept (a report compares like with like); none
    shared, or a ``baseline`` method that appears nowhere, is a ``ConfigError``. ``lookup`` resolves region
    names (``energybench.carbon.lookup_region`` by default). ``quality_budget``: see ``report.headlines``.
    """
    if not runs:
        raise ResultsError("no runs to report on: pass result files, directories or run ids")
    for r in runs:
        if not r.benchmarks:
            raise ResultsError(f"run {r.label} has no benchmarks: nothing to report")
    keep = common_benchmarks(runs)
    if not keep:
        raise ResultsError(f"runs {', '.join(r.label for r in runs)} share no benchmark: report runs of the same suite")
    methods = {b.method for r in runs for b in r.benchmarks}
    if baseline != DEFAULT_BASELINE and baseline not in methods:
        raise ConfigError(f"baseline {baseline!r} is in none of the runs; pick one of: {', '.join(sorted(methods))}")

    entries: list[Entry] = []
    notices: list[Notice] = []
    layers: list[tuple[str, LayerTable]] = []
    for run in runs:
        found, found_layers = _run_entries(run, baseline, keep, len(runs) > 1, notices)
        entries += found
        layers += found_layers
    if comparison is not None:
        where = f"{comparison.base_id} -> {comparison.new_id}"
        notices += [Notice(where, w) for w in comparison.warnings] + [Notice(where, n) for n in comparison.notes]
    for run in runs:
        for sampler in run.machine.samplers:
            if "estimated" in str(sampler.get("source") or ""):
                notices.append(Notice(f"sampler {sampler.get('name', '?')}",
                                      f"estimated, not measured: {sampler.get('method') or 'a power model'}"))
    first = runs[0]
    joules = sum(e.energy_j for e in entries if e.run == first.label)
    region_rows, region_notices = _regions(first, joules, regions, lookup)
    notices += region_notices
    pue = first.carbon.pue if first.carbon else 1.0
    note = (f"all {sum(e.rounds for e in entries if e.run == first.label)} measured rounds of run "
            f"{first.label}" + (f", PUE {pue:g}" if pue != 1.0 else ""))
    from energybench.carbon.sci import run_sci

    return Report(
        runs=tuple(runs), entries=tuple(entries), baseline=baseline, regions=tuple(region_rows),
        region_joules=joules, region_note=note, comparison=comparison,
        trends=tuple(trends(runs)) if len(runs) >= MIN_TREND_RUNS else (), notices=_collapse(notices),
        sci=tuple(s for r in runs if (s := run_sci(r)) is not None), quality_budget=quality_budget,
        layers=tuple(layers),
        hardware=tuple((run.label, c) for run in runs for c in device_comparisons(run) if c.name in keep),
    )


def _run_entries(run: Run, baseline: str, keep: set[str], multi: bool,
                 notices: list[Notice]) -> tuple[list[Entry], list[tuple[str, LayerTable]]]:
    """One run's entries (benchmarks every run shares, with rounds) grouped by workload and device, and
    its per-layer tables; what is left out goes to ``notices`` with why."""
    if (partial := stopped_note(run)) is not None:
        notices.append(Notice(f"run {run.label}", partial))
    notices += [Notice(f"run {run.label}", w) for w in run.warnings]
    notices += [Notice(f"run {run.label}", n) for n in run.notes if not _restates_a_status(n, run)]
    verdicts = run_verdicts(run, baseline)
    by_group: dict[tuple[str, str], list[Benchmark]] = {}
    for b in run.by_key().values():  # a key written twice is one benchmark (the later), counted once
        if b.name not in keep:
            continue
        if not b.values("energy_per_item_j"):
            # the method is named where the notice is: without it, one reason on many cells is one warning
            reason = (b.status_reason or "").removeprefix(f"{b.method}: ")
            why = f"{b.status}: {reason}" if not b.ok else "no measured rounds (not run, or stopped before it)"
            notices.append(Notice(f"{b.name} / {b.method}", f"{why}: left out"))
            continue
        if not b.ok:
            notices.append(Notice(f"{b.name} / {b.method}", f"{b.status}: {b.status_reason} "
                                  f"({len(b.rounds)} finished trial(s) kept)"))
        by_group.setdefault((_shown_name(b), b.phase), []).append(b)  # one group per device
    entries: list[Entry] = []
    layers: list[tuple[str, LayerTable]] = []
    for (name, phase), members in by_group.items():
        base = next((b for b in members if b.method == baseline), None)
        built = [_entry(run, b, base, verdicts, multi, notices) for b in members]
        entries += _mark_front(built)
        if base is None:
            notices.append(Notice(f"{name} ({phase})", f"no {baseline!r} method: ratios not shown"))
        table = layer_table(name, phase, built[0].item_unit,
                            [(e.method, e.is_baseline, e.per_item.value, e.layers) for e in built])
        if table is not None:
            layers.append((run.label, table))
    return entries, layers


def _restates_a_status(note: str, run: Run) -> bool:
    """A run note that says what a cell's status says (``lm/train-step [int8-dynamic]: not applicable: ...``):
    the cell's own notice below carries it, and the same warning twice buries the others."""
    return any(not b.ok and b.status_reason and note.startswith(f"{b.name} [{b.method}]") and b.status_reason in note
               for b in run.benchmarks)


def stopped_note(run: Run) -> str | None:
    """``partial run: interrupted (Ctrl-C) after 2 of 12 trials ...`` for a run cut short, else ``None``."""
    settings = run.environment.settings
    if settings is None or settings.stopped is None:
        return None
    planned = f" of {settings.trials}" if settings.trials else ""
    return (f"partial run: {settings.stopped} after {settings.trials_finished or 0}{planned} trial(s); its figures "
            "and verdicts are of the finished trials only")


def _shown_name(b: Benchmark) -> str:
    """The benchmark's name, with ``@device`` when it ran somewhere other than the CPU."""
    return b.name if b.device in (None, "cpu") else f"{b.name}@{b.device}"


def _entry(run: Run, b: Benchmark, base: Benchmark | None, verdicts: Mapping[str, VsBaseline], multi: bool,
           notices: list[Notice]) -> Entry:
    est = _per_item(b)
    ratio, vs = None, None
    if b is base:
        ratio = Estimate(1.0, 1.0, 1.0)
    elif base is not None and (vs := verdicts.get(b.key)) is not None:
        ratio = _ratio(vs)
    co2 = [r.co2e_g for r in b.rounds]
    items = sum(r.items for r in b.rounds)
    co2_item = sum(co2) / items if co2 and None not in co2 and items else None  # type: ignore[arg-type]
    timeline, tl_round = _timeline(b)
    warnings = tuple(dict.fromkeys([*b.warnings, *(w for r in b.rounds for w in r.warnings)]))
    if (unstable := b.stability_warning) is not None and unstable not in warnings:
        warnings = (unstable, *warnings)
    if (partial := b.partial_warning) is not None and partial not in warnings:
        warnings = (partial, *warnings)
    where = f"{b.name} / {b.method}" + (f" ({run.label})" if multi else "")
    notices += [Notice(where, w) for w in warnings]
    return Entry(
        run=run.label, benchmark=_shown_name(b), method=b.method, phase=b.phase, item_unit=b.item_unit or "item",
        per_item=est, ratio=ratio, quality=_quality(b), domains_per_item=_domains_per_item(b, est.value),
        source=b.source, rounds=len(b.rounds) - len(b.partial_rounds),
        energy_j=sum(r.energy_j for r in b.rounds if math.isfinite(r.energy_j)),
        co2e_g_per_item=co2_item, warnings=warnings, is_baseline=b is base, vs=vs,
        break_even=break_even(run, b, verdicts) if vs is not None else None,
        timeline=timeline, timeline_round=tl_round, has_items=b.has_items, layers=b.layers,
    )


def _collapse(notices: list[Notice]) -> tuple[Notice, ...]:
    """One notice per message: the same text on 37 benchmarks would bury the warnings that matter."""
    places: dict[str, list[str]] = {}
    for n in notices:
        places.setdefault(n.text, [])
        if n.where not in places[n.text]:
            places[n.text].append(n.where)
    out = []
    for text, where in places.items():
        if len(where) == 1:
            label = where[0]
        elif len(where) <= 3:
            label = "; ".join(where)
        else:
            label = f"{len(where)} benchmarks ({'; '.join(where[:2])}; ...)"
        out.append(Notice(label, text))
    return tuple(out)


def _mark_front(entries: list[Entry]) -> list[Entry]:
    rated = [e for e in entries if e.quality is not None]
    if len(rated) < 2:
        return entries
    hib = rated[0].quality.higher_is_better  # type: ignore[union-attr]
    flags = pareto_front([(e.per_item.value, e.quality.value) for e in rated], hib)  # type: ignore[union-attr]
    front = {id(e) for e, f in zip(rated, flags, strict=True) if f}
    return [replace(e, on_front=id(e) in front) for e in entries]


def _regions(
    run: Run, joules: float, names: Sequence[str], lookup: Callable[[str], Any] | None
) -> tuple[list[RegionCO2], list[Notice]]:
    """The user's grid first (the factor the run's rounds were priced at), then the comparison grids."""
    pue = run.carbon.pue if run.carbon else 1.0
    kwh = joules / JOULES_PER_KWH * pue
    rows: list[RegionCO2] = []
    notices: list[Notice] = []
    user = None
    if run.carbon is not None:
        c = run.carbon
        user = c.region
        factor = run.effective_intensity_g_per_kwh or c.intensity_g_per_kwh
        rows.append(RegionCO2(name=user, label=str(c.extra.get("label") or user), intensity_g_per_kwh=factor,
                              year=c.year, source=c.source, co2e_g=kwh * factor, is_user=True))
    else:
        notices.append(Notice(f"run {run.label}", "no carbon intensity recorded: your region is not shown"))
    if lookup is None:
        from energybench.carbon import lookup_region

        lookup = lookup_region
    for name in names:
        if user is not None and name.upper() == user.upper():
            continue
        f = lookup(name)
        rows.append(RegionCO2(
            name=str(f.name), label=str(f.label), intensity_g_per_kwh=float(f.intensity_g_per_kwh),
            year=f.year, source=str(f.source), co2e_g=kwh * float(f.intensity_g_per_kwh),
        ))
    return rows, notices
