"""What ``energybench measure`` prints on stderr: energy per domain with provenance, duration, power, CO2e."""

from __future__ import annotations

from typing import Any

from energybench.measurement import Measurement
from energybench.render import units
from energybench.render.carbon import carbon_line
from energybench.render.printable import printable_output


@printable_output
def format_report(
    result: Measurement,
    cmd: list[str],
    code: int,
    attribution: dict[str, Any],
    interrupted: bool,
    no_counter: list[str] | None = None,
) -> str:
    status = "interrupted" if interrupted else f"exited {code}"
    lines = [f"energybench: {' '.join(cmd)} {status}"]
    lines.append(f"  energy      {units.joules(result.energy_j)} ({result.source})")
    for d in result.domains:
        note = "" if d.counted else "  (inside another domain, not added)"
        lines.append(f"    {d.key:<18} {units.joules(d.energy_j):>10}  {d.source:<9} {d.method}{note}")
    lines.append(f"  duration    {units.seconds(result.duration_s)}")
    lines.append(f"  mean power  {units.watts(result.mean_power_w)}")
    no_co2e = next((w.removeprefix("no CO2e: ") for w in result.warnings if w.startswith("no CO2e: ")), None)
    lines.append(f"  CO2e        {carbon_line(result.carbon, no_co2e)}")
    lines.extend(_share_lines(attribution))
    if result.source == "estimated":
        why = "; ".join(no_counter or []) or "no hardware counter covers these domains"
        lines.append(f"  estimated = from a power model, not a hardware counter ({why})")
    lines.extend(f"  warning: {w}" for w in result.warnings if not w.startswith("no CO2e: "))
    return "\n".join(lines)


def _share_lines(attribution: dict[str, Any]) -> list[str]:
    """The command's share of the CPU energy above idle, with its CO2e, or why there is none."""
    share = attribution.get("cpu_energy_j")
    if share is None:
        note = attribution.get("note")
        return [f"  this command's share: n/a ({note})"] if note and attribution["machine_cpu_energy_j"] > 0 else []
    grams = attribution.get("co2e_g")
    co2e = f", {units.grams(grams)} CO2e" if grams is not None else ""
    return [
        f"  this command {attribution['cpu_s']:.2f} CPU-s of the machine's {attribution['machine_busy_cpu_s']:.2f} "
        f"busy CPU-s: {units.joules(share)}{co2e} of the CPU energy above idle is its share",
        f"    ({attribution.get('basis')})",
    ]
