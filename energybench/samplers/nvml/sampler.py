"""The NVML samplers: one per physical GPU, reading its energy counter or polling its power.

``NvmlEnergySampler`` reads the cumulative counter at window edges (``kind="counter"``); ``NvmlPowerSampler``
is polled by the meter (``kind="power"``). Both share identity, typed errors, CUDA synchronisation at edges
and activity samples (utilisation, memory) in ``NvmlGpuSampler``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from energybench.samplers.base import BaseSampler, Domain, Kind
from energybench.samplers.gpu_share import GpuShare
from energybench.samplers.nvml.errors import GPU_IS_LOST, nvml_error
from energybench.samplers.nvml.visibility import GpuTarget
from energybench.samplers.torch_sync import synchronize_cuda_device

NAME = "nvml"
METHOD_COUNTER = "nvml-energy-counter"
METHOD_POLLING = "nvml-power-polling"
COUNTER_RESOLUTION_S = 0.1  # the energy counter's update period (NVML docs: "updated every ~100 ms")
INSTANT_POWER_RESOLUTION_S = 0.1
AVERAGE_POWER_RESOLUTION_S = 1.0  # nvmlDeviceGetPowerUsage is a 1 s average on Ampere+
MAX_ACTIVITY_SAMPLES = 100_000
#: A GPU draws above its enforced power limit only in brief excursions: over one counter update (0.1 s) or
#: more, twice the limit is already impossible, so a step that implies more is a fault, not energy.
POWER_LIMIT_HEADROOM = 2.0
#: The most one GPU can draw when NVML states no power limit: about twice the largest board of 2026.
PHYSICAL_MAX_W = 3000.0
#: A counter reading above what the GPU could draw at its power bound in this many seconds (ten years
#: since the driver loaded) is a fault, not energy.
MAX_COUNTER_AGE_S = 10 * 365 * 86400


@dataclass(frozen=True)
class Activity:
    """One utilisation/memory reading (``t`` is ``time.monotonic()``)."""

    t: float
    gpu_pct: float | None
    mem_bw_pct: float | None
    mem_used_b: float | None
    mem_total_b: float | None


class NvmlGpuSampler(BaseSampler):
    """Shared parts of both NVML samplers: identity, typed errors, activity samples, NVML refcount."""

    name = NAME

    def __init__(
        self,
        nvml: Any,
        target: GpuTarget,
        *,
        key: str,
        method: str,
        identity: Mapping[str, Any],
        counted: bool = True,
        warnings: Sequence[str] = (),
        extra_details: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        share: GpuShare | None = None,
    ) -> None:
        nvml.nvmlInit()  # NVML is reference counted: each sampler holds one reference until close()
        self.name = f"{NAME}:{key}"  # unique per sampler: the meter keys its readings by sampler name
        self._nvml = nvml
        self.clock = clock  # the time source window_stats bounds are in
        self._open = True
        self.target = target
        self.key = key
        self.method = method
        self.identity = dict(identity)
        self._counted = counted
        self._notes: list[str] = list(warnings)
        self._reported = 0
        self._activity: deque[Activity] = deque(maxlen=MAX_ACTIVITY_SAMPLES)
        self._activity_ok = True
        self.share = share  # this process tree's part of a shared GPU (samplers.gpu_share), when asked for
        details = dict(self.identity)
        details["resolution_s"] = self.resolution_s
        if target.mig_uuids or self.identity.get("mig"):
            details["mig_note"] = "MIG enabled: the energy is the whole GPU's, shared by every slice on it"
        details.update(extra_details or {})
        limit = self.identity.get("power_limit_w")
        if isinstance(limit, int | float) and limit > 0:
            details["power_bound_w"] = float(limit) * POWER_LIMIT_HEADROOM
            details["power_bound_source"] = f"{POWER_LIMIT_HEADROOM:g} x the enforced power limit"
        else:
            details["power_bound_w"] = PHYSICAL_MAX_W
            details["power_bound_source"] = "physical bound (NVML states no power limit)"
        self._details = details
        if share is not None:
            share.max_power_w = self._power_bound

    # -- protocol --------------------------------------------------------------------------------------
    def domains(self) -> list[Domain]:
        own = Domain(
            key=self.key,
            source="measured",
            method=self.method,
            max_value=None,  # never wraps: going backwards is a reset (driver reload)
            counted=self._counted,
            details=dict(self._details),
            max_power_w=self._power_bound,
        )
        return [own] if self.share is None else [own, self.share.domain()]

    def read(self) -> dict[str, float]:
        """Joules (counter) or watts (power) of this GPU: each concrete sampler reads its own NVML figure."""
        raise NotImplementedError

    def on_edge(self) -> None:
        """Let queued CUDA kernels finish before the edge read, so they count in the right window (the rules,
        shared by every vendor, are in ``samplers.torch_sync``); a shared GPU's share finds this process
        tree's workers afresh."""
        synchronize_cuda_device(self.target.process_index)
        if self.share is not None:
            self.share.rescan()

    def metadata(self) -> dict[str, Any]:
        """Identity (name, UUID, driver, power limit, MIG) and warnings; the meter adds each window's activity."""
        info = dict(self.identity)
        info["domain"] = self.key
        info["method"] = self.method
        if self._notes:
            info["warnings"] = list(self._notes)
        return info

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # shutting down a lost GPU's NVML must not hide the figures already taken

    # -- activity extras of the protocol (clock, window_stats) and take_warnings ---------------------------
    def take_warnings(self) -> list[str]:
        """Warnings raised since the last call (counter reset, activity not supported...), each once."""
        fresh = self._notes[self._reported :]
        self._reported = len(self._notes)
        return fresh + (self.share.take_warnings() if self.share is not None else [])


    def window_stats(self, start: float, end: float) -> dict[str, Any]:
        """Mean utilisation and memory use over ``[start, end]`` (seconds of ``clock``). Samples are taken at
        every ``read()``: both edges, and each background poll. The meter asks for each window's own span.
        """
        rows = [a for a in self._activity if start <= a.t <= end]

        def mean(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return sum(known) / len(known) if known else None

        used = [a.mem_used_b for a in rows if a.mem_used_b is not None]
        stats: dict[str, Any] = {
            "samples": len(rows),
            "gpu_util_mean_pct": mean([a.gpu_pct for a in rows]),
            "memory_bw_util_mean_pct": mean([a.mem_bw_pct for a in rows]),
            "memory_used_mean_bytes": mean(list(used)),
            "memory_used_max_bytes": max(used) if used else None,
            "memory_total_bytes": next((a.mem_total_b for a in rows if a.mem_total_b), None),
        }
        if self.share is not None:
            stats["shared_gpu"] = self.share.window_stats(start, end)
        return stats

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def _power_bound(self) -> float:
        """The most this GPU can draw (``Domain.max_power_w``): kept in the domain's details, said once."""
        return float(self._details["power_bound_w"])

    def _where(self) -> str:
        return f"{self.key} ({self.identity.get('name')}, {self.target.uuid})"

    def _call(self, fn: str, *args: Any) -> Any:
        try:
            return getattr(self._nvml, fn)(*args)
        except self._nvml.NVMLError as exc:
            raise nvml_error(exc, fn, self._where()) from exc

    def _note(self, message: str) -> None:
        if message not in self._notes:
            self._notes.append(message)

    def _sample_activity(self) -> None:
        now = self.clock()
        if not self._activity_ok:
            return
        handle = self.target.handle
        try:
            util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
            mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) == GPU_IS_LOST:
                raise nvml_error(exc, "nvmlDeviceGetUtilizationRates", self._where()) from exc
            self._activity_ok = False  # e.g. MIG-enabled GPUs report utilisation as not supported
            self._note(f"{self.key}: utilisation/memory not readable ({exc}); window activity left out")
            return
        self._activity.append(Activity(now, float(util.gpu), float(util.memory), float(mem.used), float(mem.total)))


class NvmlEnergySampler(NvmlGpuSampler):
    """Cumulative joules from ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded)."""

    kind: Kind = "counter"
    resolution_s = COUNTER_RESOLUTION_S

    def __init__(self, nvml: Any, target: GpuTarget, **kwargs: Any) -> None:
        self._last_j: float | None = None
        super().__init__(nvml, target, method=METHOD_COUNTER, **kwargs)

    def read(self) -> dict[str, float]:
        """Joules since the driver loaded; NaN (which the meter ignores) for an answer no GPU could give."""
        millijoules = self._call("nvmlDeviceGetTotalEnergyConsumption", self.target.handle)
        joules = float(millijoules) / 1000.0
        if not 0 <= joules <= self._power_bound * MAX_COUNTER_AGE_S:
            self._note(
                f"{self.key}: NVML energy counter read {joules:.6g} J, more than the GPU could draw in ten years "
                "at its power bound (a driver fault): such readings are ignored"
            )
            self._sample_activity()
            values = {self.key: math.nan}
            if self.share is not None:
                values[self.share.key_out] = math.nan
            return values
        if self._last_j is not None and joules < self._last_j:
            self._note(
                f"{self.key}: NVML energy counter went backwards ({self._last_j:.3f} J -> {joules:.3f} J), "
                "so the driver was reloaded or the GPU reset; energy before the reset is missing from the "
                "window: measure again"
            )
        self._last_j = joules
        self._sample_activity()
        if self.share is not None:
            return {self.key: joules, self.share.key_out: self.share.advance(joules)}
        return {self.key: joules}


class NvmlPowerSampler(NvmlGpuSampler):
    """Watts from the instant-power field where supported, else ``nvmlDeviceGetPowerUsage``; the meter
    polls and integrates."""

    kind: Kind = "power"

    def __init__(self, nvml: Any, target: GpuTarget, *, use_field: bool, **kwargs: Any) -> None:
        self._use_field = use_field
        self.resolution_s = INSTANT_POWER_RESOLUTION_S if use_field else AVERAGE_POWER_RESOLUTION_S
        super().__init__(nvml, target, method=METHOD_POLLING, **kwargs)

    def read(self) -> dict[str, float]:
        milliwatts = None
        if self._use_field:
            milliwatts = instant_power_mw(self._nvml, self.target.handle, where=self._where())
            if milliwatts is None:  # the field stopped answering: fall back for good, and say so
                self._use_field = False
                self._note(f"{self.key}: instant power field stopped answering; using nvmlDeviceGetPowerUsage")
        if milliwatts is None:
            milliwatts = self._call("nvmlDeviceGetPowerUsage", self.target.handle)
        self._sample_activity()
        watts = float(milliwatts) / 1000.0
        if self.share is not None:
            return {self.key: watts, self.share.key_out: self.share.power(watts)}
        return {self.key: watts}


def field_number(value: Any) -> float:
    """The number in a ``c_nvmlFieldValue_t``, read from the union member its ``valueType`` names."""
    member = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal"}.get(value.valueType, "uiVal")
    return float(getattr(value.value, member))


def instant_power_mw(nvml: Any, handle: Any, *, where: str) -> float | None:
    """``NVML_FI_DEV_POWER_INSTANT`` in mW, or ``None`` when the driver does not offer the field."""
    field_id = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", None)
    if field_id is None:
        return None
    try:
        values = nvml.nvmlDeviceGetFieldValues(handle, [field_id])
    except nvml.NVMLError as exc:
        if getattr(exc, "value", None) == GPU_IS_LOST:
            raise nvml_error(exc, "nvmlDeviceGetFieldValues", where) from exc
        return None
    if values[0].nvmlReturn != 0:
        return None
    return field_number(values[0])
