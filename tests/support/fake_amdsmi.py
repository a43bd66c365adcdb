"""A fake ``amdsmi`` driven by JSON traces, with the real binding's call shapes.

Why: no AMD GPU (and no ROCm ``libamd_smi.so``) exists where the test suite runs, yet the amdsmi sampler must be
tested through the calls it really makes. ``FakeAmdSmi`` implements the subset of ``amdsmi`` functions the
sampler and ``scripts/amd_check.py`` use, with the same names and parameters; ``tests/samplers/test_amd_fake.py``
checks them against the installed binding's source (``amdsmi_interface.py``, read without importing it: the
import needs the native library) or, where the binding is not installed, against the signatures recorded from
amdsmi 7.0.2 in ``tests/support/data/amdsmi_signatures.json``. Errors are ``AmdSmiLibraryException`` with the
real status codes and the real constructor, ``err_code`` and ``get_error_code()``.

Trace format (``tests/support/data/amd_*.json``; ``scripts/amd_check.py --record`` writes the same)::

    {"synthetic": true, "note": "...", "init_error": null,   # or "AMDSMI_STATUS_DRIVER_NOT_LOADED", ...
     "devices": [{
        "market_name": "AMD Instinct MI300X", "uuid": "...", "hip_id": 0, "hip_uuid": "GPU-...",
        "bdf": "0000:05:00.0", "power_cap_uw": 750000000, "compute_partition": "SPX",
        "energy_counter": true,              # false: amdsmi_get_energy_count -> NOT_SUPPORTED (a VM guest)
        "energy_key": "energy_accumulator",  # "power" as amdsmi before 6.2.1 named it
        "counter_resolution": 15.3,          # microjoules per count
        "counter_period_s": 0.001,           # the accumulator only moves every this many seconds
        "energy_start_counts": 1000000, "counter_resets_at": [], "counter_bits": 64,
        "frozen_at_s": null,                 # from then on the counter and its timestamp stop (ROCm/amdsmi#38)
        "recorded_answers": [{"t": 0.0, "answer": {...}}],   # replayed as-is instead of the integral
        "power_fields": ["current_socket_power", "average_socket_power"],   # the others answer "N/A"
        "lost_at_s": null, "no_permission": false,
        "glitches": [{"t": 1.2, "until": 1.3, "energy_counts": 5}],
        "processes": [{"pid": 4242, "gfx_fraction": 0.75, "from_s": 0.0}],
        "samples": [{"t": 0.0, "power_w": 140, "gfx_activity": 0, "umc_activity": 0}]}]}

Power is linear between samples and held beyond both ends; the counter is the integral of that power in counts
of ``counter_resolution`` microjoules, wrapping at ``2**counter_bits``. ``average_socket_power`` is the mean over
the last second; ``current_socket_power`` the power now. Trace time 0 is when the fake was built unless a
``clock`` is given.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

# amdsmi_status_t, as amdsmi_wrapper.py defines them (checked against the installed binding by the tests).
STATUS = {
    "AMDSMI_STATUS_SUCCESS": 0,
    "AMDSMI_STATUS_INVAL": 1,
    "AMDSMI_STATUS_NOT_SUPPORTED": 2,
    "AMDSMI_STATUS_NOT_YET_IMPLEMENTED": 3,
    "AMDSMI_STATUS_FAIL_LOAD_MODULE": 4,
    "AMDSMI_STATUS_DRM_ERROR": 6,
    "AMDSMI_STATUS_NO_PERM": 10,
    "AMDSMI_STATUS_IO": 12,
    "AMDSMI_STATUS_INIT_ERROR": 18,
    "AMDSMI_STATUS_NOT_FOUND": 31,
    "AMDSMI_STATUS_NOT_INIT": 32,
    "AMDSMI_STATUS_DRIVER_NOT_LOADED": 34,
}
MAX_UINT16 = 0xFFFF  # amdsmi's "N/A" for a power or activity field, before the binding turns it into "N/A"


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 4294967295
    INIT_AMD_CPUS = 1
    INIT_AMD_GPUS = 2
    INIT_NON_AMD_CPUS = 4
    INIT_NON_AMD_GPUS = 8
    INIT_AMD_APUS = 3


class AmdSmiException(Exception):
    """Base of the binding's exceptions (``amdsmi_exception.AmdSmiException``)."""


class AmdSmiLibraryException(AmdSmiException):
    """A failed library call, with the real constructor and accessors."""

    def __init__(self, err_code):
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        name = next((n for n, v in STATUS.items() if v == err_code), "AMDSMI_STATUS_UNKNOWN_ERROR")
        self.err_info = f"{name} - fake amdsmi"

    def __str__(self):
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_info(self, detailed=True):
        return self.err_info if detailed else self.err_info.split(" - ")[0]

    def get_error_code(self):
        return self.err_code


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, receivedValue, expectedType, msg=None):  # noqa: N803 - the real names
        super().__init__(msg)
        self.err_code = None
        self.err_msg = msg or f"Invalid parameter: {type(receivedValue)} is not {expectedType}"

    def __str__(self):
        return self.err_msg


def load_trace(path_or_dict: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(path_or_dict, dict):
        return json.loads(json.dumps(path_or_dict))
    path = Path(path_or_dict)
    if not path.is_absolute() and not path.exists():
        path = DATA / path
    return json.loads(path.read_text())


@dataclass(frozen=True)
class FakeAmdHandle:
    """Opaque like ``amdsmi_processor_handle``."""

    index: int


class _Device:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.samples = sorted(spec.get("samples") or [{"t": 0.0, "power_w": 0}], key=lambda s: s["t"])
        self.times = [float(s["t"]) for s in self.samples]
        self.cum = [0.0]  # joules at each sample time
        for a, b in zip(self.samples, self.samples[1:], strict=False):
            self.cum.append(self.cum[-1] + (a["power_w"] + b["power_w"]) / 2 * (b["t"] - a["t"]))
        self.resolution = float(spec.get("counter_resolution", 15.3))
        self.period = float(spec.get("counter_period_s", 0.001))
        self.modulus = 2 ** int(spec.get("counter_bits", 64))

    def at(self, key: str, t: float) -> float:
        s, times = self.samples, self.times
        if t <= times[0]:
            return float(s[0].get(key, 0))
        if t >= times[-1]:
            return float(s[-1].get(key, 0))
        i = bisect.bisect_right(times, t) - 1
        a, b = s[i], s[i + 1]
        w = (t - a["t"]) / (b["t"] - a["t"])
        return float(a.get(key, 0)) + w * (float(b.get(key, 0)) - float(a.get(key, 0)))

    def integral_j(self, t: float) -> float:
        times = self.times
        if t <= times[0]:
            return (t - times[0]) * self.samples[0]["power_w"]
        if t >= times[-1]:
            return self.cum[-1] + (t - times[-1]) * self.samples[-1]["power_w"]
        i = bisect.bisect_right(times, t) - 1
        a = self.samples[i]
        return self.cum[i] + (a["power_w"] + self.at("power_w", t)) / 2 * (t - a["t"])

    def tick(self, t: float) -> float:
        frozen = self.spec.get("frozen_at_s")
        t = min(t, float(frozen)) if frozen is not None else t
        return math.floor(t / self.period) * self.period

    def counts(self, t: float) -> int:
        for g in self.spec.get("glitches", []):
            if "energy_counts" in g and float(g["t"]) <= t < float(g.get("until", math.inf)):
                return int(g["energy_counts"])
        tick = self.tick(t)
        resets = [r for r in self.spec.get("counter_resets_at", []) if r <= tick]
        since = resets[-1] if resets else 0.0
        start = 0 if resets else int(self.spec.get("energy_start_counts", 0))
        joules = self.integral_j(tick) - self.integral_j(since)
        return (start + int(joules * 1e6 / self.resolution)) % self.modulus  # integers: 2**64 is past float's 53 bits


class FakeAmdSmi:
    """Stands in for the ``amdsmi`` module: ``sampler_options = {"amdsmi_module": FakeAmdSmi(trace)}``."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiParameterException = AmdSmiParameterException
    AmdSmiInitFlags = AmdSmiInitFlags

    def __init__(self, trace: str | Path | dict[str, Any], clock: Callable[[], float] | None = None) -> None:
        self.trace = load_trace(trace)
        self.devices = [_Device(d) for d in self.trace.get("devices", [])]
        if clock is None:
            origin = time.monotonic()
            clock = lambda: time.monotonic() - origin  # noqa: E731
        self.clock = clock
        self.init_count = 0
        self.calls: Counter[str] = Counter()

    # -- plumbing ------------------------------------------------------------------------------------------
    def _error(self, name: str) -> AmdSmiLibraryException:
        return AmdSmiLibraryException(STATUS[name])

    def _check_init(self, call: str) -> None:
        self.calls[call] += 1
        if self.init_count <= 0:
            raise self._error("AMDSMI_STATUS_NOT_INIT")

    def _device(self, call: str, processor_handle: Any) -> tuple[_Device, float]:
        self._check_init(call)
        if not isinstance(processor_handle, FakeAmdHandle):
            raise AmdSmiParameterException(processor_handle, FakeAmdHandle)
        dev = self.devices[processor_handle.index]
        t = self.clock()
        lost = dev.spec.get("lost_at_s")
        if lost is not None and t >= lost:
            raise self._error("AMDSMI_STATUS_NOT_FOUND")
        return dev, t

    # -- library -------------------------------------------------------------------------------------------
    def amdsmi_init(self, flag=AmdSmiInitFlags.INIT_AMD_GPUS):
        self.calls["amdsmi_init"] += 1
        if not isinstance(flag, AmdSmiInitFlags):
            raise AmdSmiParameterException(flag, AmdSmiInitFlags)
        if self.trace.get("init_error"):
            raise self._error(self.trace["init_error"])
        self.init_count += 1

    def amdsmi_shut_down(self):
        self._check_init("amdsmi_shut_down")
        self.init_count -= 1

    def amdsmi_get_processor_handles(self):
        self._check_init("amdsmi_get_processor_handles")
        return [FakeAmdHandle(i) for i in range(len(self.devices))]

    # -- identity ------------------------------------------------------------------------------------------
    def amdsmi_get_gpu_device_uuid(self, processor_handle):
        dev, _ = self._device("amdsmi_get_gpu_device_uuid", processor_handle)
        return dev.spec["uuid"]

    def amdsmi_get_gpu_enumeration_info(self, processor_handle):
        dev, _ = self._device("amdsmi_get_gpu_enumeration_info", processor_handle)
        if "hip_id" not in dev.spec:
            raise self._error("AMDSMI_STATUS_NOT_SUPPORTED")
        index = processor_handle.index
        return {"drm_render": 128 + index, "drm_card": index, "hsa_id": index, "hip_id": dev.spec["hip_id"],
                "hip_uuid": dev.spec.get("hip_uuid", "")}

    def amdsmi_get_gpu_asic_info(self, processor_handle):
        dev, _ = self._device("amdsmi_get_gpu_asic_info", processor_handle)
        return {"market_name": dev.spec.get("market_name", "N/A"), "vendor_id": "0x1002", "vendor_name": "AMD",
                "device_id": "0x74a1", "rev_id": "0x00", "asic_serial": "0x0000000000000000",
                "num_compute_units": 304, "target_graphics_version": "gfx942"}

    def amdsmi_get_gpu_device_bdf(self, processor_handle):
        dev, _ = self._device("amdsmi_get_gpu_device_bdf", processor_handle)
        return dev.spec.get("bdf", f"0000:{processor_handle.index:02x}:00.0")

    def amdsmi_get_gpu_driver_info(self, processor_handle):
        self._device("amdsmi_get_gpu_driver_info", processor_handle)
        return {"driver_name": "amdgpu", "driver_version": self.trace.get("driver_version", "6.8.5"),
                "driver_date": "2015/01/01 00:00"}

    def amdsmi_get_power_cap_info(self, processor_handle):
        dev, _ = self._device("amdsmi_get_power_cap_info", processor_handle)
        cap = int(dev.spec.get("power_cap_uw", 0))
        return {"power_cap": cap, "default_power_cap": cap, "dpm_cap": 0, "min_power_cap": 0, "max_power_cap": cap}

    def amdsmi_get_gpu_compute_partition(self, processor_handle):
        dev, _ = self._device("amdsmi_get_gpu_compute_partition", processor_handle)
        if "compute_partition" not in dev.spec:
            raise self._error("AMDSMI_STATUS_NOT_SUPPORTED")
        return dev.spec["compute_partition"]

    # -- energy and power ----------------------------------------------------------------------------------
    def amdsmi_get_energy_count(self, processor_handle):
        dev, t = self._device("amdsmi_get_energy_count", processor_handle)
        if dev.spec.get("no_permission"):
            raise self._error("AMDSMI_STATUS_NO_PERM")
        recorded = dev.spec.get("recorded_answers")
        if recorded:
            return dict(max((r for r in recorded if r["t"] <= t), key=lambda r: r["t"], default=recorded[0])["answer"])
        if not dev.spec.get("energy_counter", True):
            raise self._error("AMDSMI_STATUS_NOT_SUPPORTED")
        key = dev.spec.get("energy_key", "energy_accumulator")
        return {key: dev.counts(t), "counter_resolution": dev.resolution, "timestamp": int(dev.tick(t) * 1e9)}

    def amdsmi_get_power_info(self, processor_handle):
        dev, t = self._device("amdsmi_get_power_info", processor_handle)
        if dev.spec.get("no_permission"):
            raise self._error("AMDSMI_STATUS_NO_PERM")
        fields = dev.spec.get("power_fields", ["current_socket_power", "average_socket_power"])
        values = {"current_socket_power": int(dev.at("power_w", t)), "socket_power": int(dev.at("power_w", t)),
                  "average_socket_power": int(dev.integral_j(t) - dev.integral_j(t - 1.0))}
        out: dict[str, Any] = {k: (v if k in fields else "N/A") for k, v in values.items()}
        out.update({"gfx_voltage": 800, "soc_voltage": 900, "mem_voltage": 1100,
                    "power_limit": int(dev.spec.get("power_cap_uw", 0)) // 1_000_000})
        return out

    def amdsmi_get_gpu_activity(self, processor_handle):
        dev, t = self._device("amdsmi_get_gpu_activity", processor_handle)
        if not dev.spec.get("activity", True):
            raise self._error("AMDSMI_STATUS_NOT_SUPPORTED")
        return {"gfx_activity": int(dev.at("gfx_activity", t)), "umc_activity": int(dev.at("umc_activity", t)),
                "mm_activity": "N/A"}

    def amdsmi_get_gpu_process_list(self, processor_handle):
        """Each process's cumulative GFX-engine nanoseconds: its ``gfx_fraction`` of the time it has run."""
        dev, t = self._device("amdsmi_get_gpu_process_list", processor_handle)
        if not dev.spec.get("process_list", True):
            raise self._error("AMDSMI_STATUS_NOT_SUPPORTED")
        out = []
        for proc in dev.spec.get("processes", []):
            start = float(proc.get("from_s", 0.0))
            if t < start:
                continue
            gfx_ns = int(float(proc.get("gfx_fraction", 0.0)) * (t - start) * 1e9)
            out.append({"name": proc.get("name", "python"), "pid": int(proc["pid"]), "mem": 0,
                        "engine_usage": {"gfx": gfx_ns, "enc": 0},
                        "memory_usage": {"gtt_mem": 0, "cpu_mem": 0, "vram_mem": 0}, "cu_occupancy": "N/A"})
        return out


class ManualClock:
    """A clock tests step by hand: ``clock.t = 1.25``."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
