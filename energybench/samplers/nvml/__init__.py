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

* ``nvml_module``: an object with the ``pynvml`` call shapes (tests inject ``tests/support/fake_nvml.py``);
  default ``import pynvml`` (from ``nvidia-ml-py``).
* ``gpu_indices``: ``list[int] | None`` (``--gpu-index``), indices as this process sees GPUs, i.e. after
  ``CUDA_VISIBLE_DEVICES``; an index that does not exist makes ``create`` raise ``ConfigError``.
* ``nvml_mode``: ``"auto"`` (default: counter where supported, else polling), ``"counter"``, ``"polling"``,
  or ``"both"`` (counter sampler plus a polling sampler on domain ``gpu:N-polled`` with ``counted=False``,
  so one window shows both figures without adding them; ``scripts/gpu_check.py`` uses it).
* ``environ``: a mapping used instead of ``os.environ`` (tests of ``CUDA_VISIBLE_DEVICES``).
* ``clock``: the callable that timestamps utilisation samples, default ``time.monotonic`` (tests pass the
  fake's clock).
* ``gpu_share`` / ``$ENERGYBENCH_GPU_SHARE``: add ``gpu:N:process-share``, this process tree's share of each
  GPU by SM utilisation (``samplers.gpu_share``); ``gpu_share_pids`` (tests) says whose pids are "ours".

The package, one module a job: ``errors`` (typed NVML errors and their fixes), ``library`` (loading
``pynvml``, checking its distribution), ``visibility`` (``CUDA_VISIBLE_DEVICES`` and MIG to physical GPUs),
``slices`` (per-process utilisation and what each MIG slice can read), ``sampler`` (the samplers) and
``factory`` (``probe``, ``create``, ``FACTORY``). This face hands their public
names on, so ``from energybench.samplers import nvml`` then ``nvml.FACTORY`` or ``nvml.NvmlGpuLostError`` works.
"""

from energybench.samplers.nvml.errors import (
    NvmlError,
    NvmlGpuLostError,
    NvmlNotSupportedError,
    NvmlPermissionError,
    NvmlUnavailableError,
    nvml_error,
    unavailable_reason,
)
from energybench.samplers.nvml.factory import FACTORY, MODES, create, probe, validate_options
from energybench.samplers.nvml.library import distribution_problem, import_nvml, installed_versions
from energybench.samplers.nvml.sampler import (
    AVERAGE_POWER_RESOLUTION_S,
    COUNTER_RESOLUTION_S,
    INSTANT_POWER_RESOLUTION_S,
    METHOD_COUNTER,
    METHOD_POLLING,
    NAME,
    Activity,
    NvmlEnergySampler,
    NvmlGpuSampler,
    NvmlPowerSampler,
    field_number,
    instant_power_mw,
)
from energybench.samplers.nvml.visibility import GpuTarget, Visible, select_targets, visible_gpus

__all__ = [
    "AVERAGE_POWER_RESOLUTION_S",
    "COUNTER_RESOLUTION_S",
    "FACTORY",
    "INSTANT_POWER_RESOLUTION_S",
    "METHOD_COUNTER",
    "METHOD_POLLING",
    "MODES",
    "NAME",
    "Activity",
    "GpuTarget",
    "NvmlEnergySampler",
    "NvmlError",
    "NvmlGpuLostError",
    "NvmlGpuSampler",
    "NvmlNotSupportedError",
    "NvmlPermissionError",
    "NvmlPowerSampler",
    "NvmlUnavailableError",
    "Visible",
    "create",
    "distribution_problem",
    "field_number",
    "import_nvml",
    "installed_versions",
    "instant_power_mw",
    "nvml_error",
    "probe",
    "select_targets",
    "unavailable_reason",
    "validate_options",
    "visible_gpus",
]
