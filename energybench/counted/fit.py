"""Least-squares per-event energies from kernels counted by the simulator and measured by a real counter.

Each kernel gives one equation, ``measured joules per call = sum(events per call x joules per event)``. The
rows are divided by their measured joules, so the fit minimises *relative* error: kernels whose energies
differ a hundredfold weigh alike, as they do in a comparison of two runs. Columns are scaled to unit length
before solving, so the condition number says whether the kernels tell the events apart (a fit that cannot is
refused, naming the events it cannot separate) rather than how their units differ.

The fit error reported is the residual of every kernel, its root mean square, and the degrees of freedom
(kernels minus events): with no spare kernel a perfect fit proves nothing, and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from energybench.counted.errors import CountedError

#: Above this, two events move together across the kernels and their energies trade off freely.
MAX_CONDITION = 1e4


@dataclass(frozen=True)
class Sample:
    """One kernel: its derived events per call and the joules per call the real counter measured."""

    name: str
    events: Mapping[str, float]
    joules: float


@dataclass(frozen=True)
class Fit:
    """Fitted joules per event, and how well they reproduce each kernel."""

    energies_j: dict[str, float]
    measured_j: dict[str, float]
    predicted_j: dict[str, float]
    condition: float
    warnings: tuple[str, ...] = ()

    @property
    def residuals(self) -> dict[str, float]:
        """(predicted - measured) / measured per kernel."""
        return {k: (self.predicted_j[k] - m) / m for k, m in self.measured_j.items()}

    @property
    def rms_relative(self) -> float:
        values = list(self.residuals.values())
        return math.sqrt(sum(r * r for r in values) / len(values))

    @property
    def max_relative(self) -> float:
        return max(abs(r) for r in self.residuals.values())

    @property
    def degrees_of_freedom(self) -> int:
        return len(self.measured_j) - len(self.energies_j)

    def to_dict(self) -> dict[str, Any]:
        return {
            "energies_j": self.energies_j,
            "kernels": {k: {"measured_j": self.measured_j[k], "predicted_j": self.predicted_j[k],
                            "residual": self.residuals[k]} for k in self.measured_j},
            "rms_relative_residual": self.rms_relative,
            "max_relative_residual": self.max_relative,
            "degrees_of_freedom": self.degrees_of_freedom,
            "condition_number": self.condition,
            "warnings": list(self.warnings),
        }


def fit_energies(samples: Sequence[Sample], events: Sequence[str]) -> Fit:
    """Joules per event for ``events`` from ``samples``; ``CountedError`` when the kernels cannot determine them."""
    if len(samples) < len(events):
        raise CountedError(f"{len(samples)} kernel(s) cannot determine {len(events)} energies: use at least as many "
                           "kernels as events (the built-in set has six)")
    bad = [s.name for s in samples if not (math.isfinite(s.joules) and s.joules > 0)]
    if bad:
        raise CountedError(f"no energy measured above the idle floor for {', '.join(bad)}: run longer "
                           "(--min-seconds) on a quieter machine, or check that RAPL counts here "
                           "(`energybench sensors`)")
    rows = np.array([[float(s.events[e]) / s.joules for e in events] for s in samples])
    scale = np.linalg.norm(rows, axis=0)
    if np.any(scale == 0):
        idle = [e for e, v in zip(events, scale, strict=True) if v == 0]
        raise CountedError(f"no kernel produces {', '.join(idle)}: leave the event out (--events) or add a kernel")
    scaled = rows / scale
    condition = float(np.linalg.cond(scaled))
    if not math.isfinite(condition) or condition > MAX_CONDITION:
        raise CountedError(f"the kernels cannot tell {_collinear(scaled, events)} apart (condition number "
                           f"{condition:.3g}): add a kernel that varies them independently or fit fewer --events")
    solution, *_ = np.linalg.lstsq(scaled, np.ones(len(samples)), rcond=None)
    energies = {e: float(x) for e, x in zip(events, solution / scale, strict=True)}
    predicted = {s.name: sum(energies[e] * float(s.events[e]) for e in events) for s in samples}
    warnings = [f"{e} got a negative energy ({j:.3g} J): the kernels do not pin it down; treat the profile with "
                "care" for e, j in energies.items() if j < 0]
    if len(samples) == len(events):
        warnings.append("as many kernels as events: the fit is exact by construction and its residual says nothing")
    return Fit(energies, {s.name: s.joules for s in samples}, predicted, condition, tuple(warnings))


def _collinear(scaled: np.ndarray, events: Sequence[str]) -> str:
    """The events behind the smallest singular direction: the ones the kernels move together."""
    _, _, vt = np.linalg.svd(scaled)
    weights = np.abs(vt[-1])
    names = [e for e, w in zip(events, weights, strict=True) if w > 0.3] or list(events)
    return " and ".join(names)
