"""amdsmi failures as typed, one-line errors that name the GPU, the call, amdsmi's reason and the fix.

amdsmi reports failures as ``AmdSmiLibraryException`` carrying a numeric status (``amdsmi_status_t``). The
codes are part of the library's ABI (``amdsmi.h``; the Python binding's ``amdsmi_wrapper.AMDSMI_STATUS_*``),
so the mapping does not depend on which module object is in use (the real binding or a test's fake).
"""

from __future__ import annotations

from energybench.errors import SamplerError

# amdsmi_status_t values (amdsmi 6.x and 7.x).
INVAL = 1
NOT_SUPPORTED = 2
NOT_YET_IMPLEMENTED = 3
FAIL_LOAD_MODULE = 4
FAIL_LOAD_SYMBOL = 5
DRM_ERROR = 6
API_FAILED = 7
TIMEOUT = 8
RETRY = 9
NO_PERM = 10
IO = 12
FILE_ERROR = 14
INIT_ERROR = 18
BUSY = 30
NOT_FOUND = 31
NOT_INIT = 32
DRIVER_NOT_LOADED = 34
NO_DATA = 40
AMDGPU_RESTART_ERR = 54


class AmdSmiError(SamplerError):
    """An amdsmi call failed; the message names the GPU, the call, amdsmi's reason and the fix."""


class AmdGpuLostError(AmdSmiError):
    """The GPU vanished or was reset mid-run; other samplers' figures are unaffected."""


class AmdPermissionError(AmdSmiError):
    """amdsmi was refused access to the GPU (``AMDSMI_STATUS_NO_PERM``)."""


class AmdNotSupportedError(AmdSmiError):
    """The GPU, driver or virtual machine does not offer the call."""


class AmdUnavailableError(AmdSmiError):
    """amdsmi cannot start: no binding, no ``libamd_smi.so``, or no amdgpu driver."""


_LOST = (
    AmdGpuLostError,
    "GPU not reachable",
    "it was reset, unbound or fell off the bus; check `amd-smi list` and `dmesg` (other devices' figures are kept)",
)
_HINTS: dict[int, tuple[type[AmdSmiError], str, str]] = {
    NOT_FOUND: _LOST,
    DRM_ERROR: _LOST,
    IO: _LOST,
    FILE_ERROR: _LOST,
    AMDGPU_RESTART_ERR: _LOST,
    NO_PERM: (
        AmdPermissionError,
        "permission denied",
        "add this user to the render and video groups (`sudo usermod -aG render,video $USER`, then log in "
        "again); in a container pass --device /dev/kfd --device /dev/dri",
    ),
    NOT_SUPPORTED: (
        AmdNotSupportedError,
        "not supported",
        "this GPU, driver or a virtual-machine guest does not offer it (amdsmi's power and energy calls are "
        "bare-metal only)",
    ),
    NOT_YET_IMPLEMENTED: (AmdNotSupportedError, "not implemented for this GPU", "update ROCm's amd-smi-lib"),
    DRIVER_NOT_LOADED: (
        AmdUnavailableError,
        "amdgpu driver not loaded",
        "load the amdgpu kernel driver (`sudo modprobe amdgpu`; `amd-smi list` must work)",
    ),
    FAIL_LOAD_MODULE: (
        AmdUnavailableError,
        "libamd_smi.so could not be loaded",
        "install ROCm's amd-smi-lib (the pip package `amdsmi` is only the Python binding) or set ROCM_PATH",
    ),
    FAIL_LOAD_SYMBOL: (
        AmdUnavailableError,
        "symbol missing from libamd_smi.so",
        "the amdsmi binding is newer than the installed ROCm: install the `amdsmi` version matching ROCm",
    ),
    INIT_ERROR: (AmdUnavailableError, "amdsmi failed to initialise", "check `amd-smi list` and the ROCm install"),
    NOT_INIT: (
        AmdSmiError,
        "amdsmi is not initialised",
        "some other code called amdsmi_shut_down(); do not shut amdsmi down while measuring",
    ),
    RETRY: (AmdSmiError, "device busy (retry)", "the driver asked to retry; measure again"),
    BUSY: (AmdSmiError, "device busy", "another tool holds the device; measure again"),
    TIMEOUT: (AmdSmiError, "timed out", "the driver did not answer in time; check `dmesg`"),
    NO_DATA: (AmdNotSupportedError, "no data", "the driver has no figure for this GPU"),
}


def error_code(exc: BaseException) -> int | None:
    """The ``amdsmi_status_t`` of an ``AmdSmiLibraryException`` (``err_code``), or ``None``."""
    code = getattr(exc, "err_code", None)
    return code if isinstance(code, int) else None


def amd_error(exc: BaseException, call: str, where: str) -> AmdSmiError:
    """Turn an amdsmi exception into the typed, one-line error the CLI prints."""
    code = error_code(exc)
    fallback = (AmdSmiError, _short(exc), "see `amd-smi metric` for the GPU's state")
    cls, text, fix = _HINTS.get(code, fallback) if code is not None else fallback
    suffix = f" (amdsmi status {code})" if code is not None else ""
    return cls(f"amdsmi {call} failed for {where}: {text}{suffix}: {fix}")


def unavailable_reason(exc: BaseException) -> str:
    """The probe's one-line reason for an ``amdsmi_init`` failure."""
    code = error_code(exc)
    if code in _HINTS:
        _cls, text, fix = _HINTS[code]
        return f"{text}: {fix}"
    return f"amdsmi failed to initialise ({_short(exc)}): check the driver with `amd-smi list`"


def _short(exc: BaseException) -> str:
    """amdsmi's own messages span lines ("Error code:\\n\\t2 | ..."): one line of them."""
    return " ".join(str(exc).split()) or exc.__class__.__name__
