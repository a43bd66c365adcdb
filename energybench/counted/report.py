"""The lines a user reads about counted energy: a counted command's report and a calibration's fit.

Every figure says ``modeled`` and names its profile, so a modeled joule is never read as a measured one; the
event counts are printed next to the joules they were priced at, because the counts are what repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from energybench import units
from energybench.counted.calibrate import Calibration
from energybench.counted.profile import DEFAULT_PROFILE, EVENTS, derive
from energybench.counted.result import CountedResult
from energybench.render.tables import wrap

EVENT_LABELS = {
    "instructions": "instructions",
    "data_accesses": "L1 data accesses",
    "ll_hits": "L1 misses from LL",
    "dram_lines": "LL misses (DRAM)",
}


def format_counted(result: CountedResult, cmd: Sequence[str], code: int, carbon: Any = None,
                   interrupted: bool = False) -> str:
    """What ``energybench measure --meter counted`` prints on stderr."""
    status = "interrupted" if interrupted else f"exited {code}"
    lines = [f"energybench: {' '.join(cmd)} {status} after {units.seconds(result.wall_s)} under valgrind "
             "(callgrind: every instruction simulated, typically tens of times slower than a plain run)",
             f"  modeled        {units.joules(result.energy_j)} ({result.method})"]
    by_event = result.energy_by_event_j
    for event, count in result.events.items():
        per = result.profile.energies_j.get(event, 0.0)
        priced = units.joules(by_event[event])
        lines.append(f"  {EVENT_LABELS[event]:<19}{count:>16,} x {_per_event(per):>9} = {priced}")
    if carbon is not None:
        lines.append(f"  CO2e           {units.grams(carbon.co2e_g)} ({carbon.region} "
                     f"{units.intensity(carbon.intensity_g_per_kwh)}, of the modeled joules)")
    else:
        lines.append("  CO2e           none (no region: pass --region)")
    lines.append("  modeled, not measured: the same counts give the same joules on every run; compare only with "
                 "other counted figures of the same profile")
    lines.extend(f"  warning: {w}" for w in result.warnings)
    return "\n".join(part for line in lines for part in wrap(line))


def format_calibration(cal: Calibration, saved: str | None) -> str:
    """What ``energybench calibrate`` prints: per kernel, the events, measured and fitted joules, residual."""
    fit = cal.fit
    events = list(fit.energies_j)
    head = f"{'kernel':<13}" + "".join(f"{e:>15}" for e in events) + f"{'measured':>12}{'fitted':>12}{'residual':>10}"
    lines = [f"energybench calibrate: {len(cal.counts)} kernels counted under callgrind and measured with "
             f"{(cal.profile.fit or {}).get('sampler', 'RAPL')} above an idle floor of {units.watts(cal.idle_w)}", head]
    for name, measured in fit.measured_j.items():
        counts = derive(cal.counts[name])
        lines.append(f"{name:<13}" + "".join(f"{counts[e]:>15,}" for e in events)
                     + f"{units.joules(measured):>12}{units.joules(fit.predicted_j[name]):>12}"
                     + f"{fit.residuals[name]:>+10.1%}")
    lines.append("joules per event (the built-in horowitz-45nm table for comparison):")
    for event in EVENTS:
        fitted = cal.profile.energies_j.get(event)
        shown = f"{fitted:.3g} J" if fitted is not None else "not fitted (0)"
        lines.append(f"  {event:<15}{shown:>14}   (default {DEFAULT_PROFILE.energies_j[event]:.3g} J)")
    lines.append(f"fit error: RMS relative residual {fit.rms_relative:.2%}, largest {fit.max_relative:.2%}, over "
                 f"{len(fit.measured_j)} kernels ({fit.degrees_of_freedom} degrees of freedom); condition number "
                 f"{fit.condition:.3g}")
    lines.extend(f"warning: {w}" for w in fit.warnings)
    noisy = [k for k, n in cal.native.items() if n.spread > 0.1]
    if noisy:
        lines.append(f"warning: repeats of {', '.join(noisy)} spread over 10%: calibrate on a quieter machine or "
                     "raise --min-seconds")
    if saved:
        lines.append(f"saved profile {cal.profile.name} to {saved}: use it with `energybench measure --meter counted "
                     f"--profile {saved} -- CMD`")
    table = range(1, len(fit.measured_j) + 2)  # header and one row per kernel: a table, never wrapped
    return "\n".join(part for i, line in enumerate(lines) for part in ([line] if i in table else wrap(line)))


def _per_event(joules: float) -> str:
    return f"{joules * 1e12:.4g} pJ" if joules < 1e-9 else f"{joules * 1e9:.4g} nJ"
