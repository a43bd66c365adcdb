"""What a report says, computed once from run records and then rendered by terminal, Markdown and HTML.

Keeping the figures here (and out of the renderers) means the three outputs can never disagree: the same
energy per item, CI, ratio to baseline, Pareto front and CO2e reach every format. Input is run dicts in the
``energybench/run`` schema (docs/results-schema.md), as the storage module loads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from energybench import stats
from energybench.errors import ConfigError, ResultsError
from energybench.measurement import JOULES_PER_KWH
from energybench.storage import benchmark_source

DEFAULT_BASELINE = "baseline"
# Grids compared with the user's own, chosen to span low-carbon (FRA) to coal-heavy (IND) supply.
DEFAULT_REGIONS = ("FRA", "DEU", "USA", "CHN", "IND")


@dataclass(frozen=True)
class Estimate:
    """A central value with its confidence interval (``low``/``high`` are None when not computable)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Quality:
    metric: str
    value: float
    higher_is_better: bool


@dataclass(frozen=True)
class Entry:
    """One subject of one benchmark/phase in one run: the unit every table row and bar is made of."""

    run: str
    benchmark: str
    subject: str
    method: str | None
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
    verdict: str = ""  # the runner's words: "saves 38%", "no significant saving", "costs 12% more"
    on_front: bool = False
    timeline: tuple[tuple[float, dict[str, float]], ...] = ()
    timeline_round: int | None = None

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.run, self.benchmark, self.phase)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    name: str
    created: str
    machine: dict[str, Any]
    commit: dict[str, Any]
    carbon: dict[str, Any] | None
    idle: dict[str, Any] | None
    settings: dict[str, Any]

    @property
    def samplers(self) -> list[dict[str, Any]]:
        return list(self.machine.get("samplers") or [])


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
class GateRow:
    """One benchmark of a two-run comparison, flattened for rendering (see ``report.gates``)."""

    benchmark: str
    verdict: str  # "pass", "REGRESSION", "higher", "lower", "no significant change"
    change: str  # "+3.1% [+1.0%, +5.2%]"
    detail: str  # the gate messages, or the test's p and n


@dataclass(frozen=True)
class Notice:
    """A warning together with what it is about (a benchmark/subject, a run, a region)."""

    where: str
    text: str


@dataclass(frozen=True)
class Report:
    runs: tuple[RunSummary, ...]
    entries: tuple[Entry, ...]
    baseline: str
    regions: tuple[RegionCO2, ...] = ()
    region_joules: float = 0.0
    region_note: str = ""
    gates: tuple[GateRow, ...] = ()
    notices: tuple[Notice, ...] = ()

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


def _per_round(bench: Mapping[str, Any]) -> list[float]:
    return [stats.per_item(float(r["energy_j"]), r.get("items")) for r in bench.get("rounds") or []]


def _per_item(bench: Mapping[str, Any]) -> Estimate:
    """The stored summary when the run has one (it is what the gate saw); else summarise the rounds."""
    stored = (bench.get("stats") or {}).get("energy_per_item_j") or {}
    if "median" in stored:
        return Estimate(float(stored["median"]), _opt(stored.get("ci_low")), _opt(stored.get("ci_high")))

    values = _per_round(bench)
    summary = stats.summarize(values)
    if not summary.get("n"):
        raise ResultsError(f"benchmark {bench.get('name', '?')!r} has no rounds: nothing to report")
    return Estimate(summary["median"], summary["ci_low"], summary["ci_high"])


def _ratio(subject: Mapping[str, Any], baseline: Mapping[str, Any], default_baseline: bool) -> tuple[Estimate, str]:
    """Ratio of medians with its bootstrap CI and the runner's verdict (``saves 38%``, ``no significant
    saving``): the figure the runner saved when it is against the default baseline, else the runner's own
    ``compare_to_baseline`` on the rounds, so the report and the run file never disagree."""
    saved = (subject.get("extra") or {}).get("vs_baseline") if default_baseline else None
    if not saved:
        saved = stats.compare_to_baseline(_per_round(baseline), _per_round(subject))
    low, high = _opt(saved.get("ci_low")), _opt(saved.get("ci_high"))
    if low is not None and math.isnan(low):
        low = high = None
    return Estimate(float(saved["ratio"]), low, high), str(saved.get("verdict") or "")


def _opt(v: Any) -> float | None:
    return None if v is None else float(v)


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


def _quality(bench: Mapping[str, Any]) -> Quality | None:
    q = bench.get("quality")
    if not q or q.get("value") is None:
        return None
    return Quality(str(q.get("metric", "quality")), float(q["value"]), bool(q.get("higher_is_better", True)))


def _domains_per_item(bench: Mapping[str, Any], per_item: float) -> dict[str, float]:
    """Energy per item split in the proportions the domains recorded over all rounds, scaled so the parts add
    up to the headline median (a mean here would disagree with the energy chart on a noisy run)."""
    totals: dict[str, float] = {}
    for r in bench.get("rounds") or []:
        for k, v in (r.get("domains") or {}).items():
            totals[str(k)] = totals.get(str(k), 0.0) + float(v)
    whole = sum(totals.values())
    return {k: per_item * v / whole for k, v in totals.items()} if whole > 0 else {}


def _timeline(bench: Mapping[str, Any]) -> tuple[tuple[tuple[float, dict[str, float]], ...], int | None]:
    """The timeline of the median-energy round that has one: a typical trial, not the best or worst."""
    rounds = [r for r in bench.get("rounds") or [] if r.get("timeline")]
    if not rounds:
        return (), None
    rounds.sort(key=lambda r: float(r["energy_j"]))
    mid = rounds[(len(rounds) - 1) // 2]
    points = tuple((float(t), {str(k): float(v) for k, v in w.items()}) for t, w in mid["timeline"])
    return points, mid.get("round")


def _run_summary(run: Mapping[str, Any]) -> RunSummary:
    env = run.get("environment") or {}
    return RunSummary(
        run_id=str(run.get("run_id") or run.get("name") or "run"),
        name=str(run.get("name") or ""),
        created=str(run.get("created") or ""),
        machine=dict(run.get("machine") or {}),
        commit=dict(run.get("commit") or {}),
        carbon=dict(run["carbon"]) if run.get("carbon") else None,
        idle=dict(run["idle"]) if run.get("idle") else None,
        settings=dict(env.get("settings") or {}),
    )


def common_benchmarks(runs: Sequence[Mapping[str, Any]]) -> set[str]:
    names = [{str(b["name"]) for b in r.get("benchmarks") or []} for r in runs]
    return set.intersection(*names) if names else set()


def build_report(
    runs: Sequence[Mapping[str, Any]],
    *,
    baseline: str = DEFAULT_BASELINE,
    regions: Sequence[str] = DEFAULT_REGIONS,
    lookup: Callable[[str], Any] | None = None,
    gates: Sequence[GateRow] = (),
    extra_notices: Sequence[Notice] = (),
) -> Report:
    """Turn run dicts into a ``Report``.

    With several runs only the benchmarks they all share are kept (a report compares like with like); none
    shared, or a ``baseline`` subject that appears nowhere, is a ``ConfigError``. ``lookup`` resolves region
    names (``energybench.carbon.lookup_region`` by default).
    """
    if not runs:
        raise ResultsError("no runs to report on: pass result files, directories or run ids")
    for r in runs:
        if not r.get("benchmarks"):
            raise ResultsError(f"run {r.get('run_id', '?')} has no benchmarks: nothing to report")
    keep = common_benchmarks(runs)
    if not keep:
        ids = ", ".join(str(r.get("run_id", "?")) for r in runs)
        raise ResultsError(f"runs {ids} share no benchmark: report runs of the same suite")
    subjects = {str(b.get("subject", DEFAULT_BASELINE)) for r in runs for b in r["benchmarks"]}
    if baseline != DEFAULT_BASELINE and baseline not in subjects:
        raise ConfigError(
            f"baseline subject {baseline!r} is in none of the runs; pick one of: {', '.join(sorted(subjects))}"
        )

    entries: list[Entry] = []
    notices: list[Notice] = []
    for run in runs:
        run_id = str(run.get("run_id") or run.get("name") or "run")
        notices += [Notice(f"run {run_id}", str(w)) for w in run.get("warnings") or []]
        benches = []
        for b in run["benchmarks"]:
            if str(b["name"]) not in keep:
                continue
            if not b.get("rounds"):
                notices.append(Notice(f"{b['name']} / {b.get('subject', DEFAULT_BASELINE)}",
                                      "no measured rounds (not run, or stopped before it): left out"))
                continue
            benches.append(b)
        by_group: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for b in benches:
            by_group.setdefault((str(b["name"]), str(b.get("phase", "other"))), []).append(b)
        for (name, phase), members in by_group.items():
            base = next((b for b in members if str(b.get("subject", DEFAULT_BASELINE)) == baseline), None)
            built: list[Entry] = []
            for b in members:
                subject = str(b.get("subject", DEFAULT_BASELINE))
                est = _per_item(b)
                ratio, verdict = None, ""
                if b is base:
                    ratio = Estimate(1.0, 1.0, 1.0)
                elif base is not None:
                    ratio, verdict = _ratio(b, base, baseline == DEFAULT_BASELINE)
                co2 = [r.get("co2e_g") for r in b.get("rounds") or []]
                items = sum((r.get("items") or 1) for r in b.get("rounds") or [])
                co2_item = sum(co2) / items if co2 and None not in co2 and items else None
                timeline, tl_round = _timeline(b)
                warnings = tuple(dict.fromkeys(
                    [str(w) for w in b.get("warnings") or []]
                    + [str(w) for r in b.get("rounds") or [] for w in r.get("warnings") or []]))
                where = f"{name} / {subject}" + (f" ({run_id})" if len(runs) > 1 else "")
                notices += [Notice(where, w) for w in warnings]
                built.append(
                    Entry(
                        run=run_id, benchmark=name, subject=subject, method=b.get("method"), phase=phase,
                        item_unit=str(b.get("item_unit") or "item"), per_item=est, ratio=ratio,
                        quality=_quality(b), domains_per_item=_domains_per_item(b, est.value),
                        source=benchmark_source(b), rounds=len(b.get("rounds") or []),
                        energy_j=sum(float(r["energy_j"]) for r in b.get("rounds") or []),
                        co2e_g_per_item=co2_item, warnings=warnings, is_baseline=b is base, verdict=verdict,
                        timeline=timeline, timeline_round=tl_round,
                    )
                )
            built = _mark_front(built)
            entries += built
            if base is None:
                notices.append(Notice(f"{name} ({phase})", f"no {baseline!r} subject: ratios not shown"))
    notices += extra_notices
    summaries = tuple(_run_summary(r) for r in runs)
    for s in summaries:
        for sampler in s.samplers:
            if "estimated" in str(sampler.get("source") or ""):
                notices.append(Notice(f"sampler {sampler.get('name', '?')}",
                                      f"estimated, not measured: {sampler.get('method') or 'a power model'}"))
    first = summaries[0]
    joules = sum(e.energy_j for e in entries if e.run == first.run_id)
    region_rows, region_notices = _regions(first, joules, regions, lookup)
    notices += region_notices
    pue = float((first.carbon or {}).get("pue") or 1.0)
    note = (f"all {sum(e.rounds for e in entries if e.run == first.run_id)} measured rounds of run "
            f"{first.run_id}" + (f", PUE {pue:g}" if pue != 1.0 else ""))
    return Report(
        runs=summaries, entries=tuple(entries), baseline=baseline, regions=tuple(region_rows),
        region_joules=joules, region_note=note, gates=tuple(gates), notices=_collapse(notices),
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
    return [_replace(e, on_front=id(e) in front) for e in entries]


def _replace(e: Entry, **changes: Any) -> Entry:
    from dataclasses import replace

    return replace(e, **changes)


def _regions(
    run: RunSummary, joules: float, names: Sequence[str], lookup: Callable[[str], Any] | None
) -> tuple[list[RegionCO2], list[Notice]]:
    """The user's grid first (the factor the run itself used), then the comparison grids."""
    pue = float((run.carbon or {}).get("pue") or 1.0)
    kwh = joules / JOULES_PER_KWH * pue
    rows: list[RegionCO2] = []
    notices: list[Notice] = []
    user = None
    if run.carbon and run.carbon.get("intensity_g_per_kwh") is not None:
        c = run.carbon
        user = str(c.get("region") or "your factor")
        rows.append(RegionCO2(
            name=user, label=str(c.get("label") or user), intensity_g_per_kwh=float(c["intensity_g_per_kwh"]),
            year=c.get("year"), source=str(c.get("source") or c.get("method") or "as recorded in the run"),
            co2e_g=kwh * float(c["intensity_g_per_kwh"]), is_user=True,
        ))
    else:
        notices.append(Notice(f"run {run.run_id}", "no carbon intensity recorded: your region is not shown"))
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
