"""NVML failures as typed, one-line errors that name the GPU, the call, NVML's reason and the fix.

NVML reports failures as numeric return codes; users need to know what to do. The codes are part of NVML's
ABI (nvml.h), so the mapping does not depend on which ``pynvml`` module object is in use (the real one or a
test's fake).
"""

from __future__ import annotations

from energybench.errors import SamplerError

# Return codes from nvml.h.
NOT_SUPPORTED = 3
NO_PERMISSION = 4
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
RESET_REQUIRED = 16
UNINITIALIZED = 1
LIB_RM_VERSION_MISMATCH = 18


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
    GPU_IS_LOST: (
        NvmlGpuLostError,
        "GPU is lost",
        "it fell off the bus or was reset; check `nvidia-smi` and `dmesg` (other devices' figures are kept)",
    ),
    NO_PERMISSION: (
        NvmlPermissionError,
        "permission denied",
        "give this user read access to /dev/nvidia* (in a container: run with --gpus or the device plugin)",
    ),
    NOT_SUPPORTED: (NvmlNotSupportedError, "not supported", "this GPU or driver does not offer it"),
    DRIVER_NOT_LOADED: (
        NvmlUnavailableError,
        "NVIDIA driver not loaded",
        "install or load the NVIDIA kernel driver (`nvidia-smi` must work)",
    ),
    LIBRARY_NOT_FOUND: (
        NvmlUnavailableError,
        "NVML library not found",
        "install the NVIDIA driver (it ships libnvidia-ml.so.1) or mount it into the container",
    ),
    FUNCTION_NOT_FOUND: (
        NvmlNotSupportedError,
        "function not found in libnvidia-ml",
        "the driver is older than this call needs: update the NVIDIA driver",
    ),
    RESET_REQUIRED: (NvmlError, "GPU requires reset", "reset it (`nvidia-smi -r`) or reboot"),
    UNINITIALIZED: (
        NvmlError,
        "NVML is not initialised",
        "some other code called nvmlShutdown(); do not shut NVML down while measuring",
    ),
    LIB_RM_VERSION_MISMATCH: (
        NvmlUnavailableError,
        "driver/library version mismatch",
        "the kernel module and libnvidia-ml differ: reboot or reload the driver",
    ),
}


def nvml_error(exc: BaseException, call: str, where: str) -> NvmlError:
    """Turn a ``pynvml.NVMLError`` into the typed, one-line error the CLI prints."""
    code = getattr(exc, "value", None)
    fallback = (NvmlError, str(exc) or "NVML error", "see `nvidia-smi` for the GPU state")
    cls, text, fix = _HINTS.get(code, fallback) if isinstance(code, int) else fallback
    suffix = f" (NVML code {code})" if code is not None else ""
    return cls(f"NVML {call} failed for {where}: {text}{suffix}: {fix}")


def unavailable_reason(exc: BaseException) -> str:
    """The probe's one-line reason for an ``nvmlInit`` failure (no library, no driver...)."""
    code = getattr(exc, "value", None)
    if code in _HINTS:
        _cls, text, fix = _HINTS[code]
        return f"{text}: {fix}"
    return f"NVML failed to initialise ({exc}): check the driver with `nvidia-smi`"
