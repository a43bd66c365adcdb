"""Exporters: a saved run in the formats of the tools its readers already use.

Each exporter is one module here and one entry point in the ``energybench.exporters`` group; the built-ins
are registered in ``pyproject.toml`` exactly as a third party registers theirs, so ``energybench export
--list`` shows both alike and ``energybench export NAME RUN`` runs either. An exporter talks to its
ecosystem through that ecosystem's own library (MLflow's client, ``prometheus_client``, ``huggingface_hub``,
codecarbon's ``EmissionsData``), each an optional extra: a missing library makes that exporter unavailable,
with the ``pip install`` that fixes it, and never breaks the others.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from energybench.errors import ConfigError
from energybench.record import Run
from energybench.registry import Plugin, load_registry, lookup

ENTRY_POINT_GROUP = "energybench.exporters"

BUILTIN_EXPORTERS = {
    "mlflow": "energybench.exporters.mlflow:MlflowExporter",
    "prometheus": "energybench.exporters.prometheus:PrometheusExporter",
    "github-benchmark": "energybench.exporters.github_benchmark:GithubBenchmarkExporter",
    "bencher": "energybench.exporters.bencher:BencherExporter",
    "hf-card": "energybench.exporters.hf_card:HfCardExporter",
    "codecarbon": "energybench.exporters.codecarbon_csv:CodecarbonCsvExporter",
}


@dataclass(frozen=True)
class Exported:
    """What an export did: the text (written to ``--output``, else to stdout) and one line per thing sent."""

    text: str | None = None
    messages: tuple[str, ...] = field(default=())


class Exporter(ABC):
    """One target format. ``add_arguments`` declares its options on its own ``energybench export NAME``
    parser; ``export`` gets the parsed namespace. ``requires`` names the import that must work (its absence
    makes the exporter unavailable, with ``extra`` as the fix)."""

    name: str
    description: str
    requires: str | None = None
    extra: str | None = None
    #: The options that name files this exporter writes: ``energybench export`` checks each before any work
    #: (never a saved run, the exported run, a directory or an unwritable path; ``energybench.outputs``).
    #: The text an exporter returns goes to ``--output`` through the same checked, atomic write.
    writes: tuple[str, ...] = ("output",)

    def unavailable_reason(self) -> str | None:
        if self.requires is None:
            return None
        import importlib.util

        if importlib.util.find_spec(self.requires) is None:
            return f"needs {self.requires}: pip install 'energybench[{self.extra}]'"
        return None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:  # noqa: B027 - optional hook, no-op default
        """Options of this exporter (the CLI adds RUN, --results and --output first)."""

    @abstractmethod
    def export(self, run: Run, args: argparse.Namespace) -> Exported:
        """Export ``run``; bad input is a ``ConfigError`` whose message names the fix."""


def exporters() -> dict[str, Plugin]:
    """Every exporter: built-ins, then entry-point plugins (a plugin may replace a built-in by name)."""
    return load_registry(BUILTIN_EXPORTERS, ENTRY_POINT_GROUP, lambda o: isinstance(o, Exporter), "an Exporter")


def get_exporter(name: str) -> Exporter:
    exporter: Exporter = lookup(exporters(), name, "exporter", "energybench export --list")
    reason = exporter.unavailable_reason()
    if reason:
        raise ConfigError(f"exporter {name!r} is unavailable: {reason}")
    return exporter
