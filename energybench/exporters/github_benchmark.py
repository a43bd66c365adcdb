"""github-action-benchmark's ``customSmallerIsBetter`` JSON, so energy per item is graphed per commit.

The format (the action's ``BenchmarkResult`` in ``src/extract.ts``) is a JSON array of
``{"name": str, "unit": str, "value": number, "range"?: str, "extra"?: str}``; with ``tool:
customSmallerIsBetter`` the action charts each ``name`` over commits and alerts when ``value`` grows. Every
entry here is a cost (energy, CO2e, SCI per item), so smaller is better for all of them.

Use in a workflow::

    energybench export github-benchmark latest --output energy.json
    # then: uses: benchmark-action/github-action-benchmark@v1 with tool: customSmallerIsBetter,
    #       output-file-path: energy.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from energybench import units
from energybench.exporters import Exported, Exporter
from energybench.exporters.figures import bench_figures
from energybench.record import Run


def entries(run: Run) -> list[dict[str, Any]]:
    """One entry per benchmark and figure: energy per item (with its 95% CI as ``range``), CO2e and SCI."""
    out: list[dict[str, Any]] = []
    for f in bench_figures(run):
        extra = f"source: {f.bench.source}\nrounds: {f.rounds}\nrun: {run.label}"
        e: dict[str, Any] = {"name": f"{f.label} energy per {f.unit}", "unit": f"J/{f.unit}",
                             "value": f.per_item_j, "extra": extra}
        if f.per_item_low_j is not None and f.per_item_high_j is not None:
            e["range"] = f"95% CI {units.interval(f.per_item_low_j, f.per_item_high_j, units.joules)}"
        out.append(e)
        if f.co2e_per_item_g is not None and run.carbon is not None:
            out.append({"name": f"{f.label} CO2e per {f.unit}", "unit": f"g/{f.unit}", "value": f.co2e_per_item_g,
                        "extra": f"{run.carbon.region}, {run.carbon.factor_kind} factor, PUE {run.carbon.pue:g}"})
        if f.sci is not None and f.sci.complete:
            out.append({"name": f"{f.label} SCI per {f.unit}", "unit": f"gCO2e/{f.unit}", "value": f.sci.sci_g,
                        "extra": "SCI = (E x I + M) / R, operational + embodied"})
    return out


class GithubBenchmarkExporter(Exporter):
    name = "github-benchmark"
    description = "github-action-benchmark customSmallerIsBetter JSON (energy, CO2e and SCI per item)"

    def export(self, run: Run, args: argparse.Namespace) -> Exported:
        return Exported(text=json.dumps(entries(run), indent=2) + "\n")
