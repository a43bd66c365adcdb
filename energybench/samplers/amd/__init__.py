"""AMD GPU energy through amdsmi: the energy accumulator where it answers, polled power where not.

Why two paths, as for NVML: the accumulator (``amdsmi_get_energy_count``: a count of ``counter_resolution``
microjoules with the firmware's timestamp) read at window edges is exact and free between edges, so GPUs
that have it get a ``kind="counter"`` sampler (method ``amdsmi-energy-counter``, wrap-aware at its 64-bit
width). Where it is missing (virtual machines, some consumer GPUs) or its known faults make it untrustworthy,
``amd_mode="polling"`` polls ``amdsmi_get_power_info`` (method ``amdsmi-power-polling``).

One sampler per GPU, so a GPU that vanishes raises ``AmdGpuLostError`` from its own ``read()`` while the other
samplers keep their figures.

Options (the mapping handed to ``FACTORY.probe`` / ``FACTORY.create``):

* ``amdsmi_module``: an object with the ``amdsmi`` call shapes (tests inject ``tests/support/fake_amdsmi.py``);
  default ``import amdsmi`` (PyPI ``amdsmi``, the ``[amd]`` extra, plus ROCm's ``libamd_smi.so``).
* ``gpu_indices``: indices as this process sees GPUs (after ``ROCR_VISIBLE_DEVICES`` and
  ``HIP_VISIBLE_DEVICES`` / ``CUDA_VISIBLE_DEVICES``); one that does not exist is a ``ConfigError``.
* ``amd_mode``: ``"auto"`` (default), ``"counter"``, ``"polling"`` or ``"both"`` (counter plus an uncounted
  polled ``gpu:N-polled`` domain, as ``scripts/amd_check.py`` uses).
* ``gpu_share`` / ``$ENERGYBENCH_GPU_SHARE``: add this process tree's share of each GPU
  (``samplers.gpu_share``); ``gpu_share_pids`` (tests) says whose pids are "ours".
* ``environ`` (tests of the visibility variables) and ``clock`` (tests stepping time by hand).

The package, one module a job: ``errors`` (typed errors and fixes), ``library`` (loading the binding),
``visibility`` (the *_VISIBLE_DEVICES rules), ``sampler`` (the samplers), ``processes`` (per-process GFX
time for the share) and ``factory`` (``probe``, ``create``, ``FACTORY``).
"""

from energybench.samplers.amd.errors import (
    AmdGpuLostError,
    AmdNotSupportedError,
    AmdPermissionError,
    AmdSmiError,
    AmdUnavailableError,
    amd_error,
)
from energybench.samplers.amd.factory import FACTORY, MODES, create, probe
from energybench.samplers.amd.library import import_amdsmi
from energybench.samplers.amd.sampler import (
    METHOD_COUNTER,
    METHOD_POLLING,
    NAME,
    AmdEnergySampler,
    AmdGpuSampler,
    AmdPowerSampler,
)
from energybench.samplers.amd.visibility import AmdTarget, AmdVisible, visible_gpus

__all__ = [
    "FACTORY",
    "METHOD_COUNTER",
    "METHOD_POLLING",
    "MODES",
    "NAME",
    "AmdEnergySampler",
    "AmdGpuLostError",
    "AmdGpuSampler",
    "AmdNotSupportedError",
    "AmdPermissionError",
    "AmdPowerSampler",
    "AmdSmiError",
    "AmdTarget",
    "AmdUnavailableError",
    "AmdVisible",
    "amd_error",
    "create",
    "import_amdsmi",
    "probe",
    "visible_gpus",
]
