"""Prometheus: node-exporter textfile format, and a push to a Pushgateway, through ``prometheus_client``.

Names follow Prometheus' conventions: an ``energybench_`` prefix, base units in the name (joules,
grams, seconds), ``_total`` on counters. Energy and time consumed by a benchmark's rounds only grow, so they
are counters; figures per item and CO2e of a finished run are gauges. Labels identify the benchmark
(``benchmark``, ``method``, ``phase``) and how its figure was obtained (``source``, ``factor_kind``); the run
id is a label too, so a scrape of several runs keeps them apart.

* textfile: ``energybench export prometheus RUN --output /var/lib/node_exporter/energybench.prom`` (written
  atomically, through a temp file and ``os.replace``, as the textfile collector requires);
* push: ``--push http://pushgateway:9091`` (``push_to_gateway``, job ``energybench``, grouped by run).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from energybench.exporters import Exported, Exporter
from energybench.exporters.figures import bench_figures
from energybench.record import Run

PREFIX = "energybench"
LABELS = ("run", "benchmark", "method", "phase")


class RunCollector:
    """A ``prometheus_client`` collector that yields one run's figures (registered on a private registry)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        run = self.run
        carbon = run.carbon
        kind = carbon.factor_kind if carbon else ""
        energy = CounterMetricFamily(f"{PREFIX}_energy_joules", "Energy of the benchmark's measured rounds",
                                     labels=[*LABELS, "source"], unit="joules")
        duration = CounterMetricFamily(f"{PREFIX}_duration_seconds", "Time of the benchmark's measured rounds",
                                       labels=list(LABELS), unit="seconds")
        per_item = GaugeMetricFamily(f"{PREFIX}_energy_per_item_joules",
                                     "Median energy per item (the benchmark's functional unit) over rounds",
                                     labels=[*LABELS, "item_unit", "source"], unit="joules")
        co2e = GaugeMetricFamily(f"{PREFIX}_co2e_grams", "CO2e of the benchmark's measured rounds",
                                 labels=[*LABELS, "region", "factor_kind"], unit="grams")
        sci = GaugeMetricFamily(f"{PREFIX}_sci_grams", "Software Carbon Intensity per item, (E x I + M) / R, by "
                                "part (operational, embodied, total)",
                                labels=[*LABELS, "item_unit", "part", "factor_kind"], unit="grams")
        rounds = GaugeMetricFamily(f"{PREFIX}_rounds", "Measured rounds of the benchmark", labels=list(LABELS))
        for f in bench_figures(run):
            b = f.bench
            base = [run.label, b.name, b.method, b.phase]
            energy.add_metric([*base, b.source], f.energy_j)
            duration.add_metric(base, f.duration_s)
            per_item.add_metric([*base, f.unit, b.source], f.per_item_j)
            rounds.add_metric(base, f.rounds)
            if f.co2e_g is not None and carbon is not None:
                co2e.add_metric([*base, carbon.region, kind], f.co2e_g)
            if f.sci is not None:
                sci.add_metric([*base, f.unit, "operational", kind], f.sci.operational_per_item_g)
                if f.sci.embodied_per_item_g is not None:
                    sci.add_metric([*base, f.unit, "embodied", kind], f.sci.embodied_per_item_g)
                    sci.add_metric([*base, f.unit, "total", kind], f.sci.sci_g)
        info = GaugeMetricFamily(f"{PREFIX}_run_info", "The exported run (value 1)",
                                 labels=["run", "created", "commit", "kind"])
        info.add_metric([run.label, run.created, str(run.commit.get("id") or ""), run.kind], 1.0)
        yield from (energy, duration, per_item, co2e, sci, rounds, info)


def registry_for(run: Run) -> Any:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=True)
    registry.register(RunCollector(run))
    return registry


def textfile(run: Run) -> str:
    """The run in Prometheus' text exposition format (what node-exporter's textfile collector reads)."""
    from prometheus_client import generate_latest

    return generate_latest(registry_for(run)).decode("utf-8")


class PrometheusExporter(Exporter):
    name = "prometheus"
    description = "Prometheus text format for node-exporter's textfile collector, or a push to a Pushgateway"
    requires = "prometheus_client"
    extra = "prometheus"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--push", metavar="URL", help="push to this Pushgateway (e.g. http://localhost:9091)")
        parser.add_argument("--job", default="energybench", help="Pushgateway job label (default energybench)")

    def export(self, run: Run, args: argparse.Namespace) -> Exported:
        from prometheus_client import push_to_gateway

        from energybench.errors import ConfigError
        from energybench.redact import redact

        messages = []
        if args.push:
            try:
                push_to_gateway(args.push, job=args.job, registry=registry_for(run), grouping_key={"run": run.label},
                                timeout=30)
            except (OSError, ValueError) as exc:  # URLError, HTTPError, connection refused, a malformed URL
                raise ConfigError(f"cannot push to the Pushgateway at {redact(args.push)}: "
                                  f"{redact(str(exc), args.push)}; check the URL") from None
            messages.append(f"pushed {run.label} to {redact(args.push)} (job {args.job}, run {run.label})")
        # the text file (--output, or standard output without --push) is written by `energybench export`, with
        # the output-path checks and the atomic write every exporter shares
        text = textfile(run) if args.output or not args.push else None
        return Exported(text=text, messages=tuple(messages))
