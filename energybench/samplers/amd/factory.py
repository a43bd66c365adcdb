"""Probing and building amdsmi samplers: the ``FACTORY`` the sampler registry loads as ``amd``.

``probe`` says whether amdsmi can read here and, if not, why (it never raises); ``create`` builds one sampler
per visible GPU: the energy counter where it answers (``amd_mode="auto"``), polled power where it does not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from energybench.errors import ConfigError
from energybench.samplers import SamplerFactory, gpu_share
from energybench.samplers.amd.errors import (
    NOT_SUPPORTED,
    NOT_YET_IMPLEMENTED,
    AmdNotSupportedError,
    AmdSmiError,
    AmdUnavailableError,
    amd_error,
    error_code,
    unavailable_reason,
)
from energybench.samplers.amd.library import binding_version, import_amdsmi
from energybench.samplers.amd.processes import NOTE as SHARE_NOTE
from energybench.samplers.amd.processes import ProcessUsage
from energybench.samplers.amd.sampler import (
    METHOD_COUNTER,
    METHOD_POLLING,
    NAME,
    POWER_FIELDS,
    AmdEnergySampler,
    AmdGpuSampler,
    AmdPowerSampler,
    energy_fields,
    power_watts,
)
from energybench.samplers.amd.visibility import AmdTarget, AmdVisible, hidden_reason, visible_gpus
from energybench.samplers.base import Availability

MODES = ("auto", "counter", "polling", "both")


def _environ(options: Mapping[str, Any]) -> Mapping[str, str]:
    env = options.get("environ")
    return os.environ if env is None else env


def _optional(amdsmi: Any, fn: str, *args: Any) -> Any:
    """An identity call that some GPUs, drivers or older bindings lack: ``None`` then."""
    call = getattr(amdsmi, fn, None)
    if call is None:
        return None
    try:
        return call(*args)
    except amdsmi.AmdSmiException as exc:
        if error_code(exc) in (NOT_SUPPORTED, NOT_YET_IMPLEMENTED, None):
            return None
        raise


def counter_resolution(amdsmi: Any, handle: Any) -> float | None:
    """The accumulator's microjoules per count where the counter answers with numbers, else ``None``."""
    info = _optional(amdsmi, "amdsmi_get_energy_count", handle)
    fields = energy_fields(info) if isinstance(info, Mapping) else None
    return fields[1] if fields else None


def power_field(amdsmi: Any, handle: Any) -> str | None:
    """The first ``amdsmi_get_power_info`` field holding watts on this GPU (instant before average)."""
    info = _optional(amdsmi, "amdsmi_get_power_info", handle)
    if not isinstance(info, Mapping):
        return None
    return next((f for f in POWER_FIELDS if power_watts(info, f) is not None), None)


def identity(amdsmi: Any, target: AmdTarget, visible: AmdVisible, real: bool) -> dict[str, Any]:
    handle = target.handle
    asic = _optional(amdsmi, "amdsmi_get_gpu_asic_info", handle) or {}
    cap = _optional(amdsmi, "amdsmi_get_power_cap_info", handle) or {}
    driver = _optional(amdsmi, "amdsmi_get_gpu_driver_info", handle) or {}
    cap_uw = cap.get("power_cap")
    return {
        "name": str(asic.get("market_name") or "AMD GPU"),
        "uuid": target.uuid,
        "hip_index": target.hip_index,
        "process_index": target.process_index,
        "bdf": _optional(amdsmi, "amdsmi_get_gpu_device_bdf", handle),
        "driver_version": driver.get("driver_version"),
        "power_cap_w": cap_uw / 1e6 if isinstance(cap_uw, int | float) and cap_uw > 0 else None,
        "compute_partition": _optional(amdsmi, "amdsmi_get_gpu_compute_partition", handle),
        "visible_devices": dict(visible.selectors),
        "amdsmi_version": binding_version() if real else None,
    }


def _hardware_notes(key: str, ident: Mapping[str, Any]) -> list[str]:
    notes = []
    if "MI250" in str(ident["name"]):
        notes.append(f"{key} ({ident['name']}) is one of two dies of an MI250/MI250X package: amdsmi reports the "
                     "package's power and energy on one die and none on the other, so the figure covers both")
    partition = str(ident.get("compute_partition") or "SPX").upper()
    if partition not in ("SPX", "N/A", ""):
        notes.append(f"{key} is a {partition} compute partition: amdsmi's energy and power are the whole "
                     "accelerator's, shared by every partition on it, not this partition's")
    return notes


def probe(options: Mapping[str, Any]) -> Availability:
    """Whether amdsmi can read here; every failure becomes a stated reason (never raises)."""
    try:
        amdsmi = import_amdsmi(options)
    except AmdUnavailableError as exc:
        return Availability(name=NAME, available=False, reason=str(exc))
    try:
        amdsmi.amdsmi_init()
    except amdsmi.AmdSmiException as exc:
        return Availability(name=NAME, available=False, reason=unavailable_reason(exc))
    try:
        visible = visible_gpus(amdsmi, _environ(options))
        if not visible.targets:
            reason = hidden_reason(visible) if visible.selectors else "amdsmi found no AMD GPU"
            return Availability(name=NAME, available=False, reason=reason)
        gpus = {f"gpu:{t.process_index}": {
            "name": (_optional(amdsmi, "amdsmi_get_gpu_asic_info", t.handle) or {}).get("market_name"),
            "uuid": t.uuid,
            "method": METHOD_COUNTER if counter_resolution(amdsmi, t.handle) else METHOD_POLLING,
        } for t in visible.targets}
    except amdsmi.AmdSmiException as exc:
        return Availability(name=NAME, available=False, reason=str(amd_error(exc, "query", "this machine")))
    finally:
        amdsmi.amdsmi_shut_down()
    details: dict[str, Any] = {"gpus": gpus}
    if visible.warnings:
        details["warnings"] = list(visible.warnings)
    return Availability(name=NAME, available=True, source="measured", domains=tuple(gpus), details=details)


def create(options: Mapping[str, Any]) -> list[AmdGpuSampler]:
    """One sampler per visible GPU (two with ``amd_mode="both"``); ``ConfigError`` for a bad mode or a
    ``--gpu-index`` that does not exist, ``AmdSmiError`` subclasses for amdsmi failures."""
    mode = options.get("amd_mode", "auto")
    if mode not in MODES:
        raise ConfigError(f"amd_mode {mode!r} is not one of {', '.join(MODES)}")
    amdsmi = import_amdsmi(options)
    try:
        amdsmi.amdsmi_init()
    except amdsmi.AmdSmiException as exc:
        raise AmdUnavailableError(f"cannot start amdsmi: {unavailable_reason(exc)}") from exc
    samplers: list[AmdGpuSampler] = []
    try:
        visible = visible_gpus(amdsmi, _environ(options))
        for target in _select(visible, options.get("gpu_indices")):
            samplers.extend(_build(amdsmi, target, visible, mode, options))
    except amdsmi.AmdSmiException as exc:
        for s in samplers:
            s.close()
        raise amd_error(exc, "device discovery", "this machine") from exc
    except Exception:
        for s in samplers:
            s.close()
        raise
    finally:
        amdsmi.amdsmi_shut_down()
    return samplers


def _select(visible: AmdVisible, indices: Any) -> list[AmdTarget]:
    if indices is None:
        return list(visible.targets)
    by_index = {t.process_index: t for t in visible.targets}
    missing = [i for i in indices if i not in by_index]
    if missing:
        seen = ", ".join(str(i) for i in sorted(by_index)) or "none"
        raise ConfigError(f"--gpu-index {missing[0]!r} does not exist: this process sees {len(by_index)} AMD "
                          f"GPU(s) (indices: {seen}); pass one of those")
    return [by_index[i] for i in dict.fromkeys(indices)]


def _build(amdsmi: Any, target: AmdTarget, visible: AmdVisible, mode: str,
           options: Mapping[str, Any]) -> list[AmdGpuSampler]:
    key = f"gpu:{target.process_index}"
    ident = identity(amdsmi, target, visible, options.get("amdsmi_module") is None)
    notes = list(visible.warnings) + _hardware_notes(key, ident)
    resolution = counter_resolution(amdsmi, target.handle)
    field = power_field(amdsmi, target.handle)
    if mode == "counter" and resolution is None:
        raise AmdNotSupportedError(f"{key} ({ident['name']}) has no amdsmi energy counter here (virtual machines "
                                   "and some GPUs lack it): use amd_mode 'auto' or 'polling'")
    if resolution is None and field is None:
        raise AmdNotSupportedError(f"{key} ({ident['name']}): amdsmi offers neither an energy counter nor a power "
                                   "figure for it (a virtual-machine guest?): it cannot be measured here")
    clock = options.get("clock") or time.monotonic
    common: dict[str, Any] = {"identity": ident, "warnings": notes, "clock": clock}
    out: list[AmdGpuSampler] = []
    if resolution is not None and mode in ("auto", "counter", "both"):
        out.append(AmdEnergySampler(amdsmi, target, key=key, counter_resolution_uj=resolution,
                                    share=_share(amdsmi, target, key, options, notes, resolution), **common))
    if field is not None and (mode == "polling" or mode == "both" or (mode == "auto" and resolution is None)):
        polled = f"{key}-polled" if mode == "both" and resolution is not None else key
        out.append(AmdPowerSampler(amdsmi, target, key=polled, counted=polled == key, field=field,
                                   share=_share(amdsmi, target, key, options, notes, None) if polled == key
                                   else None, **common))
    if not out:
        raise AmdNotSupportedError(f"{key} ({ident['name']}): amd_mode {mode!r} needs a power figure amdsmi does "
                                   "not give for it: use amd_mode 'auto'")
    return out


def _share(amdsmi: Any, target: AmdTarget, key: str, options: Mapping[str, Any], notes: list[str],
           resolution: float | None) -> gpu_share.GpuShare | None:
    """This process tree's share of the GPU when asked for and amdsmi lists its processes; else the reason."""
    if not gpu_share.enabled(options):
        return None
    source = ProcessUsage(amdsmi, target.handle, f"{key} ({target.uuid})")
    try:
        source()
    except gpu_share.ShareUnavailable as exc:
        notes.append(f"{gpu_share.share_key(key)} n/a: {exc}; the figure for {key} is the whole GPU's")
        return None
    except AmdSmiError as exc:
        notes.append(f"{gpu_share.share_key(key)} n/a: {exc}")
        return None
    max_value = float(2**64) * resolution / 1e6 if resolution else None
    return gpu_share.GpuShare(key, source, mine=options.get("gpu_share_pids") or gpu_share.this_process_tree,
                              max_value=max_value, clock=options.get("clock") or time.monotonic, note=SHARE_NOTE)


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create)
