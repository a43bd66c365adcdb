"""Loading NVML: the injected module or the real ``pynvml``, and whether the right distribution provides it.

``pynvml`` may come from NVIDIA's ``nvidia-ml-py`` (the right one) or from deprecated or unofficial
distributions that ship old bindings; the probe says which and how to fix it. A machine without
``libnvidia-ml`` stays without it for the life of the process, which this module remembers.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from typing import Any

from energybench.samplers.nvml.errors import NvmlUnavailableError

# A missing libnvidia-ml stays missing for the life of the process; remembering that spares every later
# ``measure()`` block a failing dlopen (~2-8 ms). Only this negative fact is kept, never a handle.
_missing_library: list[str] = []


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


def missing_library() -> str | None:
    """Why the real libnvidia-ml could not be loaded earlier in this process, or ``None``."""
    return _missing_library[0] if _missing_library else None


def remember_missing_library(reason: str) -> None:
    """Record that the real libnvidia-ml is absent, so later probes answer at once."""
    _missing_library.append(reason)
