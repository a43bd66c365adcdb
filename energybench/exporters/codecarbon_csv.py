"""A CodeCarbon-compatible ``emissions.csv``: codecarbon's own columns and units, one row per benchmark.

The columns are the fields of codecarbon's ``EmissionsData`` dataclass, read from the installed codecarbon
(so they follow its version), with its units: ``duration`` s, ``emissions`` kg CO2e, ``emissions_rate``
kg/s, powers in W, energies in kWh, ``ram_total_size`` GB. As in codecarbon, PUE multiplies the energies and
powers. Each benchmark (one workload under one method) is one "run": ``project_name`` is its key,
``run_id`` a stable UUID of (energybench run, benchmark), ``experiment_id`` a stable UUID of the energybench
run. What energybench does not know (location, utilisation, water) is left empty, not zero.

An existing file with the same columns is appended to (rows of the same ``run_id`` are replaced), as
codecarbon's ``FileOutput`` does, so one ``emissions.csv`` can hold codecarbon's runs and energybench's.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import platform
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError
from energybench.exporters import Exported, Exporter
from energybench.measurement import JOULES_PER_KWH
from energybench.record import Benchmark, Round, Run
from energybench.render.csv import csv_text

NAMESPACE = uuid.UUID("6f1d7c52-1b9e-4d1e-9a3f-0e6b8c1f2a10")  # energybench's own, for stable ids


def columns() -> list[str]:
    """codecarbon's column order: the fields of its ``EmissionsData``."""
    from codecarbon.output_methods.emissions_data import EmissionsData

    return [f.name for f in dataclasses.fields(EmissionsData)]


def _device_energy(domains: Mapping[str, float], prefix: tuple[str, ...]) -> float:
    return math.fsum(v for k, v in domains.items() if k.split(":", 1)[0] in prefix and math.isfinite(v))


def _is_memory(key: str) -> bool:
    device, _, part = key.partition(":")
    return device in ("dram", "ram", "memory") or part.startswith(("dram", "ram", "memory"))


def _split(r: Round) -> tuple[float, float, float]:
    """A round's energy as codecarbon's cpu, gpu and ram parts, adding up to the round's total. A round keeps
    every domain a sampler reported, also those inside another or not added (RAPL's core zone inside the
    package; the per-vCPU model's DRAM, which its ``cpu:server-share`` already includes), so the CPU part is
    what the total leaves after the GPUs and the memory, and memory counts only where it was added."""
    gpu = _device_energy(r.domains, ("gpu",))
    included = not any(k.endswith(":server-share") for k in r.domains)  # samplers.cpu_model: DRAM inside it
    ram = math.fsum(v for k, v in r.domains.items() if _is_memory(k) and math.isfinite(v)) if included else 0.0
    return max(r.energy_j - gpu - ram, 0.0), gpu, ram


def rows(run: Run) -> list[dict[str, Any]]:
    """One row per measured benchmark, in codecarbon's columns and units (kWh, kg, W)."""
    place = _place(run)
    return [_row(run, b, place) for b in run.benchmarks if any(math.isfinite(r.energy_j) for r in b.rounds)]


def _place(run: Run) -> Any:
    """The region the run was priced at, as codecarbon's data names it (``None`` when unknown or not set)."""
    if run.carbon is None:
        return None
    from energybench.carbon import lookup_region
    from energybench.errors import UnknownRegionError

    try:
        return lookup_region(run.carbon.region)
    except UnknownRegionError:
        return None


def _row(run: Run, b: Benchmark, place: Any) -> dict[str, Any]:
    from energybench import __version__

    carbon, m = run.carbon, run.machine
    pue = carbon.pue if carbon else 1.0
    kind = place.kind if place is not None else ""
    rounds = [r for r in b.rounds if math.isfinite(r.energy_j)]
    duration = math.fsum(r.duration_s for r in rounds)
    split = [_split(r) for r in rounds]
    cpu_j, gpu_j, ram_j = (math.fsum(parts[i] for parts in split) for i in range(3))
    total_j = math.fsum(r.energy_j for r in rounds)
    grams = [r.co2e_g for r in rounds if r.co2e_g is not None and math.isfinite(r.co2e_g)]
    kg = math.fsum(grams) / 1000.0 if grams and len(grams) == len(rounds) else math.nan

    def kwh(j: float) -> float:
        return j / JOULES_PER_KWH * pue

    def watts(j: float) -> float:
        return j / duration * pue if duration > 0 else 0.0

    country = carbon.region.split("/", 1)[0] if carbon is not None and kind in (
        "country", "us-state", "ca-province", "cn-province", "nordic-zone") else ""
    cloud = carbon.region.split(":", 1) if carbon is not None and kind == "cloud" else ["", ""]
    return {
        "timestamp": run.created, "project_name": b.key,
        "run_id": str(uuid.uuid5(NAMESPACE, f"{run.label}/{b.key}")),
        "experiment_id": str(uuid.uuid5(NAMESPACE, run.label)),
        "duration": duration, "emissions": kg, "emissions_rate": kg / duration if duration > 0 else math.nan,
        "cpu_power": watts(cpu_j), "gpu_power": watts(gpu_j), "ram_power": watts(ram_j),
        "cpu_energy": kwh(cpu_j), "gpu_energy": kwh(gpu_j), "ram_energy": kwh(ram_j),
        "energy_consumed": kwh(total_j), "water_consumed": math.nan,
        "country_name": place.label.split(",")[-1].strip() if place is not None and country else "",
        "country_iso_code": country, "region": carbon.region.split("/", 1)[1].replace("-", " ")
        if carbon is not None and "/" in carbon.region and country else "",
        "cloud_provider": cloud[0], "cloud_region": cloud[1],
        "os": m.platform or platform.platform(), "python_version": m.python or platform.python_version(),
        "codecarbon_version": f"energybench {__version__}",
        "cpu_count": m.cpu_count if m.cpu_count is not None else math.nan, "cpu_model": m.cpu_model or "",
        "gpu_count": len(m.gpus), "gpu_model": ", ".join(str(g.get("name", "")) for g in m.gpus),
        "longitude": math.nan, "latitude": math.nan,
        "ram_total_size": m.memory_gb if m.memory_gb is not None else math.nan, "tracking_mode": "machine",
        "cpu_utilization_percent": math.nan, "gpu_utilization_percent": math.nan,
        "ram_utilization_percent": math.nan, "ram_used_gb": math.nan,
        "on_cloud": "Y" if kind == "cloud" else "N", "pue": pue, "wue": math.nan,
    }


def _cell(v: Any) -> Any:
    return "" if isinstance(v, float) and math.isnan(v) else v


def to_csv(run: Run, existing: str | None = None) -> str:
    """The CSV text: ``existing`` (a codecarbon file's text) kept, with this run's rows added or replaced."""
    cols = columns()
    new = rows(run)
    missing = [c for c in cols if c not in new[0]] if new else []
    if missing:  # a newer codecarbon added columns: say so instead of writing a file it would reject
        raise ConfigError(f"codecarbon {_codecarbon_version()} expects columns this energybench does not fill "
                          f"({', '.join(missing)}): upgrade energybench or pin codecarbon<4")
    kept: list[dict[str, str]] = []
    if existing and existing.strip():
        reader = csv.DictReader(io.StringIO(existing))
        if sorted(reader.fieldnames or []) != sorted(cols):
            raise ConfigError("the existing emissions CSV has other columns than codecarbon "
                              f"{_codecarbon_version()}'s: write to a new file with --output")
        ids = {r["run_id"] for r in new}
        kept = [r for r in reader if r.get("run_id") not in ids]
    # through the one CSV writer: a benchmark named `=cmd|' /C calc'!A0` is text there, not a formula
    return csv_text(cols, [*kept, *({k: _cell(r[k]) for k in cols} for r in new)])


def _codecarbon_version() -> str:
    from importlib.metadata import version

    return version("codecarbon")


class CodecarbonCsvExporter(Exporter):
    name = "codecarbon"
    description = "CodeCarbon-compatible emissions.csv (codecarbon's columns and units; one row per benchmark)"
    # codecarbon is a core dependency (its data prices every region), so nothing extra is needed

    def export(self, run: Run, args: argparse.Namespace) -> Exported:
        """The file's new text (``energybench export`` checks the path and writes it atomically)."""
        if args.output in (None, "-"):
            return Exported(text=to_csv(run))
        path = Path(args.output)
        try:
            existing = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the existing emissions CSV {path} to add rows to it: {exc}; write to a "
                              "new file with --output") from None
        return Exported(text=to_csv(run, existing),
                        messages=(f"{len(rows(run))} row(s) for {run.label} added or replaced in {path}",))
