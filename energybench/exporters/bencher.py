"""Bencher Metric Format (BMF) JSON, for ``bencher run --adapter json --file energy.json``.

BMF is ``{BENCHMARK: {MEASURE: {"value": n, "lower_value"?: n, "upper_value"?: n}}}`` (schema at
https://bencher.dev/bmf.json). Benchmarks are named by their key (``lm/inference-generate [int8-dynamic]``);
measures are slugs with the unit in them, since a measure carries one unit in Bencher and is created on first
use: ``energy-per-item-joules`` (median, 95% CI as lower/upper), ``co2e-per-item-grams``,
``sci-per-item-grams``, each ending in the energy's provenance (``-measured``, ``-estimated``): BMF has no
field for it, and a measured and an estimated joule must never share a chart or a threshold. A measure slug is
at most 64 characters, a benchmark name 1024.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from energybench.exporters import Exported, Exporter
from energybench.exporters.figures import bench_figures
from energybench.record import Run


def bmf(run: Run) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for f in bench_figures(run):
        measures: dict[str, dict[str, Any]] = {}
        source = f"-{f.bench.source}"  # measured, estimated or modeled: kept in the measure's name
        energy: dict[str, float] = {"value": f.per_item_j}
        if f.per_item_low_j is not None and f.per_item_high_j is not None:
            energy.update(lower_value=f.per_item_low_j, upper_value=f.per_item_high_j)
        measures["energy-per-item-joules" + source] = energy
        if f.co2e_per_item_g is not None:
            measures["co2e-per-item-grams" + source] = {"value": f.co2e_per_item_g}
        if f.sci is not None and f.sci.complete:
            measures["sci-per-item-grams" + source] = {"value": f.sci.sci_g}
        out[f.label[:1024]] = measures
    return out


class BencherExporter(Exporter):
    name = "bencher"
    description = "Bencher Metric Format JSON (energy, CO2e and SCI per item) for `bencher run --adapter json`"

    def export(self, run: Run, args: argparse.Namespace) -> Exported:
        return Exported(text=json.dumps(bmf(run), indent=2) + "\n")
