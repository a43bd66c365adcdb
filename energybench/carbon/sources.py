"""Intensity sources: plugins that turn a zone name into an ``IntensityProvider`` (``--intensity-provider``).

The entry-point group ``energybench.intensity_providers`` holds them; the built-ins are registered there too:

* ``codecarbon`` (the default, offline): the annual averages that ship with codecarbon (``carbon.regions``);
* ``electricitymaps``: Electricity Maps' documented HTTP API (hourly, average, consumption-based), with the
  token in ``$ELECTRICITYMAPS_API_TOKEN``;
* ``watttime``: WattTime's official client (``pip install 'energybench[watttime]'``), marginal (MOER) by
  default, with ``$WATTTIME_USER`` / ``$WATTTIME_PASSWORD``.

The network is used only by a source the user names, and only once its key is configured; a missing key is
a ``ConfigError`` before anything runs. A key is never written into a result: ``describe()`` holds the zone,
the factor and where it came from, nothing else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from energybench.carbon.providers import FixedIntensity, IntensityProvider
from energybench.carbon.regions import lookup_region
from energybench.errors import ConfigError
from energybench.registry import Plugin, load_registry, lookup

ENTRY_POINT_GROUP = "energybench.intensity_providers"

BUILTIN_SOURCES = {
    "codecarbon": "energybench.carbon.sources:CodecarbonSource",
    "electricitymaps": "energybench.carbon.electricitymaps:ElectricityMapsSource",
    "watttime": "energybench.carbon.watttime:WattTimeSource",
}


class IntensitySource(ABC):
    """A named source of grid factors. ``factor_kinds`` lists the kinds it can serve, default first."""

    name: str
    description: str
    factor_kinds: tuple[str, ...] = ("average",)
    key_env: tuple[str, ...] = ()  # environment variables that must hold its credentials
    online: bool = False

    @abstractmethod
    def create(self, zone: str | None, *, pue: float, factor_kind: str | None,
               api_url: str | None = None) -> IntensityProvider:
        """The provider for ``zone``; raise ``ConfigError`` (with the fix) for a bad zone or a missing key."""

    def check_kind(self, factor_kind: str | None) -> str:
        """The kind to serve: the one asked for when this source has it, else a ``ConfigError``."""
        if factor_kind is None:
            return self.factor_kinds[0]
        if factor_kind not in self.factor_kinds:
            raise ConfigError(f"intensity provider {self.name} serves {' or '.join(self.factor_kinds)} factors, "
                              f"not {factor_kind}: drop --intensity-kind or pick another --intensity-provider")
        return factor_kind


class CodecarbonSource(IntensitySource):
    """codecarbon's shipped annual averages by region: offline, no key (the default)."""

    name = "codecarbon"
    description = "annual average factors shipped with codecarbon (offline, the default)"

    def create(self, zone: str | None, *, pue: float, factor_kind: str | None,
               api_url: str | None = None) -> IntensityProvider:
        self.check_kind(factor_kind)
        if not zone:
            raise ConfigError("--intensity-provider codecarbon needs --region (list: energybench regions)")
        r = lookup_region(zone)
        return FixedIntensity(r.intensity_g_per_kwh, region=r.name, source=r.source, year=r.year, method="region",
                              pue=pue)


def sources() -> dict[str, Plugin]:
    """Every intensity source: built-ins, then plugins (which may replace a built-in by name)."""
    return load_registry(BUILTIN_SOURCES, ENTRY_POINT_GROUP, lambda o: isinstance(o, IntensitySource),
                         "an IntensitySource")


def get_source(name: str) -> IntensitySource:
    source: IntensitySource = lookup(sources(), name, "intensity provider", "energybench carbon --providers")
    return source
