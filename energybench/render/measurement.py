"""What ``energybench measure`` prints on stderr: the machine-wide figure and the command's own share, each
with its energy and its CO2e, then the domains with their provenance, duration, power and the carbon basis.

Why two headline figures: the samplers see the whole machine (every process, the idle floor), which is what
the electricity bill and the grid see; the command's own share (its CPU time's part of the CPU energy above
idle, ``cli.measure``) is what a user comparing two commands wants. Both are labelled, both carry grams, so
neither is mistaken for the other. The share's CO2e is the machine-wide CO2e in proportion to joules (the
same window and factor) unless the caller gives its own figure (``attribution["co2e_g"]``).
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from energybench import units
from energybench.measurement import Measurement
from energybench.render.carbon import NO_REGION, basis
from energybench.render.printable import printable_output
from energybench.render.tables import terminal_width

LABEL = 15  # width of the label column ("machine-wide", "this command", "duration" ...)


def share_co2e_g(result: Measurement, attribution: dict[str, Any]) -> float | None:
    """Grams for the command's share: given by the caller, or the machine-wide grams per joule times its joules."""
    given = attribution.get("co2e_g")
    if given is not None:
        return float(given)
    carbon = result.carbon
    if carbon is None or not result.energy_j or not math.isfinite(result.energy_j) or carbon.co2e_g is None:
        return None
    share = attribution.get("cpu_energy_j")
    if share is None:
        return None
    return carbon.co2e_g * float(share) / result.energy_j


def _co2e(grams: float | None, has_carbon: bool) -> str:
    return f"{units.grams(grams)} CO2e" if has_carbon and grams is not None else "no CO2e (no region)"


@printable_output
def format_report(
    result: Measurement,
    cmd: list[str],
    code: int,
    attribution: dict[str, Any],
    interrupted: bool,
    no_counter: list[str] | None = None,
    width: int | None = None,
) -> str:
    width = terminal_width() if width is None else width
    status = "interrupted" if interrupted else f"exited {code}"
    has_carbon = result.carbon is not None
    lines = textwrap.wrap(f"energybench: {' '.join(cmd)} {status} after {units.seconds(result.duration_s)}", width,
                          subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)

    def row(label: str, text: str) -> None:
        lines.extend(textwrap.wrap(text, width, initial_indent=f"  {label:<{LABEL}}",
                                   subsequent_indent=" " * (LABEL + 2), break_long_words=False,
                                   break_on_hyphens=False))

    machine_co2e = result.carbon.co2e_g if result.carbon is not None else None
    row("machine-wide", f"{units.joules(result.energy_j)}, {_co2e(machine_co2e, has_carbon)} ({result.source}; "
        "every process and the idle floor, as the samplers saw it)")
    for d in result.domains:
        note = "" if d.counted else "  (inside another, not added)"
        source = d.source if d.has_figure else "-"  # n/a is neither measured nor estimated
        lines.append(f"    {d.key:<18} {units.joules(d.energy_j):>10}  {source:<9} {d.method}{note}")
    share = attribution.get("cpu_energy_j")
    if share is not None:
        row("this command", f"{units.joules(share)}, {_co2e(share_co2e_g(result, attribution), has_carbon)} "
            f"(its share of the CPU energy above idle: {attribution['cpu_s']:.2f} of the machine's "
            f"{attribution['machine_busy_cpu_s']:.2f} busy CPU-s)")
        if attribution.get("basis"):
            row("share basis", str(attribution["basis"]))
    elif attribution.get("note") and attribution.get("machine_cpu_energy_j", 0) > 0:
        row("this command", f"n/a ({attribution['note']})")
    else:
        row("this command", "not attributed (no CPU domain to split by CPU time); the machine-wide figure is all "
            "there is")
    row("mean power", f"{units.watts(result.mean_power_w)} (machine-wide)")
    no_co2e = next((w.removeprefix("no CO2e: ") for w in result.warnings if w.startswith("no CO2e: ")), None)
    row("CO2e basis", basis(result.carbon) if result.carbon is not None else f"n/a ({no_co2e or NO_REGION})")
    if result.source == "estimated":
        why = "; ".join(no_counter or []) or "no hardware counter covers these domains"
        row("estimated", f"from a power model, not a hardware counter ({why})")
    for w in result.warnings:
        if not w.startswith("no CO2e: "):
            row("warning", w)
    return "\n".join(lines)
