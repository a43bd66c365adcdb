"""The inputs of a run's Software Carbon Intensity: the hardware's embodied emissions and how it is shared.

Only inputs are part of the record. The SCI figures themselves are derived from the rounds and these inputs
(``energybench.record.sci_figures``), written to the file for readers with ``jq`` and recomputed on load, like the
benchmarks' ``stats``, so a file can never disagree with what energybench computes from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from energybench.record.parse import _Field

#: Boavizta's server archetypes assume 35,040 hours of use (4 years); so do GSF's SCI examples.
DEFAULT_LIFETIME_YEARS = 4.0


@dataclass(frozen=True)
class Embodied:
    """One device's embodied emissions (manufacture, transport, end of life) and the share the work reserved.

    ``kgco2e`` is the whole device's figure (a manufacturer's product carbon footprint, or Boavizta's);
    ``lifetime_years`` is how long it is expected to serve; ``share`` is the fraction of it the work held
    (8 of 64 vCPUs = 0.125; a whole GPU = 1).
    """

    name: str
    kgco2e: float
    lifetime_years: float = DEFAULT_LIFETIME_YEARS
    share: float = 1.0
    source: str = "given with --embodied"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kgco2e": self.kgco2e, "lifetime_years": self.lifetime_years,
                "share": self.share, "source": self.source}

    @classmethod
    def parse(cls, f: _Field) -> Embodied:
        f.obj()
        share = f.child("share").opt_number(minimum=0)
        if share is not None and share > 1:
            raise f.child("share").fail(f"must be a fraction between 0 and 1, got {share:g}")
        lifetime = f.child("lifetime_years").opt_number()
        if lifetime is not None and lifetime <= 0:
            raise f.child("lifetime_years").fail(f"must be > 0 years, got {lifetime:g}")
        return cls(name=f.child("name").text(), kgco2e=f.child("kgco2e").number(minimum=0),
                   lifetime_years=lifetime if lifetime is not None else DEFAULT_LIFETIME_YEARS,
                   share=share if share is not None else 1.0,
                   source=f.child("source").opt_text() or "given with --embodied")


def parse_embodied_list(f: _Field) -> tuple[Embodied, ...]:
    """``sci.inputs.embodied`` of a file (absent in files written before SCI: no devices)."""
    if f.value is None:
        return ()
    return tuple(Embodied.parse(x) for x in f.items())
