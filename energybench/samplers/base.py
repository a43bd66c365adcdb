"""The sampler protocol: the only layer that touches hardware.

Two shapes of source exist and the meter treats them differently, because counters are exact and free
while polling costs CPU and loses resolution:

* ``kind == "counter"``: cumulative energy counters (RAPL ``energy_uj``, NVML total energy, the CPU-time
  power model). ``read()`` returns the raw cumulative joules per domain; the meter reads them at window
  edges (and, when a counter can wrap, now and then in between) and takes wrap-aware deltas.
* ``kind == "power"``: instantaneous power only (NVML power on old GPUs, TPU duty cycle x watts, DRAM
  estimate). ``read()`` returns watts per domain; the meter polls them in one background thread and
  integrates with the trapezoid rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Source = Literal["measured", "estimated"]
Kind = Literal["counter", "power"]


@dataclass(frozen=True)
class Domain:
    """One thing that draws power and is reported on its own line, e.g. ``cpu:package-0``.

    ``max_value`` is where a counter wraps back to zero (RAPL's ``max_energy_range_uj``, in joules);
    ``None`` means the counter never wraps, so going backwards is a reset, not a wrap.
    ``overlaps`` names domains already contained in this one (psys contains package), which the meter
    must never add twice: a domain with ``counted=False`` is reported but left out of the total.
    """

    key: str
    source: Source
    method: str
    max_value: float | None = None
    counted: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> str:
        return self.key.split(":", 1)[0]


@dataclass(frozen=True)
class Availability:
    """Whether a sampler can read on this machine, and if not, why and what to do."""

    name: str
    available: bool
    source: Source | None = None
    reason: str = ""
    domains: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Sampler(Protocol):
    """What the meter needs from a source of energy or power figures.

    ``resolution_s`` is how often the underlying figure really changes (NVML's counter: ~0.1 s); windows
    shorter than a few resolutions get a warning instead of a misleading 0 J, and the pytest fixture sizes
    its rounds from it.
    """

    name: str
    kind: Kind
    resolution_s: float

    def domains(self) -> list[Domain]:
        """The domains this sampler reports, fixed for its lifetime."""
        ...

    def read(self) -> dict[str, float]:
        """Cumulative joules (counter) or watts (power) per domain key; cheap, no sleeping."""
        ...

    def metadata(self) -> dict[str, Any]:
        """Identity worth recording with a result (model name, driver, power limit, model constants)."""
        ...

    def on_edge(self) -> None:
        """Called just before the edge ``read()`` of a window: e.g. synchronise CUDA so queued kernels land
        in the right window. Not called for background polls."""
        ...

    def take_warnings(self) -> list[str]:
        """Warnings noticed since the last call (counter reset, MIG slice...), each returned once; the meter
        puts them in the result of the window that ends next."""
        ...

    def close(self) -> None:
        """Release handles; called once when the meter is done with the sampler."""
        ...


class BaseSampler:
    """Defaults for the optional parts of the protocol, so a sampler only writes what it has."""

    name: str = "base"
    kind: Kind = "counter"
    resolution_s: float = 0.0

    def metadata(self) -> dict[str, Any]:
        return {}

    def on_edge(self) -> None:
        return None

    def take_warnings(self) -> list[str]:
        return []

    def close(self) -> None:
        return None
