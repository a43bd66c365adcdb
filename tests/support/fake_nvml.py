"""A fake ``pynvml`` driven by JSON traces, with the real module's call shapes.

Why: no NVIDIA GPU exists on the machines that run the test suite, yet the NVML sampler must be tested through
the calls it really makes. ``FakeNvml`` implements the subset of ``pynvml`` functions the sampler and
``scripts/gpu_check.py`` use, with the same names and signatures (``tests/samplers/test_nvml_fake.py`` checks them
against the installed ``nvidia-ml-py`` so the fake cannot drift), returns the real ctypes structs and raises
the real ``pynvml.NVMLError`` subclasses. Constants, structs and error classes come from the real module.

Trace format (``tests/support/data/nvml_*.json``; ``scripts/gpu_check.py --record`` writes the same)::

    {"synthetic": true, "note": "...", "driver_version": "550.54.15",
     "init_error": null,                      # or "NVML_ERROR_DRIVER_NOT_LOADED", ...
     "devices": [{
        "name": "...", "uuid": "GPU-...", "power_limit_mw": 400000, "memory_total": 42949672960,
        "energy_counter": true,               # false: nvmlDeviceGetTotalEnergyConsumption -> NOT_SUPPORTED
        "power_instant": true,                # false: NVML_FI_DEV_POWER_INSTANT answers NOT_SUPPORTED
        "utilization": true,                  # false: utilisation/memory -> NOT_SUPPORTED (MIG-enabled GPUs)
        "mig_mode": [0, 0], "mig_devices": ["MIG-..."],
        "processes": [{"pid": 4242, "sm_util": 75, "mem_util": 20, "from_s": 0.0, "until_s": null}],
                                              # per-process SM utilisation, sampled every
        "process_sample_period_s": 0.1667,    # this many seconds (nvmlDeviceGetProcessUtilization)
        "process_utilization": true,          # false: that call -> NOT_SUPPORTED (as on MIG-enabled GPUs)
        "counter_period_s": 0.1,              # the energy counter only moves every this many seconds
        "energy_start_mj": 1000000,
        "counter_resets_at": [],              # trace times where the counter restarts from 0 (driver reload)
        "lost_at_s": null,                    # from this trace time every call on it -> GPU_IS_LOST
        "glitches": [{"t": 1.2, "until": 1.3, "energy_mj": 18446744073709551615, "power_mw": 4294967295}],
                                              # a faulty driver's answers over [t, until): optional keys
        "samples": [{"t": 0.0, "power_mw": 61000, "util_gpu": 0, "util_mem": 0, "mem_used": 0,
                     "energy_mj": 1000000}]   # energy_mj optional: recorded counter values replayed as-is
     }]}

Power is linear between samples and held beyond both ends; without recorded ``energy_mj`` the counter is the
exact integral of that power, sampled every ``counter_period_s``. ``nvmlDeviceGetPowerUsage`` returns the mean
power over the last second, as Ampere and newer drivers do. Trace time 0 is when the fake was built, unless a
``clock`` is given (tests pass a manual clock to step time exactly).
"""

from __future__ import annotations

import bisect
import ctypes
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pynvml as _real

DATA = Path(__file__).parent / "data"
#: Trace time 0 as NVML's CPU-microsecond timestamps show it, and how many samples per process it keeps.
PROCESS_EPOCH_US = 1_700_000_000_000_000
PROCESS_SAMPLE_BUFFER = 120


def load_trace(path_or_dict: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(path_or_dict, dict):
        return json.loads(json.dumps(path_or_dict))  # a private copy tests may change
    path = Path(path_or_dict)
    if not path.is_absolute() and not path.exists():
        path = DATA / path
    return json.loads(path.read_text())


@dataclass(frozen=True)
class FakeHandle:
    """Opaque like ``c_nvmlDevice_t``; ``mig`` is the MIG slot for MIG device handles."""

    index: int
    mig: int | None = None


class _Device:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        samples = sorted(spec.get("samples") or [{"t": 0.0, "power_mw": 0}], key=lambda s: s["t"])
        self.samples = samples
        self.times = [float(s["t"]) for s in samples]
        self.recorded_energy = all("energy_mj" in s for s in samples)
        self.period = float(spec.get("counter_period_s", 0.1))
        self.start_mj = float(spec.get("energy_start_mj", 0.0))
        self.resets = sorted(float(t) for t in spec.get("counter_resets_at", []))
        self.glitches = list(spec.get("glitches", []))
        # cumulative integral (mJ) of the piecewise-linear power at each sample time
        self.cum = [0.0]
        for a, b in zip(samples, samples[1:], strict=False):
            self.cum.append(self.cum[-1] + (a["power_mw"] + b["power_mw"]) / 2 * (b["t"] - a["t"]))

    def _at(self, key: str, t: float) -> float:
        s, times = self.samples, self.times
        if t <= times[0]:
            return float(s[0].get(key, 0))
        if t >= times[-1]:
            return float(s[-1].get(key, 0))
        i = bisect.bisect_right(times, t) - 1
        a, b = s[i], s[i + 1]
        w = (t - a["t"]) / (b["t"] - a["t"])
        return float(a.get(key, 0)) + w * (float(b.get(key, 0)) - float(a.get(key, 0)))

    def glitch(self, key: str, t: float) -> float | None:
        """The faulty value a glitch in the trace gives for ``key`` at trace time ``t``, if any."""
        for g in self.glitches:
            if key in g and float(g["t"]) <= t < float(g.get("until", math.inf)):
                return float(g[key])
        return None

    def power_mw(self, t: float) -> float:
        return self._at("power_mw", t)

    def integral_mj(self, t: float) -> float:
        """Integral of power (mW x s = mJ) from trace time 0... held flat before the first sample."""
        times = self.times
        if t <= times[0]:
            return (t - times[0]) * self.samples[0]["power_mw"]
        if t >= times[-1]:
            return self.cum[-1] + (t - times[-1]) * self.samples[-1]["power_mw"]
        i = bisect.bisect_right(times, t) - 1
        a = self.samples[i]
        return self.cum[i] + (a["power_mw"] + self.power_mw(t)) / 2 * (t - a["t"])

    def energy_mj(self, t: float) -> int:
        glitch = self.glitch("energy_mj", t)
        if glitch is not None:
            return int(glitch)
        tick = math.floor(t / self.period) * self.period  # the counter only moves every period
        if self.recorded_energy:
            return int(self._at("energy_mj", tick))
        passed = [r for r in self.resets if r <= tick]
        if passed:
            return int(self.integral_mj(tick) - self.integral_mj(passed[-1]))
        return int(self.start_mj + self.integral_mj(tick) - self.integral_mj(0.0))


class FakeNvml:
    """Stands in for the ``pynvml`` module: ``sampler_options = {"nvml_module": FakeNvml(trace)}``."""

    def __init__(self, trace: str | Path | dict[str, Any], clock: Callable[[], float] | None = None) -> None:
        self.trace = load_trace(trace)
        self.devices = [_Device(d) for d in self.trace.get("devices", [])]
        if clock is None:
            origin = time.monotonic()
            clock = lambda: time.monotonic() - origin  # noqa: E731
        self.clock = clock
        self.init_count = 0
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        # constants, structs and error classes are the real module's; unimplemented calls do not exist
        if name.startswith("nvml"):
            raise AttributeError(f"FakeNvml does not implement {name}")
        return getattr(_real, name)

    # -- plumbing ------------------------------------------------------------------------------------------
    def _error(self, code_name: str) -> Exception:
        return _real.NVMLError(getattr(_real, code_name))

    def _check_init(self, call: str) -> None:
        self.calls[call] += 1
        if self.init_count <= 0:
            raise self._error("NVML_ERROR_UNINITIALIZED")

    def _device(self, call: str, handle: Any) -> tuple[_Device, float]:
        self._check_init(call)
        if not isinstance(handle, FakeHandle) or not 0 <= handle.index < len(self.devices):
            raise self._error("NVML_ERROR_INVALID_ARGUMENT")
        dev = self.devices[handle.index]
        t = self.clock()
        lost = dev.spec.get("lost_at_s")
        if lost is not None and t >= lost:
            raise self._error("NVML_ERROR_GPU_IS_LOST")
        return dev, t

    def _not_supported_on_mig(self, handle: FakeHandle) -> None:
        if handle.mig is not None:
            raise self._error("NVML_ERROR_NOT_SUPPORTED")

    # -- library -------------------------------------------------------------------------------------------
    def nvmlInit(self):  # noqa: N802 - the real names
        self.calls["nvmlInit"] += 1
        err = self.trace.get("init_error")
        if err:
            raise self._error(err)
        self.init_count += 1

    def nvmlInitWithFlags(self, flags):  # noqa: N802
        self.nvmlInit()

    def nvmlShutdown(self):  # noqa: N802
        self._check_init("nvmlShutdown")
        self.init_count -= 1

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        self._check_init("nvmlSystemGetDriverVersion")
        return self.trace.get("driver_version", "0.0")

    # -- devices -------------------------------------------------------------------------------------------
    def nvmlDeviceGetCount(self):  # noqa: N802
        self._check_init("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        self._check_init("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise self._error("NVML_ERROR_INVALID_ARGUMENT")
        return FakeHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid):  # noqa: N802
        self._check_init("nvmlDeviceGetHandleByUUID")
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for i, dev in enumerate(self.devices):
            if dev.spec["uuid"] == uuid:
                return FakeHandle(i)
            if uuid in dev.spec.get("mig_devices", []):
                return FakeHandle(i, dev.spec["mig_devices"].index(uuid))
        raise self._error("NVML_ERROR_NOT_FOUND")

    def nvmlDeviceGetUUID(self, handle):  # noqa: N802
        dev, _ = self._device("nvmlDeviceGetUUID", handle)
        return dev.spec["mig_devices"][handle.mig] if handle.mig is not None else dev.spec["uuid"]

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        dev, _ = self._device("nvmlDeviceGetName", handle)
        return dev.spec["name"]

    def nvmlDeviceGetIndex(self, handle):  # noqa: N802
        self._device("nvmlDeviceGetIndex", handle)
        return handle.index

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):  # noqa: N802
        dev, _ = self._device("nvmlDeviceGetEnforcedPowerLimit", handle)
        return int(dev.spec.get("power_limit_mw", 0))

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
        dev, t = self._device("nvmlDeviceGetTotalEnergyConsumption", handle)
        self._not_supported_on_mig(handle)
        if not dev.spec.get("energy_counter", True):
            raise self._error("NVML_ERROR_NOT_SUPPORTED")
        return dev.energy_mj(t)

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        dev, t = self._device("nvmlDeviceGetPowerUsage", handle)
        self._not_supported_on_mig(handle)
        glitch = dev.glitch("power_mw", t)
        if glitch is not None:
            return int(glitch)
        return int(dev.integral_mj(t) - dev.integral_mj(t - 1.0))  # mean mW over the last 1 s

    def nvmlDeviceGetFieldValues(self, handle, fieldIds):  # noqa: N802
        dev, t = self._device("nvmlDeviceGetFieldValues", handle)
        values = (_real.c_nvmlFieldValue_t * len(fieldIds))()
        for i, field_id in enumerate(fieldIds):
            values[i].fieldId = field_id
            values[i].timestamp = int(t * 1e6)
            if field_id == _real.NVML_FI_DEV_POWER_INSTANT and dev.spec.get("power_instant", True):
                values[i].valueType = _real.NVML_VALUE_TYPE_UNSIGNED_INT
                glitch = dev.glitch("power_mw", t)
                values[i].value.uiVal = int(glitch if glitch is not None else dev.power_mw(t))
                values[i].nvmlReturn = _real.NVML_SUCCESS
            else:
                values[i].nvmlReturn = _real.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
        dev, t = self._device("nvmlDeviceGetUtilizationRates", handle)
        if not dev.spec.get("utilization", True):
            raise self._error("NVML_ERROR_NOT_SUPPORTED")
        util = _real.c_nvmlUtilization_t()
        util.gpu = int(round(dev._at("util_gpu", t)))
        util.memory = int(round(dev._at("util_mem", t)))
        return util

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):  # noqa: N802
        dev, t = self._device("nvmlDeviceGetMemoryInfo", handle)
        if not dev.spec.get("utilization", True):
            raise self._error("NVML_ERROR_NOT_SUPPORTED")
        mem = _real.c_nvmlMemory_t()
        mem.total = int(dev.spec.get("memory_total", 0))
        mem.used = int(dev._at("mem_used", t))
        mem.free = mem.total - mem.used
        return mem

    def nvmlDeviceGetProcessUtilization(self, handle, timeStamp):  # noqa: N802, N803
        """Samples newer than ``timeStamp`` (CPU microseconds), one per process every sample period, as the
        real call returns them; none newer is ``NVML_ERROR_NOT_FOUND``, like the driver says."""
        dev, t = self._device("nvmlDeviceGetProcessUtilization", handle)
        self._not_supported_on_mig(handle)
        if not dev.spec.get("process_utilization", True) or dev.spec.get("mig_mode", [0])[0] == 1:
            raise self._error("NVML_ERROR_NOT_SUPPORTED")
        period = float(dev.spec.get("process_sample_period_s", 1 / 6))
        newest = math.floor(t / period)
        rows = []
        for k in range(max(0, newest - PROCESS_SAMPLE_BUFFER + 1), newest + 1):
            at = k * period
            stamp = PROCESS_EPOCH_US + int(round(at * 1e6))
            if stamp <= timeStamp:
                continue
            for proc in dev.spec.get("processes", []):
                until = proc.get("until_s")
                if float(proc.get("from_s", 0.0)) <= at and (until is None or at < float(until)):
                    rows.append((proc, stamp))
        if not rows:
            raise self._error("NVML_ERROR_NOT_FOUND")
        samples = (_real.c_nvmlProcessUtilizationSample_t * len(rows))()
        for sample, (proc, stamp) in zip(samples, rows, strict=True):
            sample.pid, sample.timeStamp = int(proc["pid"]), stamp
            sample.smUtil, sample.memUtil = int(proc.get("sm_util", 0)), int(proc.get("mem_util", 0))
            sample.encUtil = sample.decUtil = 0
        return samples[0 : len(rows)]

    # -- MIG -----------------------------------------------------------------------------------------------
    def nvmlDeviceGetMigMode(self, device):  # noqa: N802
        dev, _ = self._device("nvmlDeviceGetMigMode", device)
        if "mig_mode" not in dev.spec:
            raise self._error("NVML_ERROR_NOT_SUPPORTED")  # pre-Ampere GPUs have no MIG
        return list(dev.spec["mig_mode"])

    def nvmlDeviceIsMigDeviceHandle(self, device):  # noqa: N802
        self._device("nvmlDeviceIsMigDeviceHandle", device)
        return ctypes.c_uint(1 if device.mig is not None else 0)  # the real call returns the c_uint itself

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, migDevice):  # noqa: N802, N803
        self._device("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", migDevice)
        if migDevice.mig is None:
            raise self._error("NVML_ERROR_INVALID_ARGUMENT")
        return FakeHandle(migDevice.index)

    def nvmlDeviceGetMaxMigDeviceCount(self, device):  # noqa: N802
        dev, _ = self._device("nvmlDeviceGetMaxMigDeviceCount", device)
        return len(dev.spec.get("mig_devices", [])) if dev.spec.get("mig_mode", [0])[0] == 1 else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device, index):  # noqa: N802
        dev, _ = self._device("nvmlDeviceGetMigDeviceHandleByIndex", device)
        if not 0 <= index < len(dev.spec.get("mig_devices", [])):
            raise self._error("NVML_ERROR_NOT_FOUND")
        return FakeHandle(device.index, index)


class ManualClock:
    """A clock tests step by hand: ``clock.t = 1.25``."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
