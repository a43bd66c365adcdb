"""Who used the GPU and what a MIG slice can say for itself: NVML's per-process and per-slice reads.

* ``ProcessUtilisation``: the share source (``samplers.gpu_share``) for one GPU: SM utilisation per process
  from ``nvmlDeviceGetProcessUtilization``, as busy weights since the previous call.
* ``slice_report``: for each MIG slice a job was given, which figures NVML answers for the slice itself and
  which only for the whole GPU. It is asked of the driver, not assumed, because it differs by driver and GPU;
  on the drivers of 2024-2026 energy and power are the whole GPU's only, so a slice's energy can never be
  measured, only attributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from energybench.samplers.gpu_share import ShareUnavailable
from energybench.samplers.nvml.errors import GPU_IS_LOST, NOT_FOUND, nvml_error
from energybench.samplers.nvml.visibility import nvml_text

#: An SM-utilisation sample above 100 % is NVML's "no value", not work.
MAX_UTIL_PCT = 100


class ProcessUtilisation:
    """SM-utilisation samples per process since the previous call (a ``gpu_share`` source).

    NVML keeps a buffer of samples per process and returns those newer than the timestamp passed in (CPU
    microseconds); none newer is ``NVML_ERROR_NOT_FOUND``, which means nobody was busy, not a failure.
    """

    def __init__(self, nvml: Any, handle: Any, where: str) -> None:
        self._nvml, self._handle, self._where = nvml, handle, where
        self._last_seen = 0

    def __call__(self) -> dict[int, float]:
        nvml = self._nvml
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(self._handle, self._last_seen)
        except nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code == NOT_FOUND:
                return {}
            if code == GPU_IS_LOST:
                raise nvml_error(exc, "nvmlDeviceGetProcessUtilization", self._where) from exc
            raise ShareUnavailable(f"NVML gives no per-process utilisation for {self._where} ({exc})") from exc
        weights: dict[int, float] = {}
        newest = self._last_seen
        for sample in samples:
            stamp = int(sample.timeStamp)
            if stamp <= self._last_seen or int(sample.smUtil) > MAX_UTIL_PCT:
                continue
            weights[int(sample.pid)] = weights.get(int(sample.pid), 0.0) + float(sample.smUtil)
            newest = max(newest, stamp)
        self._last_seen = newest
        return weights


# What each per-slice question is, and the call that asks it.
_SLICE_CALLS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("energy", "nvmlDeviceGetTotalEnergyConsumption", ()),
    ("power", "nvmlDeviceGetPowerUsage", ()),
    ("utilisation", "nvmlDeviceGetUtilizationRates", ()),
    ("process utilisation", "nvmlDeviceGetProcessUtilization", (0,)),
    ("memory", "nvmlDeviceGetMemoryInfo", ()),
)


def _slice_handles(nvml: Any, parent: Any, tokens: Sequence[str]) -> list[tuple[str, Any]]:
    """(UUID, handle) of each slice named by ``tokens`` (full UUIDs or unique prefixes, as CUDA accepts), or of
    every slice on ``parent`` when no token names one (a MIG-enabled GPU selected by index)."""
    slices: list[tuple[str, Any]] = []
    try:
        count = nvml.nvmlDeviceGetMaxMigDeviceCount(parent)
    except nvml.NVMLError:
        return []
    for slot in range(count):
        try:
            handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot)
            slices.append((nvml_text(nvml.nvmlDeviceGetUUID(handle)), handle))
        except nvml.NVMLError:
            continue
    if not tokens:
        return slices
    return [(uuid, h) for uuid, h in slices if any(uuid.startswith(t) for t in tokens)]


def slice_report(nvml: Any, parent: Any, tokens: Sequence[str]) -> list[dict[str, Any]]:
    """Per slice: the figures NVML answers for the slice itself, and why each other one is the whole GPU's."""
    report = []
    for uuid, handle in _slice_handles(nvml, parent, tokens):
        readable: list[str] = []
        not_readable: dict[str, str] = {}
        for what, call, extra in _SLICE_CALLS:
            try:
                getattr(nvml, call)(handle, *extra)
                readable.append(what)
            except nvml.NVMLError as exc:
                if getattr(exc, "value", None) == NOT_FOUND and what == "process utilisation":
                    readable.append(what)  # answered: no samples yet
                else:
                    not_readable[what] = str(exc)
        report.append({"uuid": uuid, "readable": readable, "not_readable": not_readable})
    return report


def slice_note(key: str, entry: dict[str, Any]) -> str:
    """One line per slice for the result's warnings."""
    readable = ", ".join(entry["readable"]) or "nothing"
    missing = ", ".join(entry["not_readable"]) or "nothing"
    return (
        f"{key} MIG slice {entry['uuid']}: NVML reads per slice: {readable}; not per slice: {missing} "
        "(those are the whole GPU's, shared by every slice: the energy figure is the GPU's, not the slice's)"
    )
