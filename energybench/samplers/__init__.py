"""Sampler registry: built-in samplers plus third-party ones from the ``energybench.samplers`` entry points.

Detection returns fresh objects (no module-level hardware handles), so tests inject fakes through the
options mapping and two meters never share a handle. A *fallback* factory (the CPU power model) is used only
when no available sampler covers its device: an estimate never doubles a measurement.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from energybench import plugin_boundary
from energybench.errors import ConfigError, SamplerError
from energybench.samplers.base import Availability, BaseSampler, Domain, Sampler

__all__ = [
    "Availability",
    "BaseSampler",
    "Domain",
    "Sampler",
    "SamplerFactory",
    "benchmark_options",
    "detect_samplers",
    "factories",
    "probe_all",
]

ENTRY_POINT_GROUP = "energybench.samplers"
#: Samplers whose devices ``--gpu-index`` selects (indices as torch's cuda:N numbers them, NVIDIA or ROCm).
GPU_INDEXED = ("nvml", "amd")

# name -> "module:attribute" of a SamplerFactory; imported lazily so a missing optional dependency of one
# sampler never breaks the others.
BUILTIN_FACTORIES = {
    "powercap": "energybench.samplers.powercap:FACTORY",
    "nvml": "energybench.samplers.nvml:FACTORY",
    "amd": "energybench.samplers.amd:FACTORY",
    "apple": "energybench.samplers.apple:FACTORY",
    "intel-gpu": "energybench.samplers.intel_gpu:FACTORY",
    "tpu": "energybench.samplers.tpu:FACTORY",
    "cpu-model": "energybench.samplers.cpu_model:FACTORY",
}


@dataclass(frozen=True)
class SamplerFactory:
    """How the registry probes and builds one kind of sampler.

    ``probe(options)`` must not raise: it turns every failure into ``Availability(available=False,
    reason=...)``. ``create(options)`` returns the samplers (one per device or package group; possibly none).
    ``fallback_for`` names a device (``"cpu"``) this factory only estimates when nothing measures it.
    """

    name: str
    probe: Callable[[Mapping[str, Any]], Availability]
    create: Callable[[Mapping[str, Any]], Sequence[Sampler]]
    fallback_for: str | None = None


def _load(spec: str) -> SamplerFactory:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def factories() -> list[SamplerFactory]:
    """Built-ins first, then entry-point plugins (a plugin that fails to import becomes an unavailable probe)."""
    found: list[SamplerFactory] = []
    for name, spec in BUILTIN_FACTORIES.items():
        try:
            found.append(_load(spec))
        except ImportError as exc:
            found.append(_broken_factory(name, f"cannot import {spec}: {exc}"))
    for ep in _plugin_entry_points():
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:  # a third-party plugin must not break detection
            found.append(_broken_factory(ep.name, f"plugin {ep.value} failed to load: it "
                                                  f"{plugin_boundary.failure(exc)}"))
            continue
        found.append(obj() if callable(obj) and not isinstance(obj, SamplerFactory) else obj)
    return found


@functools.cache
def _plugin_entry_points() -> tuple[Any, ...]:
    """The group's entry points, scanned once per process: scanning every installed distribution's metadata
    costs 5-20 ms, which every ``measure()`` block would otherwise pay. A plugin installed while a process
    runs is seen by the next process."""
    from importlib.metadata import entry_points  # ~20 ms to import: only when detection runs

    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def _broken_factory(name: str, reason: str) -> SamplerFactory:
    return SamplerFactory(
        name=name,
        probe=lambda _options: Availability(name=name, available=False, reason=reason),
        create=lambda _options: [],
    )


def _safe_probe(factory: SamplerFactory, options: Mapping[str, Any]) -> Availability:
    try:
        return plugin_boundary.call("it", factory.probe, options, error=SamplerError)
    except SamplerError as exc:  # probing is where hardware failures (and plugin bugs) become stated reasons
        return Availability(name=factory.name, available=False, reason=f"probe failed: {exc}")


def _create(factory: SamplerFactory, options: Mapping[str, Any]) -> list[tuple[Sampler, list[Domain]]]:
    """The factory's samplers with their domains. Its code is a plugin's, maybe: a failure here, before
    anything is measured, is one line naming it (``plugin_boundary``), never an internal error."""

    def build() -> list[tuple[Sampler, list[Domain]]]:
        return [(s, list(s.domains())) for s in factory.create(options)]

    try:
        return plugin_boundary.call(f"sampler {factory.name}: creating its samplers", build, error=SamplerError)
    except SamplerError as exc:
        raise SamplerError(f"{exc}; fix or uninstall that sampler, or choose others with --sampler "
                           "(`energybench sensors` lists them)") from exc.__cause__


def _wanted(name: str, options: Mapping[str, Any]) -> bool:
    only = options.get("samplers")
    return not only or name in only


def benchmark_options(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Sampler options for benchmarks (pytest fixture, runner): the CPU estimate counts this process only.

    A benchmark compares code, not whatever else the machine did meanwhile: on a shared box, a
    machine-wide estimate moves with the neighbours' load and makes gates cry wolf. Users who want the
    machine-wide figure say so with ``cpu_scope`` or ``ENERGYBENCH_CPU_SCOPE=machine``.
    """
    chosen = dict(options or {})
    if "cpu_scope" not in chosen and not os.environ.get("ENERGYBENCH_CPU_SCOPE"):
        chosen["cpu_scope"] = "process"
    return chosen


def probe_all(options: Mapping[str, Any] | None = None) -> list[Availability]:
    """Every known sampler and whether it can read here (for ``energybench sensors``)."""
    options = options or {}
    return [_safe_probe(f, options) for f in factories() if _wanted(f.name, options)]


def detect_samplers(options: Mapping[str, Any] | None = None) -> list[Sampler]:
    """Build every available sampler; fallbacks only for devices no real sampler covers.

    What the user asked for by name must work or fail loudly: an unknown ``samplers`` name, a sampler
    named there that cannot read, a ``powercap_root`` given explicitly that holds no readable RAPL, or a
    ``gpu_indices`` with no GPU is a one-line ``ConfigError`` with the probe's reason, never a silent
    fallback to an estimate.
    """
    options = options or {}
    all_factories = factories()
    requested = list(options.get("samplers") or ())
    unknown = [n for n in requested if n not in {f.name for f in all_factories}]
    if unknown:
        known = ", ".join(f.name for f in all_factories)
        raise ConfigError(f"unknown sampler {', '.join(map(repr, unknown))}: known samplers are {known}")
    chosen: list[Sampler] = []
    covered: set[str] = set()
    fallbacks: list[SamplerFactory] = []
    for factory in all_factories:
        if not _wanted(factory.name, options):
            continue
        if factory.fallback_for:
            fallbacks.append(factory)
            continue
        probe = _safe_probe(factory, options)
        if probe.available:
            for sampler, domains in _create(factory, options):
                chosen.append(sampler)
                covered.update(d.device for d in domains)
        elif factory.name in requested:
            raise ConfigError(f"--sampler {factory.name} cannot read here: {probe.reason}")
        elif factory.name == "powercap" and options.get("powercap_root"):
            raise ConfigError(f"--powercap-root {options['powercap_root']}: {probe.reason}")
    if options.get("gpu_indices") and not any(s.name.startswith(GPU_INDEXED) for s in chosen):
        reason = next((p.reason for p in probe_all({**options, "samplers": ["nvml"]})), "no NVML sampler")
        raise ConfigError(f"--gpu-index given but no GPU can be read here: {reason}")
    for factory in fallbacks:
        if factory.fallback_for in covered:
            continue
        probe = _safe_probe(factory, options)
        if probe.available:
            chosen.extend(sampler for sampler, _ in _create(factory, options))
        elif factory.name in requested:
            raise ConfigError(f"--sampler {factory.name} cannot read here: {probe.reason}")
    return chosen
