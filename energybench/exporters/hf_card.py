"""The Hugging Face model card's ``co2_eq_emissions`` metadata, built with ``huggingface_hub``'s own classes.

The Hub reads this block from the YAML header of a model's README.md (``ModelCardData.co2_eq_emissions``):
``emissions`` in grams CO2e, ``source``, ``training_type`` (``pre-training``, ``fine-tuning``...),
``geographical_location`` and ``hardware_used``. It describes training, so by default only the run's
``train`` benchmarks are counted (``--phase`` changes that); their rounds' CO2e is summed as measured.

``energybench export hf-card RUN`` prints the YAML header to paste; ``--update README.md`` writes the block
into an existing card (or a new one) through ``ModelCard.load`` / ``ModelCard.save``, keeping everything else.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from energybench import __version__
from energybench.errors import ConfigError
from energybench.exporters import Exported, Exporter
from energybench.record import Run


def _place(region: str) -> str:
    from energybench.carbon import lookup_region
    from energybench.errors import UnknownRegionError

    try:
        return str(lookup_region(region).label)
    except UnknownRegionError:
        return region  # a user's label for their own factor (--region aws:us-east-1 --intensity 380)


def hardware(run: Run) -> str:
    m = run.machine
    parts = [f"{m.cpu_count or '?'} x {m.cpu_model or 'CPU'} (logical CPUs)"]
    names: dict[str, int] = {}
    for g in m.gpus:
        names[str(g.get("name", "GPU"))] = names.get(str(g.get("name", "GPU")), 0) + 1
    parts += [f"{n} x {name}" for name, n in names.items()]
    return ", ".join(parts)


def co2_eq_emissions(run: Run, phase: str = "train", training_type: str | None = None) -> dict[str, Any]:
    """The block's value for ``run``'s benchmarks of ``phase`` (``all`` for every benchmark)."""
    if run.carbon is None:
        raise ConfigError(f"run {run.label} has no CO2e (it was run without --region or --intensity): re-run "
                          "with a region to fill a model card")
    chosen = [b for b in run.by_key().values() if phase == "all" or b.phase == phase]  # a key twice counts once
    if not chosen:
        phases = ", ".join(sorted({b.phase for b in run.benchmarks}))
        raise ConfigError(f"run {run.label} has no {phase!r} benchmarks (it has: {phases}): pass --phase all or "
                          "one of those")
    grams = [r.co2e_g for b in chosen for r in b.rounds if math.isfinite(r.energy_j)]
    if not grams or any(g is None or not math.isfinite(g) for g in grams):
        raise ConfigError(f"run {run.label}: some rounds have no CO2e figure; see its warnings")
    sources = {b.source for b in chosen}
    provenance = ("measured" if sources == {"measured"} else "estimated (power model)" if "measured" not in sources
                  else "partly estimated (power model)")
    c = run.carbon
    block: dict[str, Any] = {
        "emissions": math.fsum(g for g in grams if g is not None),
        "source": f"energybench {__version__}, {provenance}; {c.region} {c.intensity_g_per_kwh:.4g} gCO2e/kWh "
                  f"({c.factor_kind}, {c.source}), PUE {c.pue:g}",
        "geographical_location": _place(c.region),
        "hardware_used": hardware(run),
    }
    if training_type:
        block["training_type"] = training_type
    return block


def card_data(run: Run, phase: str = "train", training_type: str | None = None) -> Any:
    from huggingface_hub import ModelCardData

    return ModelCardData(co2_eq_emissions=co2_eq_emissions(run, phase, training_type))


class HfCardExporter(Exporter):
    name = "hf-card"
    description = "Hugging Face model card co2_eq_emissions block (YAML header), or written into a README.md"
    requires = "huggingface_hub"
    extra = "hf"
    writes = ("output", "update")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--phase", default="train", help="benchmarks to count: train (default), inference, all")
        parser.add_argument("--training-type", metavar="TYPE", help="e.g. pre-training or fine-tuning (left out "
                            "when not given)")
        parser.add_argument("--update", metavar="README", help="write the block into this model card's YAML header")

    def export(self, run: Run, args: argparse.Namespace) -> Exported:
        from huggingface_hub import ModelCard

        data = card_data(run, args.phase, args.training_type)
        if not args.update:
            return Exported(text=f"---\n{data.to_yaml()}\n---\n")
        path = Path(args.update)
        if path.exists():
            card = ModelCard.load(path)
            card.data.co2_eq_emissions = data.co2_eq_emissions
        else:
            card = ModelCard(f"---\n{data.to_yaml()}\n---\n")
        try:
            card.save(path)
        except OSError as exc:
            from energybench.atomic import write_error

            raise write_error("the model card", path, exc) from None
        return Exported(messages=(f"wrote co2_eq_emissions ({data.co2_eq_emissions['emissions']:.4g} g) into {path}",))
