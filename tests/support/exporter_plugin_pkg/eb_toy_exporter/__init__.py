"""A third party's exporter (one line per benchmark) and intensity source (a flat marginal factor)."""

from energybench.carbon.providers import FixedIntensity
from energybench.carbon.sources import IntensitySource
from energybench.exporters import Exported, Exporter


class LinesExporter(Exporter):
    name = "toy-lines"
    description = "one line per benchmark: key and joules"

    def add_arguments(self, parser):
        parser.add_argument("--sep", default=" ")

    def export(self, run, args):
        lines = [f"{b.key}{args.sep}{sum(r.energy_j for r in b.rounds):.6g}" for b in run.benchmarks]
        return Exported(text="\n".join(lines) + "\n")


class FlatMarginal(IntensitySource):
    name = "toy-flat"
    description = "a flat 500 g/kWh marginal factor"
    factor_kinds = ("marginal",)

    def create(self, zone, *, pue, factor_kind, api_url=None):
        kind = self.check_kind(factor_kind)
        return FixedIntensity(500.0, region=zone or "toyland", source="toy plugin", method="toy-flat", pue=pue,
                              factor_kind=kind)
