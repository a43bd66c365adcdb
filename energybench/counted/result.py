"""What a counted window found: the raw event counts, and the joules one profile gives them.

The counts are the measurement; the joules are a price. Keeping the counts next to the joules (in memory
and in every saved record) lets a user re-price a run with another profile (``reprice``) without running the
slow simulator again, and lets a comparison check that two figures were priced alike.

Provenance is ``modeled``: neither ``measured`` (no hardware counter was read) nor ``estimated`` (no power
model of time and load). A modeled figure is never compared with the other two.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from energybench.counted.profile import Profile, derive, price, profile_from_dict
from energybench.counted.valgrind import RAW_EVENTS, CacheGeometry

SOURCE = "modeled"
DOMAIN_KEY = "cpu:counted"


@dataclass(frozen=True)
class CountedResult:
    """Counts of one window (``iterations`` calls, harness overhead already taken out) and their joules."""

    name: str
    counts: Mapping[str, int]
    iterations: int
    profile: Profile
    cache: CacheGeometry
    wall_s: float = 0.0  # the window's wall time under the simulator (not the workload's native time)
    overhead: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    start_time: float = field(default_factory=time.time)

    source = SOURCE

    @property
    def method(self) -> str:
        return self.profile.method

    @property
    def events(self) -> dict[str, int]:
        return derive(self.counts)

    @property
    def energy_by_event_j(self) -> dict[str, float]:
        return price(self.counts, self.profile)

    @property
    def energy_j(self) -> float:
        return sum(self.energy_by_event_j.values())

    @property
    def energy_per_call_j(self) -> float:
        return self.energy_j / self.iterations

    @property
    def instructions_per_call(self) -> float:
        return self.counts.get("Ir", 0) / self.iterations

    def __str__(self) -> str:
        from energybench import units

        return (f"{self.name}: {units.joules(self.energy_j)} modeled ({self.iterations} call(s), "
                f"{units.joules(self.energy_per_call_j)} per call; {self.counts.get('Ir', 0):,} instructions; "
                f"{self.method})")

    def to_dict(self) -> dict[str, Any]:
        """The record a run file carries: counts first, joules as priced, the whole profile to re-price."""
        return {
            "name": self.name,
            "source": SOURCE,
            "method": self.method,
            "iterations": self.iterations,
            "counts": dict(self.counts),
            "events": self.events,
            "energy_j": self.energy_j,
            "energy_per_call_j": self.energy_per_call_j,
            "energy_by_event_j": self.energy_by_event_j,
            "profile": self.profile.to_dict(),
            "cache": self.cache.to_dict(),
            "wall_s": self.wall_s,
            "overhead": dict(self.overhead),
            "warnings": list(self.warnings),
            "details": dict(self.details),
            "start_time": self.start_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CountedResult:
        return cls(
            name=str(data["name"]),
            counts={e: int(data["counts"].get(e, 0)) for e in RAW_EVENTS},
            iterations=int(data.get("iterations", 1)),
            profile=profile_from_dict(data["profile"], "in the record"),
            cache=CacheGeometry.from_dict(data["cache"]),
            wall_s=float(data.get("wall_s", 0.0)),
            overhead={k: int(v) for k, v in dict(data.get("overhead", {})).items()},
            warnings=tuple(data.get("warnings", ())),
            details=dict(data.get("details", {})),
            start_time=float(data.get("start_time", 0.0)),
        )

    def to_measurement(self, carbon: Any = None) -> Any:
        """An ``energybench.Measurement`` with one ``cpu:counted`` domain whose source (and so the
        measurement's) is ``modeled``; the counts travel in the domain's details so nothing is lost."""
        from energybench.measurement import DomainEnergy, Measurement

        domain = DomainEnergy(key=DOMAIN_KEY, energy_j=self.energy_j, source=SOURCE, method=self.method,
                              sampler="counted", details={"counts": dict(self.counts), "events": self.events,
                                                          "energy_by_event_j": self.energy_by_event_j,
                                                          "iterations": self.iterations,
                                                          "cache": self.cache.to_dict(),
                                                          "profile": self.profile.name})
        return Measurement(name=self.name, start_time=self.start_time, duration_s=self.wall_s, domains=(domain,),
                           carbon=carbon, warnings=self.warnings,
                           metadata={"provenance": SOURCE, "counted": self.to_dict()})


def reprice(record: CountedResult | Mapping[str, Any], profile: Profile) -> CountedResult:
    """The same counts priced with ``profile``: a ``CountedResult``, its ``to_dict()`` from a run file, or bare
    raw counts (``{"Ir": ..., "Dr": ...}``, simulated with the default caches). Counts simulated with other
    caches than the profile was fitted with are re-priced all the same, with a warning saying so."""
    if isinstance(record, CountedResult):
        result = record
    elif "counts" in record:
        result = CountedResult.from_dict(record)
    else:
        counts = {e: int(record.get(e, 0)) for e in RAW_EVENTS}
        result = CountedResult("counts", counts, 1, profile, CacheGeometry())
    warnings = [w for w in result.warnings if not w.startswith("re-priced")]
    if result.cache != profile.cache:
        warnings.append(f"re-priced with profile {profile.name}, fitted for other simulated caches "
                        f"({profile.cache.to_dict()} vs {result.cache.to_dict()}): miss energies are approximate")
    return replace(result, profile=profile, warnings=tuple(warnings))
