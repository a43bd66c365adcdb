"""The fake NVML must keep the real module's call shapes, or the sampler tests prove nothing."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pynvml
import pytest
from fake_nvml import FakeNvml, ManualClock

from energybench.samplers import nvml as nvml_sampler


def _fake_functions(fake: FakeNvml) -> dict[str, object]:
    return {
        name: getattr(fake, name)
        for name, _ in inspect.getmembers(type(fake), inspect.isfunction)
        if name.startswith("nvml")
    }


def test_fake_functions_exist_in_real_pynvml_with_the_same_signatures() -> None:
    fake = FakeNvml("nvml_synthetic.json")
    functions = _fake_functions(fake)
    assert len(functions) >= 20
    for name, bound in functions.items():
        real = getattr(pynvml, name, None)
        assert real is not None, f"{name} is not in the installed pynvml (nvidia-ml-py)"
        assert inspect.signature(bound) == inspect.signature(real), name


def test_every_nvml_call_the_sampler_makes_is_faked() -> None:
    """A call the sampler makes that the fake lacks would only fail on a real GPU: catch it here."""
    source = "\n".join(  # the calls live in the package's modules, not in its face
        inspect.getsource(importlib.import_module(f"{nvml_sampler.__name__}.{module.name}"))
        for module in pkgutil.iter_modules(nvml_sampler.__path__)
    )
    fake = FakeNvml("nvml_synthetic.json")
    named = set(re.findall(r"\b(nvml[A-Z]\w+)\b", source))
    used = {n for n in named if callable(getattr(pynvml, n, None)) and not isinstance(getattr(pynvml, n), type)}
    assert "nvmlDeviceGetTotalEnergyConsumption" in used
    missing = sorted(n for n in used if n not in _fake_functions(fake))
    assert not missing, missing


def test_fake_counter_is_the_integral_of_power_in_steps_of_its_period() -> None:
    clock = ManualClock(10.0)
    fake = FakeNvml("nvml_synthetic.json", clock=clock)
    fake.nvmlInit()
    h = fake.nvmlDeviceGetHandleByIndex(0)
    e0 = fake.nvmlDeviceGetTotalEnergyConsumption(h)
    clock.t = 10.05  # inside the same 100 ms tick: the counter has not moved
    assert fake.nvmlDeviceGetTotalEnergyConsumption(h) == e0
    clock.t = 20.0
    e1 = fake.nvmlDeviceGetTotalEnergyConsumption(h)
    power_w = fake.nvmlDeviceGetPowerUsage(h) / 1000
    assert 200 < (e1 - e0) / 1000 / 10.0 < 330  # mean of the 285 W +/- 25 W load
    assert 200 < power_w < 330
    values = fake.nvmlDeviceGetFieldValues(h, [pynvml.NVML_FI_DEV_POWER_INSTANT])
    assert isinstance(values[0], pynvml.c_nvmlFieldValue_t) and values[0].nvmlReturn == pynvml.NVML_SUCCESS


def test_fake_raises_the_real_error_classes() -> None:
    fake = FakeNvml({"driver_version": "1", "init_error": "NVML_ERROR_DRIVER_NOT_LOADED", "devices": []})
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        fake.nvmlInit()
    fake = FakeNvml("nvml_synthetic.json")
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    with pytest.raises(pynvml.NVMLError_NotSupported):
        fake.nvmlDeviceGetTotalEnergyConsumption(fake.nvmlDeviceGetHandleByIndex(1))


def test_synthetic_trace_says_it_is_synthetic() -> None:
    fake = FakeNvml("nvml_synthetic.json")
    assert fake.trace["synthetic"] is True
    assert "NOT recorded from a device" in fake.trace["note"]
