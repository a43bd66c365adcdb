"""Which physical GPUs this process sees: ``CUDA_VISIBLE_DEVICES`` resolved the way CUDA resolves it.

NVML numbers GPUs physically; the user's ``--gpu-index`` and CUDA number them as the process sees them, after
``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` UUID prefixes, ``MIG-`` slices). Getting that mapping wrong would
measure the wrong GPU silently, so it lives here, whole, with CUDA's own rules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from energybench.errors import ConfigError


@dataclass(frozen=True)
class GpuTarget:
    """One physical GPU as this process sees it.

    ``process_index`` is CUDA's number for it in this process (after ``CUDA_VISIBLE_DEVICES``);
    ``physical_index`` is NVML's. ``mig_uuids`` lists the MIG slices through which it was selected: the
    energy NVML reports is then still the whole GPU's.
    """

    process_index: int
    physical_index: int
    uuid: str
    handle: Any
    mig_uuids: tuple[str, ...] = ()


@dataclass
class Visible:
    targets: list[GpuTarget] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    selector: str | None = None  # CUDA_VISIBLE_DEVICES as found, None when unset


def nvml_text(value: Any) -> str:
    """NVML strings as ``str`` (some bindings return ``bytes``)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _flag(value: Any) -> bool:
    """NVML returns some booleans as ctypes ints (``nvmlDeviceIsMigDeviceHandle`` returns a ``c_uint``)."""
    return bool(getattr(value, "value", value))


def visible_gpus(nvml: Any, environ: Mapping[str, str] | None = None) -> Visible:
    """Resolve ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-`` UUID prefixes, ``MIG-`` UUIDs) to physical GPUs.

    CUDA's own rules are followed: an entry that matches no device ends the list (CUDA ignores it and every
    entry after it), and an empty value hides every GPU. Several MIG slices of one GPU collapse into one
    target, since NVML can only measure the whole GPU.
    """
    env = os.environ if environ is None else environ
    count = nvml.nvmlDeviceGetCount()
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    uuids = [nvml_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
    selector = env.get("CUDA_VISIBLE_DEVICES")
    out = Visible(selector=selector)
    if selector is None:
        out.targets = [GpuTarget(i, i, uuids[i], handles[i]) for i in range(count)]
        return out
    physical: list[int] = []
    migs: dict[int, list[str]] = {}
    for token in [t.strip() for t in selector.split(",")] if selector.strip() else []:
        found, mig = _resolve_token(nvml, token, handles, uuids)
        if found is None:
            out.warnings.append(
                f"CUDA_VISIBLE_DEVICES entry {token!r} matches no GPU: CUDA ignores it and every entry after it"
            )
            break
        if found not in physical:
            physical.append(found)
        if mig:
            migs.setdefault(found, []).append(mig)
    for process_index, phys in enumerate(physical):
        out.targets.append(GpuTarget(process_index, phys, uuids[phys], handles[phys], tuple(migs.get(phys, ()))))
    return out


def _resolve_token(nvml: Any, token: str, handles: list[Any], uuids: list[str]) -> tuple[int | None, str]:
    if token.lstrip("-").isdigit():
        index = int(token)
        return (index if 0 <= index < len(handles) else None), ""
    if token.startswith("GPU-"):
        matches = [i for i, u in enumerate(uuids) if u.startswith(token)]
        return (matches[0] if len(matches) == 1 else None), ""
    if token.startswith("MIG-GPU-"):  # legacy form MIG-GPU-<uuid>/<gi>/<ci>
        parent = token[len("MIG-") :].split("/")[0]
        matches = [i for i, u in enumerate(uuids) if u == parent]
        return (matches[0] if matches else None), token
    if token.startswith("MIG-"):
        return _resolve_mig(nvml, token, handles, uuids), token
    return None, ""


def _resolve_mig(nvml: Any, token: str, handles: list[Any], uuids: list[str]) -> int | None:
    """The physical GPU that owns MIG slice ``token`` (a full UUID or, as CUDA allows, a unique prefix)."""
    error = nvml.NVMLError
    try:
        mig_handle = nvml.nvmlDeviceGetHandleByUUID(token)
        if _flag(nvml.nvmlDeviceIsMigDeviceHandle(mig_handle)):
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig_handle)
            return uuids.index(nvml_text(nvml.nvmlDeviceGetUUID(parent)))
    except (error, ValueError):
        pass  # not a full UUID this driver knows: scan the slices for a prefix match
    owners = []
    for index, handle in enumerate(handles):
        try:
            slots = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
        except error:
            continue
        for slot in range(slots):
            try:
                mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except error:
                continue
            if nvml_text(nvml.nvmlDeviceGetUUID(mig)).startswith(token):
                owners.append(index)
    return owners[0] if len(owners) == 1 else None


def select_targets(visible: Visible, gpu_indices: Sequence[int] | None) -> list[GpuTarget]:
    """Apply ``--gpu-index`` (process indices); an index that does not exist is a ``ConfigError``."""
    if gpu_indices is None:
        return list(visible.targets)
    by_index = {t.process_index: t for t in visible.targets}
    chosen = []
    for index in gpu_indices:
        if isinstance(index, bool) or not isinstance(index, int) or index not in by_index:
            seen = ", ".join(str(i) for i in sorted(by_index)) or "none"
            under = f" under CUDA_VISIBLE_DEVICES={visible.selector!r}" if visible.selector is not None else ""
            raise ConfigError(
                f"--gpu-index {index!r} does not exist: this process sees {len(by_index)} GPU(s){under} "
                f"(indices: {seen}); pass one of those"
            )
        if by_index[index] not in chosen:
            chosen.append(by_index[index])
    return chosen
