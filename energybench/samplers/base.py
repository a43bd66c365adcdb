"""The sampler protocol: the only layer that touches hardware.

Two shapes of source exist and the meter treats them differently, because counters are exact and free
while polling costs CPU and loses resolution:

* ``kind == "counter"``: cumulative energy counters (RAPL ``energy_uj``, NVML total energy, the CPU-time
  power model). ``read()`` returns the raw cumulative joules per domain; the meter reads them at window
  edges (and, when a counter can wrap, now and then in between) and takes wrap-aware deltas.
* ``kind == "power"``: instantaneous power only (NVML power on old GPUs, TPU duty cycle x watts, DRAM
  estimate). ``read()`` returns watts per domain; the meter polls them in one background thread and
  integrates with the trapezoid rule.

Everything the meter asks of a sampler is declared in ``Sampler``, so the meter calls it directly and a
sampler's author sees the whole contract in one place. ``BaseSampler`` gives every member that has a sensible
"nothing to say" a default, so a sampler writes only what it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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

    ``max_power_w`` is the most power the thing can physically draw (a bound with headroom, not its rating):
    a counter step or a power reading that implies more is impossible, so the meter leaves it out and says
    the figure is a lower bound, instead of counting a glitch, a reading from before the window or a
    misread wrap as ``measured`` joules. ``None``: no bound is known and only the range is checked.
    """

    key: str
    source: Source
    method: str
    max_value: float | None = None
    counted: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    max_power_w: float | None = None

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

    ``clock`` and ``window_stats`` are the *activity extras* (GPU utilisation, TPU duty cycle over a window).
    They are the protocol's only optional members: a sampler that does not derive from ``BaseSampler`` may
    leave them out, and the meter then records no activity for it. Everything else is required; derive from
    ``BaseSampler`` to get the defaults.
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
        """Warnings for the window that ends next: events noticed since the last call (counter reset, MIG
        slice...), each returned once, and standing conditions that hold for every window (a scope that
        does not apply to this source) every time."""
        ...

    @property
    def clock(self) -> Callable[[], float]:
        """The time source of this sampler's own timestamps, in which ``window_stats`` takes its bounds
        (``time.monotonic`` unless a test replays a recorded trace on its own clock). Optional."""
        ...

    def window_stats(self, start: float, end: float) -> dict[str, Any] | None:
        """Activity over exactly ``[start, end]`` (seconds of ``clock``), or ``None`` when the sampler keeps
        none. The meter asks for each window's own span, so nested and overlapping windows each get theirs.
        Optional."""
        ...

    def close(self) -> None:
        """Release handles; called once when the meter is done with the sampler."""
        ...


class BaseSampler:
    """Defaults for the optional parts of the protocol, so a sampler only writes what it has."""

    name: str = "base"
    kind: Kind = "counter"
    resolution_s: float = 0.0
    # A plain attribute, not a property, so a subclass may still assign ``self.clock`` (a builtin function
    # does not bind, so instances read ``time.monotonic`` itself).
    clock: Callable[[], float] = time.monotonic

    def metadata(self) -> dict[str, Any]:
        return {}

    def on_edge(self) -> None:
        return None

    def take_warnings(self) -> list[str]:
        return []

    def window_stats(self, start: float, end: float) -> dict[str, Any] | None:
        return None  # no activity kept: the result's metadata then has no "window" entry

    def close(self) -> None:
        return None
