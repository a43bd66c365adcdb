"""Probing and building NVML samplers: the ``FACTORY`` the sampler registry loads.

``probe`` says whether NVML can read here and, if not, why (it never raises); ``create`` builds one sampler
per selected GPU, counter or polling as the GPU allows and ``nvml_mode`` asks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from energybench.errors import ConfigError
from energybench.samplers import SamplerFactory, gpu_share
from energybench.samplers.base import Availability
from energybench.samplers.nvml.errors import (
    FUNCTION_NOT_FOUND,
    NOT_SUPPORTED,
    NvmlError,
    NvmlNotSupportedError,
    NvmlUnavailableError,
    nvml_error,
    unavailable_reason,
)
from energybench.samplers.nvml.library import (
    distribution_problem,
    import_nvml,
    missing_library,
    remember_missing_library,
)
from energybench.samplers.nvml.sampler import (
    METHOD_COUNTER,
    METHOD_POLLING,
    NAME,
    NvmlEnergySampler,
    NvmlGpuSampler,
    NvmlPowerSampler,
    instant_power_mw,
)
from energybench.samplers.nvml.slices import ProcessUtilisation, slice_note, slice_report
from energybench.samplers.nvml.visibility import GpuTarget, Visible, nvml_text, select_targets, visible_gpus

MODES = ("auto", "counter", "polling", "both")


def validate_options(options: Mapping[str, Any]) -> None:
    """Check option types before touching hardware (the CLI can call this first)."""
    indices = options.get("gpu_indices")
    if indices is not None and (
        not isinstance(indices, list | tuple)
        or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in indices)
    ):
        raise ConfigError(f"--gpu-index must be non-negative integers, got {indices!r}")
    mode = options.get("nvml_mode", "auto")
    if mode not in MODES:
        raise ConfigError(f"nvml_mode {mode!r} is not one of {', '.join(MODES)}")


def _identity(nvml: Any, target: GpuTarget, visible: Visible) -> dict[str, Any]:
    handle = target.handle
    where = f"GPU {target.physical_index} ({target.uuid})"

    def call(fn: str, *args: Any) -> Any:
        try:
            return getattr(nvml, fn)(*args)
        except nvml.NVMLError as exc:
            if getattr(exc, "value", None) in (NOT_SUPPORTED, FUNCTION_NOT_FOUND):
                return None
            raise nvml_error(exc, fn, where) from exc

    limit_mw = call("nvmlDeviceGetEnforcedPowerLimit", handle)
    mig_mode = call("nvmlDeviceGetMigMode", handle)
    mig = bool(target.mig_uuids) or bool(mig_mode and mig_mode[0] == 1)
    slices = slice_report(nvml, handle, target.mig_uuids) if mig else []
    return {
        "name": nvml_text(call("nvmlDeviceGetName", handle)),
        "uuid": target.uuid,
        "physical_index": target.physical_index,
        "process_index": target.process_index,
        "cuda_visible_devices": visible.selector,
        "driver_version": nvml_text(call("nvmlSystemGetDriverVersion")),
        "power_limit_w": limit_mw / 1000.0 if limit_mw is not None else None,
        "mig": mig,
        "mig_uuids": list(target.mig_uuids),
        "mig_slices": slices,
    }


def _counter_supported(nvml: Any, handle: Any, where: str) -> bool:
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except nvml.NVMLError as exc:
        if getattr(exc, "value", None) in (NOT_SUPPORTED, FUNCTION_NOT_FOUND):
            return False
        raise nvml_error(exc, "nvmlDeviceGetTotalEnergyConsumption", where) from exc
    return True


def _environ(options: Mapping[str, Any]) -> Mapping[str, str]:
    env = options.get("environ")
    return os.environ if env is None else env


def probe(options: Mapping[str, Any]) -> Availability:
    """Whether NVML can read here; every failure becomes a stated reason (never raises)."""
    try:
        nvml = import_nvml(options)
    except NvmlUnavailableError as exc:
        return Availability(name=NAME, available=False, reason=str(exc))
    problem = None if options.get("nvml_module") is not None else distribution_problem()
    if not hasattr(nvml, "nvmlDeviceGetTotalEnergyConsumption"):
        return Availability(name=NAME, available=False, reason=problem or "pynvml is too old: upgrade nvidia-ml-py")
    real = options.get("nvml_module") is None
    known_missing = missing_library() if real else None
    if known_missing:
        return Availability(name=NAME, available=False, reason=known_missing)
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        reason = unavailable_reason(exc)
        if real and getattr(exc, "value", None) == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", object()):
            remember_missing_library(reason)
        return Availability(name=NAME, available=False, reason=reason)
    try:
        visible = visible_gpus(nvml, _environ(options))
        if not visible.targets:
            if visible.selector is not None:
                reason = (
                    f"CUDA_VISIBLE_DEVICES={visible.selector!r} hides every GPU from this process: "
                    "unset it or list a GPU"
                )
            else:
                reason = "NVML found no NVIDIA GPU"
            return Availability(name=NAME, available=False, reason=reason)
        gpus = {}
        for t in visible.targets:
            where = f"GPU {t.physical_index} ({t.uuid})"
            gpus[f"gpu:{t.process_index}"] = {
                "name": nvml_text(nvml.nvmlDeviceGetName(t.handle)),
                "uuid": t.uuid,
                "method": METHOD_COUNTER if _counter_supported(nvml, t.handle, where) else METHOD_POLLING,
                "mig": bool(t.mig_uuids),
            }
    except nvml.NVMLError as exc:
        return Availability(name=NAME, available=False, reason=f"NVML query failed: {exc}")
    except NvmlError as exc:
        return Availability(name=NAME, available=False, reason=str(exc))
    finally:
        nvml.nvmlShutdown()
    details: dict[str, Any] = {"gpus": gpus}
    warnings = list(visible.warnings) + ([problem] if problem else [])
    if warnings:
        details["warnings"] = warnings
    return Availability(name=NAME, available=True, source="measured", domains=tuple(gpus), details=details)


def create(options: Mapping[str, Any]) -> list[NvmlGpuSampler]:
    """One sampler per selected GPU (two per GPU with ``nvml_mode="both"``).

    Raises ``ConfigError`` for a nonexistent ``--gpu-index`` and ``NvmlError`` subclasses for NVML
    failures, each with a one-line message.
    """
    validate_options(options)
    nvml = import_nvml(options)
    mode = options.get("nvml_mode", "auto")
    problem = None if options.get("nvml_module") is not None else distribution_problem()
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise NvmlUnavailableError(f"cannot start NVML: {unavailable_reason(exc)}") from exc
    samplers: list[NvmlGpuSampler] = []
    try:
        visible = visible_gpus(nvml, _environ(options))
        targets = select_targets(visible, options.get("gpu_indices"))
        warnings = list(visible.warnings) + ([problem] if problem else [])
        for target in targets:
            samplers.extend(_build(nvml, target, visible, mode, warnings, options))
    except nvml.NVMLError as exc:
        for s in samplers:
            s.close()
        raise nvml_error(exc, "device discovery", "this machine") from exc
    except Exception:
        for s in samplers:
            s.close()
        raise
    finally:
        nvml.nvmlShutdown()
    return samplers


def _build(
    nvml: Any, target: GpuTarget, visible: Visible, mode: str, warnings: list[str], options: Mapping[str, Any]
) -> list[NvmlGpuSampler]:
    identity = _identity(nvml, target, visible)
    key = f"gpu:{target.process_index}"
    notes = list(warnings)
    if identity["mig"]:
        notes.append(
            f"{key} ({identity['name']}) has MIG enabled: NVML reports the whole GPU's energy, shared by "
            "every slice and process on it, not this slice's"
        )
        notes.extend(slice_note(key, entry) for entry in identity["mig_slices"])
    where = f"GPU {target.physical_index} ({target.uuid})"
    has_counter = _counter_supported(nvml, target.handle, where)
    if mode == "counter" and not has_counter:
        raise NvmlNotSupportedError(
            f"{key} ({identity['name']}) has no NVML energy counter (Volta or newer needed): "
            "use nvml_mode 'auto' or 'polling'"
        )
    use_field = instant_power_mw(nvml, target.handle, where=where) is not None
    polling_details = {
        "power_source": "NVML_FI_DEV_POWER_INSTANT" if use_field else "nvmlDeviceGetPowerUsage (1 s average)",
    }
    out: list[NvmlGpuSampler] = []
    clock = options.get("clock") or time.monotonic
    common: dict[str, Any] = {"identity": identity, "warnings": notes, "clock": clock}
    if has_counter and mode in ("auto", "counter", "both"):
        out.append(NvmlEnergySampler(nvml, target, key=key, share=_share(nvml, target, key, options, notes), **common))
    if mode == "polling" or (mode == "auto" and not has_counter) or mode == "both":
        polled_key = f"{key}-polled" if mode == "both" and has_counter else key
        out.append(
            NvmlPowerSampler(
                nvml,
                target,
                use_field=use_field,
                key=polled_key,
                counted=polled_key == key,
                extra_details=polling_details,
                share=_share(nvml, target, key, options, notes) if polled_key == key else None,
                **common,
            )
        )
    return out


def _share(
    nvml: Any, target: GpuTarget, key: str, options: Mapping[str, Any], notes: list[str]
) -> gpu_share.GpuShare | None:
    """This process tree's share of the GPU (``samplers.gpu_share``) when asked for and NVML can say who used
    it; otherwise ``None`` with the reason among the sampler's warnings."""
    if not gpu_share.enabled(options):
        return None
    where = f"{key} (GPU {target.physical_index}, {target.uuid})"
    source = ProcessUtilisation(nvml, target.handle, where)
    try:
        source()  # NVML answers now or never: a MIG-enabled GPU or an old driver has no per-process samples
    except gpu_share.ShareUnavailable as exc:
        notes.append(f"{gpu_share.share_key(key)} n/a: {exc}; the figure for {key} is the whole GPU's")
        return None
    mine = options.get("gpu_share_pids") or gpu_share.this_process_tree
    return gpu_share.GpuShare(key, source, mine=mine, clock=options.get("clock") or time.monotonic)


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create)
