"""Our grams equal what codecarbon itself computes for the same place and the same energy.

energybench reads codecarbon's data files without importing it (for start-up speed) and restates the
conversions (lbs/MWh, the Canadian mix rates); these tests call codecarbon's own ``Emissions`` lookups, so
any divergence, in the data path, a unit or a conversion, fails here.
"""

from __future__ import annotations

import pytest

codecarbon_emissions = pytest.importorskip("codecarbon.core.emissions")
from codecarbon.core.units import Energy  # noqa: E402
from codecarbon.external.geography import CloudMetadata, GeoMetadata  # noqa: E402
from codecarbon.input import DataSource  # noqa: E402

from energybench.carbon import list_regions, resolve_provider  # noqa: E402
from energybench.errors import UnknownRegionError  # noqa: E402
from energybench.measurement import JOULES_PER_KWH  # noqa: E402

JOULES = 5.4e6  # 1.5 kWh, split over two segments below so the provider sums them


@pytest.fixture(scope="module")
def emissions():
    return codecarbon_emissions.Emissions(DataSource())


def codecarbon_grams(emissions, name: str, joules: float) -> float:
    """Grams codecarbon computes for our region ``name`` (its functions return kg)."""
    energy = Energy.from_energy(kWh=joules / JOULES_PER_KWH)
    if ":" in name:
        provider, region = name.split(":", 1)
        return 1000 * emissions.get_cloud_emissions(energy, CloudMetadata(provider=provider, region=region))
    if "/" not in name:
        return 1000 * emissions.get_country_emissions(energy, GeoMetadata(country_iso_code=name))
    country, region = name.split("/", 1)
    geo = GeoMetadata(country_iso_code=country, region=region.replace("-", " "))
    return 1000 * emissions.get_region_emissions(energy, geo)


def our_grams(name: str, joules: float, pue: float = 1.0) -> float:
    provider = resolve_provider(region=name, pue=pue)
    half = joules / 2
    return provider.carbon([(0.0, 30.0, half), (30.0, 60.0, half)]).co2e_g


@pytest.mark.parametrize(
    "name",
    [
        "FRA",
        "DEU",
        "USA/california",
        "USA/new-york",
        "CAN/quebec",
        "CAN/alberta",
        "gcp:europe-west1",
        "NOR/NO4",
        "CHN/guangdong",
    ],
)
def test_grams_match_codecarbon(emissions, name):
    theirs = codecarbon_grams(emissions, name, JOULES)
    assert theirs > 0
    assert our_grams(name, JOULES) == pytest.approx(theirs, rel=1e-9)


def test_pue_multiplies_codecarbons_figure(emissions):
    assert our_grams("DEU", JOULES, pue=1.4) == pytest.approx(1.4 * codecarbon_grams(emissions, "DEU", JOULES))


def test_every_listed_region_matches_codecarbon(emissions):
    """All ~360 regions, not only the samples: codecarbon never silently fell back for one of ours."""
    mismatches = []
    for r in list_regions():
        theirs = codecarbon_grams(emissions, r.name, JOULES)
        ours = JOULES / JOULES_PER_KWH * r.intensity_g_per_kwh
        if ours != pytest.approx(theirs, rel=1e-9, abs=1e-12):
            mismatches.append((r.name, ours, theirs))
    assert mismatches == []


def test_where_codecarbon_falls_back_to_the_world_average_we_refuse(emissions):
    """codecarbon prices an unknown country at its world average; energybench raises instead."""
    world = DataSource().get_carbon_intensity_per_source_data()["world_average"]
    assert codecarbon_grams(emissions, "XXX", JOULES) == pytest.approx(JOULES / JOULES_PER_KWH * world)
    with pytest.raises(UnknownRegionError):
        resolve_provider(region="XXX")
