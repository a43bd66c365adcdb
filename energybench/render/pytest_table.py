"""The energy table pytest prints at the end of a session, laid out like pytest-benchmark's."""

from __future__ import annotations

from collections.abc import Sequence

from energybench.record import Benchmark
from energybench.render import units
from energybench.render.printable import printable_output
from energybench.render.tables import text_table

HEADERS = ["benchmark", "energy/call", "95% CI", "power", "time/call", "CO2e/call", "energy/item", "source",
           "rounds x iters", "spread"]


@printable_output
def summary_table(benches: Sequence[Benchmark]) -> list[str]:
    """Energy per call with its CI, mean power, time, CO2e, energy per item (only for tests that count
    items), provenance and spread (``!`` marks an unstable benchmark)."""
    rows = []
    for b in benches:
        e, d, p, co2 = (b.summary(f) for f in ("energy_j", "duration_s", "power_w", "co2e_g"))
        per_item = b.energy_per_item.median if b.has_items else None
        rows.append([
            b.name, units.joules(e.median), f"{units.joules(e.ci_low)}..{units.joules(e.ci_high)}",
            units.watts(p.median), units.seconds(d.median), units.grams(co2.median) if co2.n else "-",
            units.per(units.joules(per_item), b.item_unit) if per_item is not None else "-", b.source,
            f"{len(b.rounds)} x {b.extra.get('iterations')}",
            units.percent(e.spread) + (" !" if b.stability_warning or b.warnings else "") if e.n else "-",
        ])
    return text_table(HEADERS, rows, right=range(1, len(HEADERS)))
