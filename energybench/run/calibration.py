"""How many times to repeat a call so one measurement window covers enough counter updates.

An energy counter only changes every ``resolution_s`` (NVML's energy counter: ~0.1 s; CPU-time ticks:
10 ms), so a window around one fast call reads 0 J (the device is then missing from the total) or one
update. The pytest fixture and ``energybench run`` both size their windows here: at least
``WINDOW_RESOLUTIONS`` updates of the slowest counted sampler, by repeating the call inside the window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

#: Each window lasts at least this many updates of the slowest sampler's counter (10: quantisation error of
#: one update is at most 10% of a window, and the median over rounds shrinks it further).
WINDOW_RESOLUTIONS = 10
MAX_ITERATIONS = 10_000_000


def slowest_resolution_s(samplers: Sequence[Any]) -> float:
    """The longest update period among samplers that feed a total (a domain with ``counted=True``); a
    sampler reported only for comparison (``nvml_mode="both"``'s polled copy) does not size windows."""
    periods = []
    for sampler in samplers:
        try:
            counted = any(d.counted for d in sampler.domains())
        except Exception:  # a sampler that cannot list its domains sizes nothing
            continue
        if counted:
            periods.append(float(getattr(sampler, "resolution_s", 0.0) or 0.0))
    return max(periods, default=0.0)


def window_target_s(samplers: Sequence[Any], min_time_s: float = 0.0) -> float:
    """How long each window must last on these samplers: ``WINDOW_RESOLUTIONS`` of the slowest one."""
    return max(float(min_time_s), WINDOW_RESOLUTIONS * slowest_resolution_s(samplers))


def calibrate(target: Callable[[], Any], want_s: float, *, first_call_s: float | None = None) -> int:
    """Calls per window so that a window lasts at least ``want_s``.

    ``first_call_s`` is the time of a call already made (a warm-up); without it ``target`` is called once
    first, which also warms it up (imports, caches, lazy init). Sized from the fastest time per call seen,
    so a window is never shorter than the target unless the code speeds up afterwards.

    Under torch.distributed every rank must call ``target`` (a DDP step, say) equally often, or the
    collectives inside it hang: each decision is agreed on by all ranks (the slowest rank wins).
    """
    from energybench.distributed import agree  # no-op outside torch.distributed; never imports torch

    if first_call_s is None:
        t0 = time.perf_counter()
        target()
        first_call_s = time.perf_counter() - t0
    per_call = agree(first_call_s)
    if per_call >= want_s or want_s <= 0:
        return 1
    iterations = 1
    batch = per_call
    for _ in range(3):  # re-time batches: the first call is often slower than the rest
        iterations = min(MAX_ITERATIONS, max(1, math.ceil(want_s / max(per_call, 1e-9))))
        t0 = time.perf_counter()
        for _ in range(iterations):
            target()
        batch = agree(time.perf_counter() - t0)
        if batch / iterations >= per_call * 0.95 or iterations >= MAX_ITERATIONS:
            break  # per-call time has settled
        per_call = batch / iterations
    return min(MAX_ITERATIONS, max(1, math.ceil(want_s / max(min(per_call, batch / iterations), 1e-9))))
