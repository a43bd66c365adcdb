"""SCI and counterfactuals as text: operational vs embodied per functional unit, with every assumption."""

from __future__ import annotations

import textwrap

from energybench import units
from energybench.carbon.counterfactual import Counterfactuals
from energybench.carbon.sci import SciReport
from energybench.render.tables import Column, Row, fit_table, terminal_width, wrap


def per(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{units.grams(value)}/{unit}"


def assumptions(report: SciReport) -> list[str]:
    """Every input the figures rest on, in words: what a reader needs to judge or redo them."""
    out = ["SCI = (E x I + M) / R (Green Software Foundation SCI v1.1, ISO/IEC 21031:2024), per benchmark; "
           "R = the benchmark's own item",
           f"E x I: each measured round's CO2e ({report.region}, {report.factor_kind} factor, PUE {report.pue:g}); "
           "market-based instruments are not used"]
    if not report.devices:
        out.append("M: not given (pass --embodied NAME=KGCO2E[:YEARS[:SHARE]] per device), so SCI covers "
                   "operational emissions only")
    held = next((r.reserved_basis for r in report.results), "measured rounds only")
    for d in report.devices:
        out.append(f"M: {d.name} {d.kgco2e:g} kgCO2e embodied ({d.source}), {d.lifetime_years:g}-year life, "
                   f"{d.share:g} of it reserved, for the time each benchmark held it: {held}")
    return out


SCI_COLUMNS = (Column(("benchmark",), shrink=True), Column(("phase",), drop=1), Column(("R",)),
               Column(("operational", "(E x I)"), right=True), Column(("embodied", "(M)"), right=True),
               Column(("SCI",), right=True))


def format_sci(report: SciReport, width: int | None = None) -> str:
    """The SCI table (one row per benchmark) followed by its assumptions, no wider than ``width`` (the
    terminal's, 100 when not one)."""
    width = terminal_width() if width is None else width
    rows: list[Row] = [[(r.benchmark,), (r.phase,), (r.functional_unit,),
                        (per(r.operational_per_item_g, r.functional_unit),),
                        (per(r.embodied_per_item_g, r.functional_unit),),
                        (per(r.sci_g, r.functional_unit),) + (() if r.complete else ("(operational only)",))]
                       for r in report.results]
    fitted = fit_table(SCI_COLUMNS, rows, width)
    table = fitted.lines + ([f"(left out to fit {width} characters: {', '.join(fitted.dropped)})"] if fitted.dropped
                            else [])
    lines = [part for a in assumptions(report) for part in textwrap.wrap(
        f"- {a}", width, initial_indent="  ", subsequent_indent="    ", break_long_words=False)]
    return "\n".join(["Software Carbon Intensity per functional unit:", *table, "assumptions:", *lines])


def format_counterfactuals(cf: Counterfactuals) -> str:
    """What the same joules would emit elsewhere, and at the cleanest time of a series."""
    rows = [[r.name + (" (yours)" if r.is_user else ""), r.label, units.intensity(r.intensity_g_per_kwh),
             units.grams(r.co2e_g), units.change(r.change) if r.change is not None else ""]
            for r in cf.regions]
    cols = (Column(("region",)), Column(("place",), shrink=True), Column(("factor",), right=True),
            Column(("CO2e",), right=True), Column(("vs yours",), right=True))
    out = [f"The same {units.joules(cf.energy_j)} (PUE {cf.pue:g}) elsewhere:",
           *fit_table(cols, [[(c,) for c in row] for row in rows]).lines]
    if cf.shift is not None:
        s = cf.shift
        out.append(
            f"Shifted in time along {s.series} ({s.factor_kind} factors; {units.seconds(s.duration_s)} of work, its "
            f"energy spread evenly): cleanest start {s.best_start_iso} at "
            f"{units.intensity(s.best_intensity_g_per_kwh)} -> {units.grams(s.best_co2e_g)}; dirtiest "
            f"{s.worst_start_iso} at {units.intensity(s.worst_intensity_g_per_kwh)} -> {units.grams(s.worst_co2e_g)}; "
            f"series mean {units.intensity(s.mean_intensity_g_per_kwh)} -> {units.grams(s.mean_co2e_g)}: the cleanest "
            f"start saves {units.percent(s.saving_vs_mean)} against the mean")
    return "\n".join(part for line in out for part in wrap(line))

