"""The fake amdsmi must keep the real binding's call shapes, or the AMD sampler tests prove nothing.

The binding installs from PyPI but cannot be imported without ROCm's ``libamd_smi.so`` (its import fails with
a ``KeyError`` before any function exists), so its signatures are read from its installed source with ``ast``
(``api_signatures``). Where it is not installed, the signatures recorded from amdsmi 7.0.2 stand in; where it
is, the recording must still match it, so the recording cannot drift either.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re

import pytest
from api_signatures import installed_source, object_shape, source_constants, source_shapes
from fake_amdsmi import STATUS, AmdSmiLibraryException, AmdSmiParameterException, FakeAmdSmi

from energybench.samplers import amd
from energybench.samplers.amd import errors

RECORDED = json.loads((__import__("pathlib").Path(__file__).parents[1] / "support" / "data" /
                       "amdsmi_signatures.json").read_text())
INTERFACE = installed_source("amdsmi", "amdsmi_interface")


def fake_functions() -> dict[str, object]:
    fake = FakeAmdSmi("amd_synthetic.json")
    return {n: getattr(fake, n) for n, _ in inspect.getmembers(FakeAmdSmi, inspect.isfunction)
            if n.startswith("amdsmi_")}


def real_shapes() -> dict[str, list]:
    """The installed binding's shapes where it is installed, else the recorded 7.0.2 ones."""
    if INTERFACE is None:
        return RECORDED["functions"]
    return source_shapes(INTERFACE, fake_functions())


def test_fake_functions_match_the_bindings_signatures() -> None:
    functions = fake_functions()
    assert len(functions) >= 14
    shapes = real_shapes()
    for name, bound in functions.items():
        assert name in shapes, f"{name} is not a function of amdsmi"
        assert object_shape(bound) == shapes[name], name


@pytest.mark.skipif(INTERFACE is None, reason="amdsmi is not installed: checked against the recorded signatures")
def test_the_recording_matches_the_installed_binding() -> None:
    assert source_shapes(INTERFACE, RECORDED["functions"]) == RECORDED["functions"]
    package_init = INTERFACE.parent / "__init__.py"
    exported = {a.name for node in ast.parse(package_init.read_text()).body if isinstance(node, ast.ImportFrom)
                for a in node.names}
    assert set(fake_functions()) <= exported  # the sampler calls them as amdsmi.<name>


def test_fake_exceptions_and_status_codes_are_the_real_ones() -> None:
    wrapper = installed_source("amdsmi", "amdsmi_wrapper")
    exception_src = installed_source("amdsmi", "amdsmi_exception")
    constants = source_constants(wrapper, "AMDSMI_STATUS_") if wrapper else RECORDED["constants"]
    for name, value in STATUS.items():
        assert constants[name] == value, name
    wanted = ["AmdSmiLibraryException.__init__", "AmdSmiLibraryException.get_error_code",
              "AmdSmiLibraryException.get_error_info", "AmdSmiParameterException.__init__"]
    shapes = source_shapes(exception_src, wanted) if exception_src else RECORDED["exceptions"]
    assert object_shape(AmdSmiLibraryException.__init__)[1:] == shapes["AmdSmiLibraryException.__init__"]
    assert object_shape(AmdSmiLibraryException.get_error_code)[1:] == shapes["AmdSmiLibraryException.get_error_code"]
    assert object_shape(AmdSmiLibraryException.get_error_info)[1:] == shapes["AmdSmiLibraryException.get_error_info"]
    assert object_shape(AmdSmiParameterException.__init__)[1:] == shapes["AmdSmiParameterException.__init__"]
    # the sampler's own table of codes is the binding's too
    for attr, value in vars(errors).items():
        if attr.isupper() and isinstance(value, int):
            assert constants[f"AMDSMI_STATUS_{attr}"] == value, attr


def test_every_amdsmi_call_the_sampler_makes_is_faked() -> None:
    """A call the sampler makes that the fake lacks would only fail on a real GPU: catch it here."""
    source = "\n".join(inspect.getsource(importlib.import_module(f"{amd.__name__}.{m.name}"))
                       for m in pkgutil.iter_modules(amd.__path__))
    used = set(re.findall(r"\b(amdsmi_[a-z_]+)\b", source)) - {"amdsmi_module", "amdsmi_version", "amdsmi_init_"}
    used = {n for n in used if n in real_shapes() or n.startswith("amdsmi_get") or n in ("amdsmi_init",
                                                                                         "amdsmi_shut_down")}
    assert "amdsmi_get_energy_count" in used and "amdsmi_get_gpu_process_list" in used
    missing = sorted(used - set(fake_functions()))
    assert not missing, missing


def test_fake_counter_counts_in_resolution_steps_and_wraps_at_its_width() -> None:
    t = [0.0]
    trace = {"devices": [{"uuid": "u", "counter_resolution": 15.3, "energy_start_counts": 2**64 - 1000,
                          "samples": [{"t": 0, "power_w": 300}]}]}
    fake = FakeAmdSmi(trace, clock=lambda: t[0])
    fake.amdsmi_init()
    (handle,) = fake.amdsmi_get_processor_handles()
    a = fake.amdsmi_get_energy_count(handle)
    assert set(a) == {"energy_accumulator", "counter_resolution", "timestamp"}  # the 6.2.1+ keys
    t[0] = 1.0
    b = fake.amdsmi_get_energy_count(handle)
    assert b["energy_accumulator"] < a["energy_accumulator"]  # it wrapped
    joules = ((b["energy_accumulator"] - a["energy_accumulator"]) % 2**64) * 15.3 / 1e6
    assert joules == pytest.approx(300.0, rel=0.01)
    with pytest.raises(AmdSmiParameterException):
        fake.amdsmi_get_energy_count(0)  # the real binding checks the handle's type first


def test_fake_raises_the_real_error_shape() -> None:
    fake = FakeAmdSmi({"init_error": "AMDSMI_STATUS_DRIVER_NOT_LOADED", "devices": []})
    with pytest.raises(AmdSmiLibraryException) as info:
        fake.amdsmi_init()
    assert info.value.get_error_code() == 34 and info.value.err_code == 34
    assert str(info.value).startswith("Error code:\n\t34 |")


def test_the_public_readings_say_where_they_come_from() -> None:
    data = json.loads((__import__("pathlib").Path(__file__).parents[1] / "support" / "data" /
                       "amdsmi_public_readings.json").read_text())
    assert data["synthetic"] is False
    assert all(d["source"].startswith("https://github.com/") for d in data["devices"])
