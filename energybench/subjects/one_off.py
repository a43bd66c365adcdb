"""Measuring a method's one-off cost (distillation's training, static quantization's calibration).

A method that spends energy once to make its model must not hide it: the work runs in its own meter window
and the joules go into ``Model.one_off``, from which the runner reports the break-even point. The work is a
self-contained zero-argument function (it builds its own copy of what it changes), so the same function can
be measured again: ``measure_one_off`` is the one place a one-off window is opened, and repeating a one-off
measurement is calling it again with the same ``work``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from energybench.subjects.api import Context

T = TypeVar("T")


def measure_one_off(ctx: Context, what: str, work: Callable[[], T], **details: Any) -> tuple[T, dict[str, Any]]:
    """Run ``work()`` in a window of ``ctx.meter``; return its result and the ``Model.one_off`` mapping.

    The mapping holds ``what`` and ``details``, plus ``energy_j``, ``duration_s`` and ``source`` when a meter
    measured it. Without a meter there is no figure (never a made-up one): ``energy_j`` is absent.
    """
    one_off: dict[str, Any] = {"what": what, **details}
    meter = ctx.meter
    if meter is None:
        return work(), one_off
    window = f"one-off:{what}:{id(work)}"
    meter.begin(window)
    try:
        result = work()
    finally:
        measured = meter.end(window)
    one_off.update(energy_j=measured.energy_j, duration_s=measured.duration_s, source=measured.source)
    return result, one_off
