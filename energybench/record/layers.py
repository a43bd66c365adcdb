"""Per-layer energy in the run record: where one profiled window's joules went, module by module.

``energybench.measuring.layers`` computes it (``energy_by_layer``); the runner stores one ``LayerProfile`` per benchmark
from a separate attribution pass after the trials (profiling slows the work down, so it is never a trial).
The parts are exclusive: a module's figure is the time and energy spent in it and not in one of its
children, so they add up to the window's total; time in no module at all (the optimiser step, Python, data
handling) is its own part, named in parentheses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from energybench.record.parse import _extra, _Field

#: The part that holds a window's time outside every module of the model.
OUTSIDE = "(outside the model)"
#: The part that holds the optimiser's step (``torch.optim`` records it as ``Optimizer.step#...``).
OPTIMIZER = "(optimizer step)"


@dataclass(frozen=True)
class LayerEnergy:
    """One module's exclusive share of a window: seconds, joules, how often it ran, and whether it is too
    fast for the power figure under it to be more than its share of time (``below_resolution``)."""

    name: str
    energy_j: float
    time_s: float
    calls: int = 0
    below_resolution: bool = False

    @property
    def is_module(self) -> bool:
        """False for the parts that are not a module (time outside the model, the optimiser step)."""
        return not self.name.startswith("(")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "energy_j": self.energy_j, "time_s": self.time_s,
                             "calls": self.calls}
        if self.below_resolution:
            d["below_resolution"] = True
        return d

    @classmethod
    def parse(cls, f: _Field) -> LayerEnergy:
        d = f.obj()
        calls = f.child("calls").opt_number(minimum=0)
        return cls(name=f.child("name").text(), energy_j=f.child("energy_j").number(allow_nan=True, minimum=0),
                   time_s=f.child("time_s").number(minimum=0), calls=int(calls or 0),
                   below_resolution=bool(d.get("below_resolution", False)))


@dataclass(frozen=True)
class LayerProfile:
    """Where one window's energy went, by module.

    ``energy_j`` is the window's measured (or estimated) total; the ``layers`` add up to it. ``items`` is
    what the profiled run did (energy per item of a layer is ``energy_j / items``). ``resolution_s`` is the
    finest time step the power figure under the attribution can resolve; modules whose calls are shorter
    are flagged ``below_resolution``. ``method`` says how time became joules.
    """

    energy_j: float
    duration_s: float
    items: float
    resolution_s: float
    source: str
    method: str
    layers: tuple[LayerEnergy, ...] = ()
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def parts_j(self) -> float:
        """The sum of the parts (equal to ``energy_j`` up to rounding, which the tests check)."""
        return math.fsum(x.energy_j for x in self.layers)

    def share(self, name: str) -> float:
        """The fraction of the window's energy that went to ``name`` (0 when absent)."""
        part = next((x for x in self.layers if x.name == name), None)
        if part is None or not self.energy_j or not math.isfinite(self.energy_j):
            return 0.0
        return part.energy_j / self.energy_j

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "energy_j": self.energy_j, "duration_s": self.duration_s, "items": self.items,
            "resolution_s": self.resolution_s, "source": self.source, "method": self.method,
            "layers": [x.to_dict() for x in self.layers],
        }
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return {**d, **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> LayerProfile | None:
        d = f.opt_obj()
        if d is None:
            return None
        layers = tuple(LayerEnergy.parse(x) for x in f.child("layers").items()) if d.get("layers") else ()
        return cls(
            energy_j=f.child("energy_j").number(allow_nan=True, minimum=0),
            duration_s=f.child("duration_s").number(minimum=0),
            items=f.child("items").opt_number(minimum=0) or 1.0,
            resolution_s=f.child("resolution_s").opt_number(minimum=0) or 0.0,
            source=f.child("source").opt_text() or "none",
            method=f.child("method").opt_text() or "",
            layers=layers,
            warnings=f.child("warnings").texts(),
            extra=_extra(d, ("energy_j", "duration_s", "items", "resolution_s", "source", "method", "layers",
                             "warnings")),
        )
