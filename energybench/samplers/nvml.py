"""NVIDIA GPU energy through NVML: the cumulative energy counter where it exists, polled power where not.

Why two paths: Volta and newer GPUs keep a cumulative energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules, updated about every 100 ms). Reading it at window edges is exact and costs nothing between edges,
so those GPUs get a ``kind="counter"`` sampler (method ``nvml-energy-counter``). Older GPUs only report power;
they get a ``kind="power"`` sampler (method ``nvml-power-polling``) that the meter polls in its background
thread, reading the instant-power field ``NVML_FI_DEV_POWER_INSTANT`` where the driver has it, else
``nvmlDeviceGetPowerUsage`` (a 1 s running average on Ampere and newer).

One sampler per physical GPU, so a GPU that falls off the bus (``NVML_ERROR_GPU_IS_LOST``) raises
``NvmlGpuLostError`` from its own ``read()`` while the other samplers keep their figures.

Options (the mapping handed to ``FACTORY.probe`` / ``FACTORY.create``):

* ``nvml_module``: an object with the ``pynvml`` call shapes (tests inject ``tests/fake_nvml.py``);
  default ``import pynvml`` (from ``nvidia-ml-py``).
* ``gpu_indices``: ``list[int] | None`` (``--gpu-index``), indices as this process sees GPUs, i.e. after
  ``CUDA_VISIBLE_DEVICES``; an index that does not exist makes ``create`` raise ``ConfigError``.
* ``nvml_mode``: ``"auto"`` (default: counter where supported, else polling), ``"counter"``, ``"polling"``,
  or ``"both"`` (counter sampler plus a polling sampler on domain ``gpu:N-polled`` with ``counted=False``,
  so one window shows both figures without adding them; ``scripts/gpu_check.py`` uses it).
* ``environ``: a mapping used instead of ``os.environ`` (tests of ``CUDA_VISIBLE_DEVICES``).
* ``clock``: the callable that timestamps utilisation samples, default ``time.monotonic`` (tests pass the
  fake's clock).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

from energybench.errors import ConfigError, SamplerError
from energybench.samplers import SamplerFactory
from energybench.samplers.base import Availability, BaseSampler, Domain

NAME = "nvml"
METHOD_COUNTER = "nvml-energy-counter"
METHOD_POLLING = "nvml-power-polling"
COUNTER_RESOLUTION_S = 0.1  # the energy counter's update period (NVML docs: "updated every ~100 ms")
INSTANT_POWER_RESOLUTION_S = 0.1
AVERAGE_POWER_RESOLUTION_S = 1.0  # nvmlDeviceGetPowerUsage is a 1 s average on Ampere+
MODES = ("auto", "counter", "polling", "both")
MAX_ACTIVITY_SAMPLES = 100_000

# Return codes from nvml.h; they are part of NVML's ABI, so the mapping does not depend on the module object.
_NOT_SUPPORTED = 3
_NO_PERMISSION = 4
_DRIVER_NOT_LOADED = 9
_LIBRARY_NOT_FOUND = 12
_FUNCTION_NOT_FOUND = 13
_GPU_IS_LOST = 15
_RESET_REQUIRED = 16
_UNINITIALIZED = 1
_LIB_RM_VERSION_MISMATCH = 18


# --------------------------------------------------------------------------------------------- errors
class NvmlError(SamplerError):
    """An NVML call failed; the message names the GPU, the call, NVML's reason and the fix."""


class NvmlGpuLostError(NvmlError):
    """The GPU vanished mid-run (``NVML_ERROR_GPU_IS_LOST``); other samplers' figures are unaffected."""


class NvmlPermissionError(NvmlError):
    """NVML refused access (``NVML_ERROR_NO_PERMISSION``)."""


class NvmlNotSupportedError(NvmlError):
    """The GPU or driver does not support the call (``NVML_ERROR_NOT_SUPPORTED``)."""


class NvmlUnavailableError(NvmlError):
    """NVML cannot start: no ``pynvml`` module, no ``libnvidia-ml`` library, or no driver loaded."""


_HINTS: dict[int, tuple[type[NvmlError], str, str]] = {
    _GPU_IS_LOST: (
        NvmlGpuLostError,
        "GPU is lost",
        "it fell off the bus or was reset; check `nvidia-smi` and `dmesg` (other devices' figures are kept)",
    ),
    _NO_PERMISSION: (
        NvmlPermissionError,
        "permission denied",
        "give this user read access to /dev/nvidia* (in a container: run with --gpus or the device plugin)",
    ),
    _NOT_SUPPORTED: (NvmlNotSupportedError, "not supported", "this GPU or driver does not offer it"),
    _DRIVER_NOT_LOADED: (
        NvmlUnavailableError,
        "NVIDIA driver not loaded",
        "install or load the NVIDIA kernel driver (`nvidia-smi` must work)",
    ),
    _LIBRARY_NOT_FOUND: (
        NvmlUnavailableError,
        "NVML library not found",
        "install the NVIDIA driver (it ships libnvidia-ml.so.1) or mount it into the container",
    ),
    _FUNCTION_NOT_FOUND: (
        NvmlNotSupportedError,
        "function not found in libnvidia-ml",
        "the driver is older than this call needs: update the NVIDIA driver",
    ),
    _RESET_REQUIRED: (NvmlError, "GPU requires reset", "reset it (`nvidia-smi -r`) or reboot"),
    _UNINITIALIZED: (
        NvmlError,
        "NVML is not initialised",
        "some other code called nvmlShutdown(); do not shut NVML down while measuring",
    ),
    _LIB_RM_VERSION_MISMATCH: (
        NvmlUnavailableError,
        "driver/library version mismatch",
        "the kernel module and libnvidia-ml differ: reboot or reload the driver",
    ),
}


def nvml_error(exc: BaseException, call: str, where: str) -> NvmlError:
    """Turn a ``pynvml.NVMLError`` into the typed, one-line error the CLI prints."""
    code = getattr(exc, "value", None)
    cls, text, fix = _HINTS.get(code, (NvmlError, str(exc) or "NVML error", "see `nvidia-smi` for the GPU state"))
    suffix = f" (NVML code {code})" if code is not None else ""
    return cls(f"NVML {call} failed for {where}: {text}{suffix}: {fix}")


def unavailable_reason(exc: BaseException) -> str:
    """The probe's one-line reason for an ``nvmlInit`` failure (no library, no driver...)."""
    code = getattr(exc, "value", None)
    if code in _HINTS:
        _cls, text, fix = _HINTS[code]
        return f"{text}: {fix}"
    return f"NVML failed to initialise ({exc}): check the driver with `nvidia-smi`"


# --------------------------------------------------------------------------------------------- package check
def installed_versions(names: Sequence[str] = ("nvidia-ml-py", "pynvml", "nvidia-ml-py3")) -> dict[str, str]:
    """Versions of the distributions that can provide the ``pynvml`` module.

    Cached per process: looking them up scans installed metadata (milliseconds), and every ``measure()``
    block probes NVML; what is installed does not change under a running process."""
    return dict(_installed_versions(tuple(names)))


@functools.cache
def _installed_versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    found = {}
    for name in names:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return tuple(found.items())


def distribution_problem(versions: Mapping[str, str] | None = None) -> str | None:
    """Say so (with the fix) when ``pynvml`` does not come from NVIDIA's ``nvidia-ml-py``.

    The ``pynvml`` *distribution* is deprecated: before 12.0 it shipped its own, outdated copy of the module
    (missing newer calls and structs); from 12.0 it is a shim over nvidia-ml-py that warns on every import.
    ``nvidia-ml-py3`` is an unofficial fork frozen at driver 7.352.
    """
    v = installed_versions() if versions is None else dict(versions)
    ml = v.get("nvidia-ml-py")
    old = v.get("pynvml")
    py3 = v.get("nvidia-ml-py3")
    if old is not None:
        try:
            major = int(old.split(".")[0])
        except ValueError:
            major = 0
        what = "a deprecated shim that warns on import" if major >= 12 else "an outdated copy of the bindings"
        if ml is None:
            return (
                f"the pynvml module comes from the deprecated `pynvml` {old} distribution ({what}), not "
                "NVIDIA's nvidia-ml-py: run `pip uninstall -y pynvml && pip install nvidia-ml-py`"
            )
        return (
            f"the deprecated `pynvml` {old} distribution ({what}) is installed next to nvidia-ml-py {ml}: "
            "run `pip uninstall -y pynvml && pip install --force-reinstall nvidia-ml-py`"
        )
    if py3 is not None:
        return (
            f"the pynvml module may come from the unofficial `nvidia-ml-py3` {py3} (frozen at driver 7.352): "
            "run `pip uninstall -y nvidia-ml-py3 && pip install --force-reinstall nvidia-ml-py`"
        )
    if ml is None:
        return "nvidia-ml-py is not installed: run `pip install nvidia-ml-py`"
    return None


def import_nvml(options: Mapping[str, Any]) -> Any:
    """The injected ``nvml_module`` or the real ``pynvml``; a missing module is an ``NvmlUnavailableError``."""
    module = options.get("nvml_module")
    if module is not None:
        return module
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailableError(
            f"the pynvml module is not importable ({exc}): run `pip install nvidia-ml-py`"
        ) from exc
    return pynvml


# --------------------------------------------------------------------------------------------- visible GPUs
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


def _text(value: Any) -> str:
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
    uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
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
            return uuids.index(_text(nvml.nvmlDeviceGetUUID(parent)))
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
            if _text(nvml.nvmlDeviceGetUUID(mig)).startswith(token):
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


# --------------------------------------------------------------------------------------------- samplers
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
    ) -> None:
        nvml.nvmlInit()  # NVML is reference counted: each sampler holds one reference until close()
        self.name = f"{NAME}:{key}"  # unique per sampler: the meter keys its readings by sampler name
        self._nvml = nvml
        self._clock = clock
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
        details = dict(self.identity)
        details["resolution_s"] = self.resolution_s
        if target.mig_uuids or self.identity.get("mig"):
            details["mig_note"] = "MIG enabled: the energy is the whole GPU's, shared by every slice on it"
        details.update(extra_details or {})
        self._details = details

    # -- protocol --------------------------------------------------------------------------------------
    def domains(self) -> list[Domain]:
        return [
            Domain(
                key=self.key,
                source="measured",
                method=self.method,
                max_value=None,  # never wraps: going backwards is a reset (driver reload)
                counted=self._counted,
                details=dict(self._details),
            )
        ]

    def on_edge(self) -> None:
        """Let queued CUDA kernels finish before the edge read, so they count in the right window.

        Torch is never imported here: if the program has not imported it, or CUDA is not initialised,
        there is nothing to wait for. Only devices this process already uses are synchronised, because
        synchronising an untouched device would create a CUDA context (hundreds of MB) on it.
        """
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None) if torch is not None else None
        if cuda is None or not cuda.is_initialized():
            return
        index = self.target.process_index
        if index == cuda.current_device() or cuda.memory_reserved(index) > 0:
            cuda.synchronize(index)

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
        return fresh

    @property
    def clock(self) -> Callable[[], float]:
        """The time source ``window_stats`` bounds are in (``time.monotonic`` unless a test replays a trace)."""
        return self._clock

    def window_stats(self, start: float, end: float) -> dict[str, Any]:
        """Mean utilisation and memory use over ``[start, end]`` (seconds of ``clock``). Samples are taken at
        every ``read()``: both edges, and each background poll. The meter asks for each window's own span.
        """
        rows = [a for a in self._activity if start <= a.t <= end]

        def mean(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return sum(known) / len(known) if known else None

        used = [a.mem_used_b for a in rows if a.mem_used_b is not None]
        return {
            "samples": len(rows),
            "gpu_util_mean_pct": mean([a.gpu_pct for a in rows]),
            "memory_bw_util_mean_pct": mean([a.mem_bw_pct for a in rows]),
            "memory_used_mean_bytes": mean(list(used)),
            "memory_used_max_bytes": max(used) if used else None,
            "memory_total_bytes": next((a.mem_total_b for a in rows if a.mem_total_b), None),
        }

    # -- helpers ---------------------------------------------------------------------------------------
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
        now = self._clock()
        if not self._activity_ok:
            return
        handle = self.target.handle
        try:
            util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
            mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) == _GPU_IS_LOST:
                raise nvml_error(exc, "nvmlDeviceGetUtilizationRates", self._where()) from exc
            self._activity_ok = False  # e.g. MIG-enabled GPUs report utilisation as not supported
            self._note(f"{self.key}: utilisation/memory not readable ({exc}); window activity left out")
            return
        self._activity.append(Activity(now, float(util.gpu), float(util.memory), float(mem.used), float(mem.total)))


class NvmlEnergySampler(NvmlGpuSampler):
    """Cumulative joules from ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded)."""

    kind = "counter"
    resolution_s = COUNTER_RESOLUTION_S

    def __init__(self, nvml: Any, target: GpuTarget, **kwargs: Any) -> None:
        self._last_j: float | None = None
        super().__init__(nvml, target, method=METHOD_COUNTER, **kwargs)

    def read(self) -> dict[str, float]:
        millijoules = self._call("nvmlDeviceGetTotalEnergyConsumption", self.target.handle)
        joules = float(millijoules) / 1000.0
        if self._last_j is not None and joules < self._last_j:
            self._note(
                f"{self.key}: NVML energy counter went backwards ({self._last_j:.3f} J -> {joules:.3f} J), "
                "so the driver was reloaded or the GPU reset; energy before the reset is missing from the "
                "window: measure again"
            )
        self._last_j = joules
        self._sample_activity()
        return {self.key: joules}


class NvmlPowerSampler(NvmlGpuSampler):
    """Watts from the instant-power field where supported, else ``nvmlDeviceGetPowerUsage``; the meter
    polls and integrates."""

    kind = "power"

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
        return {self.key: float(milliwatts) / 1000.0}


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
        if getattr(exc, "value", None) == _GPU_IS_LOST:
            raise nvml_error(exc, "nvmlDeviceGetFieldValues", where) from exc
        return None
    if values[0].nvmlReturn != 0:
        return None
    return field_number(values[0])


# --------------------------------------------------------------------------------------------- factory
def _identity(nvml: Any, target: GpuTarget, visible: Visible) -> dict[str, Any]:
    handle = target.handle
    where = f"GPU {target.physical_index} ({target.uuid})"

    def call(fn: str, *args: Any) -> Any:
        try:
            return getattr(nvml, fn)(*args)
        except nvml.NVMLError as exc:
            if getattr(exc, "value", None) in (_NOT_SUPPORTED, _FUNCTION_NOT_FOUND):
                return None
            raise nvml_error(exc, fn, where) from exc

    limit_mw = call("nvmlDeviceGetEnforcedPowerLimit", handle)
    mig_mode = call("nvmlDeviceGetMigMode", handle)
    mig = bool(target.mig_uuids) or bool(mig_mode and mig_mode[0] == 1)
    return {
        "name": _text(call("nvmlDeviceGetName", handle)),
        "uuid": target.uuid,
        "physical_index": target.physical_index,
        "process_index": target.process_index,
        "cuda_visible_devices": visible.selector,
        "driver_version": _text(call("nvmlSystemGetDriverVersion")),
        "power_limit_w": limit_mw / 1000.0 if limit_mw is not None else None,
        "mig": mig,
        "mig_uuids": list(target.mig_uuids),
    }


def _counter_supported(nvml: Any, handle: Any, where: str) -> bool:
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except nvml.NVMLError as exc:
        if getattr(exc, "value", None) in (_NOT_SUPPORTED, _FUNCTION_NOT_FOUND):
            return False
        raise nvml_error(exc, "nvmlDeviceGetTotalEnergyConsumption", where) from exc
    return True


def _environ(options: Mapping[str, Any]) -> Mapping[str, str]:
    env = options.get("environ")
    return os.environ if env is None else env


# A missing libnvidia-ml stays missing for the life of the process; remembering that spares every later
# ``measure()`` block a failing dlopen (~2-8 ms). Only this negative fact is kept, never a handle.
_missing_library: list[str] = []


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
    if real and _missing_library:
        return Availability(name=NAME, available=False, reason=_missing_library[0])
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        reason = unavailable_reason(exc)
        if real and getattr(exc, "value", None) == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", object()):
            _missing_library.append(reason)
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
                "name": _text(nvml.nvmlDeviceGetName(t.handle)),
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
    common: dict[str, Any] = {"identity": identity, "warnings": notes, "clock": options.get("clock") or time.monotonic}
    if has_counter and mode in ("auto", "counter", "both"):
        out.append(NvmlEnergySampler(nvml, target, key=key, **common))
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
                **common,
            )
        )
    return out


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create)
