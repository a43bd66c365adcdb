"""Loading amdsmi: the injected module or the real binding, and why it cannot load.

The PyPI package ``amdsmi`` is only a ctypes binding; the library it binds (``libamd_smi.so``) ships with
ROCm. Importing the binding without the library fails with a ``KeyError`` or ``OSError`` rather than an
``ImportError``, and prints a line on stdout first, so the import is wrapped: stdout is kept clean for
``energybench sensors``, and each known failure type becomes the reason with its fix. A machine without the
library stays without it for the life of the process, which this module remembers (a negative fact only,
never a handle).
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from typing import Any

from energybench.samplers.amd.errors import AmdUnavailableError

EXTRA = "pip install 'energybench[amd]'"
_missing_library: list[str] = []


def binding_version() -> str | None:
    """The installed ``amdsmi`` distribution's version, or ``None``."""
    try:
        return importlib_metadata.version("amdsmi")
    except importlib_metadata.PackageNotFoundError:
        return None


def import_amdsmi(options: Mapping[str, Any]) -> Any:
    """The injected ``amdsmi_module`` or the real ``amdsmi``; a failure is an ``AmdUnavailableError`` whose
    message says what is missing and how to install it."""
    module = options.get("amdsmi_module")
    if module is not None:
        return module
    if _missing_library:
        raise AmdUnavailableError(_missing_library[0])
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the binding prints its own complaint on stdout
            amdsmi = importlib.import_module("amdsmi")
    except ModuleNotFoundError:
        raise AmdUnavailableError(
            f"the amdsmi Python binding is not installed: {EXTRA} (it also needs ROCm's amd-smi-lib)"
        ) from None
    except (ImportError, OSError, KeyError, AttributeError) as exc:
        version = binding_version()
        reason = (
            f"the amdsmi binding{' ' + version if version else ''} is installed but ROCm's libamd_smi.so cannot be "
            f"loaded ({type(exc).__name__}: {exc}): install amd-smi-lib from ROCm (or set ROCM_PATH); an AMD GPU "
            "and the amdgpu driver are needed too"
        )
        _missing_library.append(reason)
        raise AmdUnavailableError(reason) from None
    return amdsmi


def forget_missing_library() -> None:
    """Let the next import try again (tests; a process that installed ROCm meanwhile)."""
    _missing_library.clear()
