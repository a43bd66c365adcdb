"""Which AMD GPUs this process sees, numbered as HIP (and so torch) numbers them.

amdsmi lists GPUs in its own order; HIP numbers them in the ROCr runtime's order, then hides and renumbers
them by ``ROCR_VISIBLE_DEVICES`` (applied first, by the runtime: indices or ``GPU-`` UUIDs) and then
``HIP_VISIBLE_DEVICES`` (indices into what ROCr left), for which HIP also honours ``CUDA_VISIBLE_DEVICES``
when ``HIP_VISIBLE_DEVICES`` is unset. Getting that wrong would measure the wrong GPU silently, so the whole
mapping lives here. amdsmi 6.4+ says each GPU's HIP number (``amdsmi_get_gpu_enumeration_info``); with an
older binding the amdsmi order is used and a warning says it may differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROCR_ENV = "ROCR_VISIBLE_DEVICES"
HIP_ENV = "HIP_VISIBLE_DEVICES"
CUDA_ENV = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class AmdTarget:
    """One AMD GPU as this process sees it: ``process_index`` is ``cuda:N`` in a ROCm torch."""

    process_index: int
    hip_index: int  # in the runtime's order before any *_VISIBLE_DEVICES
    uuid: str
    handle: Any
    hip_uuid: str = ""


@dataclass
class AmdVisible:
    targets: list[AmdTarget] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    selectors: dict[str, str] = field(default_factory=dict)  # the visibility variables as found


def _enumerated(amdsmi: Any) -> tuple[list[AmdTarget], list[str]]:
    """Every GPU amdsmi sees, in HIP's order where amdsmi says it."""
    handles = list(amdsmi.amdsmi_get_processor_handles())
    rows: list[tuple[int, str, Any, str]] = []
    warnings: list[str] = []
    for position, handle in enumerate(handles):
        uuid = str(amdsmi.amdsmi_get_gpu_device_uuid(handle))
        info = _enumeration_info(amdsmi, handle)
        hip_id = info.get("hip_id")
        if not isinstance(hip_id, int):
            hip_id = None
        rows.append((position if hip_id is None else hip_id, uuid, handle, str(info.get("hip_uuid") or "")))
        if hip_id is None and not warnings:
            warnings.append(
                "amdsmi does not say how HIP numbers the GPUs (binding older than 6.4): amdsmi's order is used, "
                "which can differ from torch's cuda:N; check `amd-smi list` against `rocm-smi`"
            )
    rows.sort(key=lambda r: r[0])
    return [AmdTarget(i, hip, uuid, h, hip_uuid) for i, (hip, uuid, h, hip_uuid) in enumerate(rows)], warnings


def _enumeration_info(amdsmi: Any, handle: Any) -> Mapping[str, Any]:
    call = getattr(amdsmi, "amdsmi_get_gpu_enumeration_info", None)
    if call is None:
        return {}
    try:
        return dict(call(handle))
    except amdsmi.AmdSmiException:
        return {}


def _match(token: str, pool: list[AmdTarget]) -> AmdTarget | None:
    if token.lstrip("-").isdigit():
        index = int(token)
        return pool[index] if 0 <= index < len(pool) else None
    wanted = token.lower()
    found = [t for t in pool if (t.hip_uuid and t.hip_uuid.lower().startswith(wanted)) or
             t.uuid.lower().startswith(wanted.removeprefix("gpu-"))]
    return found[0] if len(found) == 1 else None


def _mask(pool: list[AmdTarget], name: str, value: str, warnings: list[str]) -> list[AmdTarget]:
    """Apply one visibility variable: an empty value hides everything; an entry that matches no GPU ends the
    list (the runtimes ignore it and every entry after it, as CUDA does)."""
    chosen: list[AmdTarget] = []
    for token in [t.strip() for t in value.split(",")] if value.strip() else []:
        target = _match(token, pool)
        if target is None:
            warnings.append(f"{name} entry {token!r} matches no AMD GPU: it and every entry after it are ignored")
            break
        if target not in chosen:
            chosen.append(target)
    return chosen


def visible_gpus(amdsmi: Any, environ: Mapping[str, str]) -> AmdVisible:
    """The GPUs this process sees after ``ROCR_VISIBLE_DEVICES`` then ``HIP_VISIBLE_DEVICES`` (or
    ``CUDA_VISIBLE_DEVICES``), renumbered from 0 as HIP does."""
    pool, warnings = _enumerated(amdsmi)
    out = AmdVisible(warnings=warnings)
    if ROCR_ENV in environ:
        out.selectors[ROCR_ENV] = environ[ROCR_ENV]
        pool = _mask(pool, ROCR_ENV, environ[ROCR_ENV], out.warnings)
    second = HIP_ENV if HIP_ENV in environ else CUDA_ENV if CUDA_ENV in environ else None
    if second is not None:
        out.selectors[second] = environ[second]
        pool = _mask(pool, second, environ[second], out.warnings)
    out.targets = [AmdTarget(i, t.hip_index, t.uuid, t.handle, t.hip_uuid) for i, t in enumerate(pool)]
    return out


def hidden_reason(visible: AmdVisible) -> str:
    """Why no GPU is visible although amdsmi found some: the variable that hid them."""
    named = ", ".join(f"{k}={v!r}" for k, v in visible.selectors.items())
    return f"{named} hides every AMD GPU from this process: unset it or list a GPU"
