"""The same work on several devices, in words: the report's "Hardware" section (data: ``energybench.run.devices``)."""

from __future__ import annotations

from energybench.render import cells
from energybench.render.plots import esc
from energybench.verdicts.devices import DeviceComparison


def hardware_section(rows: tuple[tuple[str, DeviceComparison], ...], multi_run: bool = False) -> str:
    """One row per workload and method measured on two devices: energy per item on each, the ratio with its
    interval, and the verdict; empty when the runs used one device."""
    if not rows:
        return ""
    body = []
    for run, c in rows:
        unit = c.bench.item_unit or "item"
        ref = cells.energy_per_item(c.reference_bench.energy_per_item.median, None, None, unit)
        dev = cells.energy_per_item(c.bench.energy_per_item.median, None, None, unit)
        body.append(
            f"<tr><td class=name>{esc(c.name)}{esc(' · ' + run) if multi_run else ''}</td>"
            f"<td class=name>{esc(c.method)}</td><td class=num>{esc(c.reference)}: {esc(ref)}</td>"
            f"<td class=num>{esc(c.device)}: {esc(dev)}</td>"
            f"<td class=num>{esc(cells.ratio_with_ci(c.vs.ratio, c.vs.ci_low, c.vs.ci_high))}</td>"
            f"<td>{esc(cells.verdict(c.vs))}</td></tr>")
    return ('<section><h2>Hardware</h2><p class="note">The same workload and method on two devices in one run: '
            "energy per item on each, and the second against the first with the same interval and test as a "
            "method against its baseline.</p><div class=scroll><table><thead><tr><th>benchmark</th><th>method</th>"
            "<th>reference</th><th>device</th><th>ratio [95% CI]</th><th>verdict</th></tr></thead><tbody>"
            + "".join(body) + "</tbody></table></div></section>")
