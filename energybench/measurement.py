"""Immutable records of what one measurement window found.

A ``Measurement`` is data, not behaviour: every figure carries its provenance (``measured`` by a hardware
counter or ``estimated`` by a model, with the method named), so a printed line, a JSON file and a DataFrame
all say the same thing and nothing is silently guessed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from energybench import units

if TYPE_CHECKING:  # pandas is imported only when a DataFrame is asked for
    import pandas as pd

JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class DomainEnergy:
    """Joules of one device/domain over the window, e.g. ``cpu:package-0`` or ``gpu:0``."""

    key: str
    energy_j: float
    source: str  # "measured" | "estimated"
    method: str
    sampler: str
    counted: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    lower_bound: bool = False  # the figure misses energy it could not count (reset, impossible step): at least

    @property
    def device(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def has_figure(self) -> bool:
        return not math.isnan(self.energy_j)


@dataclass(frozen=True)
class CarbonInfo:
    """Grams of CO2e for the window's joules and where the factor came from."""

    co2e_g: float
    region: str
    intensity_g_per_kwh: float
    pue: float
    source: str  # e.g. "codecarbon 3.3.2 global_energy_mix.json (Ember/...)", "user factor", "CSV path"
    year: int | None = None
    method: str = "fixed"  # "fixed" | "region" | "timeseries" | a provider plugin's name
    # "average" (the grid's mean mix: codecarbon's annual figures) or "marginal" (the plant that answers an
    # extra kWh: WattTime's MOER, a CSV declared marginal); the SCI spec accepts both but they are not comparable
    factor_kind: str = "average"


@dataclass(frozen=True)
class Measurement:
    """The result of one window: joules per domain, duration, carbon, warnings and sampler identity."""

    name: str
    start_time: float  # unix seconds
    duration_s: float
    domains: tuple[DomainEnergy, ...]
    carbon: CarbonInfo | None = None
    warnings: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    timeline: tuple[tuple[float, dict[str, float]], ...] = ()  # (seconds from start, watts per domain)
    #: counted domains with no figure in the total: n/a in this window, or their sampler was lost
    missing: tuple[str, ...] = ()
    #: why the window must not stand in a comparison (``"clocks disagree"``: its duration is unknown)
    flags: tuple[str, ...] = ()

    @property
    def energy_j(self) -> float:
        """Total joules, leaving out domains contained in others (psys vs package vs core)."""
        figures = [d.energy_j for d in self.domains if d.counted and not math.isnan(d.energy_j)]
        # no counted domain with a figure (window too short, sampler lost): there is no total, not 0 J
        return sum(figures) if figures else math.nan

    @property
    def missing_domains(self) -> tuple[str, ...]:
        """Counted domains the total leaves out: ``missing`` plus any counted domain without a figure."""
        nan = [d.key for d in self.domains if d.counted and not d.has_figure]
        return tuple(dict.fromkeys([*self.missing, *nan]))

    @property
    def lower_bound_domains(self) -> tuple[str, ...]:
        """Counted domains whose figure is only a lower bound (so the total is one too)."""
        return tuple(d.key for d in self.domains if d.counted and d.lower_bound and d.has_figure)

    @property
    def partial(self) -> bool:
        """The total is not the whole window's energy: a domain is missing or only a lower bound."""
        return bool(self.missing_domains or self.lower_bound_domains)

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def co2e_g(self) -> float | None:
        return self.carbon.co2e_g if self.carbon else None

    @property
    def source(self) -> str:
        """``measured`` only when every counted joule came from a hardware counter; ``modeled`` when every one
        was priced from counted events (``energybench.counted``)."""
        sources = {d.source for d in self.domains if d.counted and not math.isnan(d.energy_j)}
        if not sources:
            return "none"
        return sources.pop() if sources in ({"measured"}, {"modeled"}) else "estimated"

    def energy_by_domain(self) -> dict[str, float]:
        return {d.key: d.energy_j for d in self.domains}

    def __str__(self) -> str:
        # an n/a figure has no provenance: it is neither measured nor estimated
        parts = ", ".join(f"{d.key} {_figure(d)}" + (f" {d.source}" if d.has_figure else "")
                          for d in self.domains if d.counted)
        line = (
            f"{self.name}: {_total(self)} ({parts}) {units.seconds(self.duration_s)}, "
            f"{units.watts(self.mean_power_w)}"
        )
        if self.carbon:
            c = self.carbon
            kind = " marginal" if c.factor_kind == "marginal" else ""  # average is what a reader assumes
            line += f", {units.grams(c.co2e_g)} CO2e ({c.region} {units.intensity(c.intensity_g_per_kwh)}{kind}"
            line += f", PUE {c.pue:g})" if c.pue != 1.0 else ")"
        estimated = {d.source == "estimated" for d in self.domains if d.counted and not math.isnan(d.energy_j)}
        if estimated == {True}:
            line += " [estimated: no hardware counter]"
        elif True in estimated:
            line += " [partly estimated: no hardware counter for some domains]"
        if self.flags:
            line += f" [flagged: {', '.join(self.flags)}; see warnings]"
        return line

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["energy_j"] = self.energy_j
        d["mean_power_w"] = self.mean_power_w
        d["co2e_g"] = self.co2e_g
        d["source"] = self.source
        d["timeline"] = [[t, w] for t, w in self.timeline]
        d["missing"] = list(self.missing_domains)
        d["lower_bound"] = list(self.lower_bound_domains)
        d["partial"] = self.partial
        return d

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        carbon = CarbonInfo(**d["carbon"]) if d.get("carbon") else None
        return cls(
            name=d["name"],
            start_time=d["start_time"],
            duration_s=d["duration_s"],
            domains=tuple(DomainEnergy(**x) for x in d["domains"]),
            carbon=carbon,
            warnings=tuple(d.get("warnings", ())),
            metadata=d.get("metadata", {}),
            timeline=tuple((t, w) for t, w in d.get("timeline", ())),
            missing=tuple(d.get("missing", ())),
            flags=tuple(d.get("flags", ())),
        )

    def to_dataframe(self) -> pd.DataFrame:
        """One row per domain, with the window's totals and carbon provenance repeated on each row."""
        import pandas as pd

        rows = []
        total = self.energy_j
        for dom in self.domains:
            share = dom.energy_j / total if (total > 0 and dom.counted) else 0.0
            rows.append(
                {
                    "window": self.name,
                    "domain": dom.key,
                    "device": dom.device,
                    "energy_j": dom.energy_j,
                    "counted": dom.counted,
                    "lower_bound": dom.lower_bound,
                    "source": dom.source,
                    "method": dom.method,
                    "duration_s": self.duration_s,
                    "mean_power_w": dom.energy_j / self.duration_s if self.duration_s > 0 else 0.0,
                    "co2e_g": (self.carbon.co2e_g * share) if self.carbon else None,
                    "region": self.carbon.region if self.carbon else None,
                    "intensity_g_per_kwh": self.carbon.intensity_g_per_kwh if self.carbon else None,
                    "pue": self.carbon.pue if self.carbon else None,
                    "factor_kind": self.carbon.factor_kind if self.carbon else None,
                }
            )
        return pd.DataFrame(rows)


def _figure(d: DomainEnergy) -> str:
    return f"at least {units.joules(d.energy_j)}" if d.lower_bound and d.has_figure else units.joules(d.energy_j)


def _total(m: Measurement) -> str:
    """The total, or why it is not a figure: n/a, or partial / a lower bound naming the domains."""
    if math.isnan(m.energy_j):
        return "n/a (see warnings)"
    if m.missing_domains:
        return f"{units.joules(m.energy_j)} partial (no figure for {', '.join(m.missing_domains)})"
    if m.lower_bound_domains:
        return f"at least {units.joules(m.energy_j)}"
    return units.joules(m.energy_j)
