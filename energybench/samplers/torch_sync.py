"""Letting queued GPU work finish before a window's edge read, for every vendor's torch backend.

GPU kernels run asynchronously: without a synchronisation at the edge, work queued inside a window is drawn
after the window closed and counts in the next one. The rules are the same for every vendor:

* torch is never imported here: if the program has not imported it, nothing can be queued;
* only devices this process already uses are synchronised, because synchronising an untouched device
  creates a context on it (hundreds of MB of GPU memory, and a process on a GPU it was never meant to use).

ROCm builds of torch drive AMD GPUs through ``torch.cuda`` (HIP), so NVIDIA and AMD share one function.
"""

from __future__ import annotations

import sys
from typing import Any


def _torch_attr(name: str) -> Any | None:
    torch = sys.modules.get("torch")
    return getattr(torch, name, None) if torch is not None else None


def synchronize_cuda_device(index: int) -> None:
    """``torch.cuda.synchronize(index)`` when CUDA/HIP is initialised and this process uses device ``index``
    (its current device, or memory reserved on it)."""
    cuda = _torch_attr("cuda")
    if cuda is None or not cuda.is_initialized():
        return
    if index == cuda.current_device() or cuda.memory_reserved(index) > 0:
        cuda.synchronize(index)


def synchronize_mps() -> None:
    """``torch.mps.synchronize()`` on Apple silicon when this process holds memory on the GPU (MPS has no
    "initialised" flag; memory allocated through it means work may be queued)."""
    mps = _torch_attr("mps")
    backends = _torch_attr("backends")
    available = getattr(getattr(backends, "mps", None), "is_available", None)
    if mps is None or available is None or not available():
        return
    if mps.current_allocated_memory() > 0:
        mps.synchronize()


def synchronize_xpu() -> None:
    """``torch.xpu.synchronize(i)`` for every Intel GPU this process holds memory on, once XPU is initialised
    (hwmon numbers DRM cards, torch numbers XPU devices: the two cannot be matched, so every used one waits)."""
    xpu = _torch_attr("xpu")
    if xpu is None or not getattr(xpu, "is_initialized", lambda: False)():
        return
    for index in range(xpu.device_count()):
        if xpu.memory_reserved(index) > 0:
            xpu.synchronize(index)
