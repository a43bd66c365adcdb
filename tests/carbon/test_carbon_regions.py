"""Region factors read from codecarbon's shipped data: naming, units, provenance and unknown names."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from energybench.carbon import lookup_region
from energybench.carbon import regions as regions_mod
from energybench.carbon.regions import KINDS, LBS_PER_MWH_TO_G_PER_KWH, codecarbon_data, list_regions
from energybench.errors import ConfigError, UnknownRegionError


@pytest.fixture
def fresh_catalog():
    """Clear the per-process caches around a test that points the loader at other data."""
    clears = (regions_mod.catalog.cache_clear, regions_mod.codecarbon_data.cache_clear)
    for clear in clears:
        clear()
    yield
    for clear in clears:  # the originals: a test may have monkeypatched the module attributes
        clear()


def _raw(relpath: str):
    return json.loads((codecarbon_data().root / relpath).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "given, canonical",
    [
        ("FRA", "FRA"),
        ("fra", "FRA"),
        (" deu ", "DEU"),
        ("USA/california", "USA/california"),
        ("us-ca", "USA/california"),
        ("USA/New York", "USA/new-york"),
        ("usa/new_york", "USA/new-york"),
        ("CAN/quebec", "CAN/quebec"),
        ("CA-QC", "CAN/quebec"),
        ("can/British Columbia", "CAN/british-columbia"),
        ("no1", "NOR/NO1"),
        ("swe/se3", "SWE/SE3"),
        ("CN-BJ", "CHN/beijing"),
        ("chn/inner mongolia", "CHN/inner-mongolia"),
        ("GCP:europe-west1", "gcp:europe-west1"),
    ],
)
def test_names_and_aliases_resolve_case_insensitively(given, canonical):
    assert lookup_region(given).name == canonical


def test_every_kind_is_covered_and_names_are_unique():
    regions = list_regions()
    assert {r.kind for r in regions} == set(KINDS)
    names = [r.name.lower() for r in regions]
    assert len(names) == len(set(names))
    for r in regions:
        assert r.intensity_g_per_kwh >= 0
        assert r.source.startswith(f"codecarbon {codecarbon_data().version} data/")


def test_country_factor_and_year_are_the_files():
    mix = _raw("data/private_infra/global_energy_mix.json")
    for iso in ("FRA", "DEU", "IND"):
        r = lookup_region(iso)
        assert r.intensity_g_per_kwh == mix[iso]["carbon_intensity"]
        assert r.year == mix[iso]["year"]
        assert "global_energy_mix.json" in r.source
    assert lookup_region("FRA").label == "France"


def test_us_states_are_converted_from_lbs_per_mwh():
    raw = _raw("data/private_infra/2023/usa_emissions.json")
    assert raw["_unit"]["emissions"] == "lbs/MWh"
    r = lookup_region("USA/texas")
    assert r.intensity_g_per_kwh == pytest.approx(raw["texas"]["emissions"] * 0.45359237, rel=1e-12)
    # 1 lb/MWh = 453.59237 g / 1000 kWh
    assert LBS_PER_MWH_TO_G_PER_KWH == pytest.approx(453.59237 / 1000, rel=1e-15)
    assert r.year == raw["_source"]["year"]
    assert "lbs/MWh" in r.source
    # The national eGRID row and the metadata rows are not states.
    states = list_regions("us-state")
    assert len(states) == len([k for k in raw if not k.startswith("_") and k != "usa"])


def test_nordic_and_china_carry_their_own_years():
    nordic = _raw("data/private_infra/nordic_emissions.json")["data"]
    assert lookup_region("NO4").intensity_g_per_kwh == nordic["NO4"]["emission_factor"]
    assert lookup_region("NO4").year == nordic["NO4"]["year"]
    china = _raw("data/private_infra/2023/china_provincial_emissions.json")
    assert lookup_region("CN-GD").intensity_g_per_kwh == china["data"]["CN-GD"]["emission_factor"]
    assert "CO2 only" in lookup_region("CN-GD").source


def test_cloud_regions_are_google_only_without_a_year():
    cloud = list_regions("cloud")
    assert cloud and all(r.name.startswith("gcp:") and r.year is None for r in cloud)
    assert "impact.csv" in lookup_region("gcp:europe-west9").source


@pytest.mark.parametrize(
    "typo, expected",
    [
        ("FRAA", "FRA"),
        ("USA/californa", "USA/california"),
        ("california", "USA/california"),
        ("europe-west1", "gcp:europe-west1"),
        ("France", "FRA"),
        ("CAN/quebek", "CAN/quebec"),
    ],
)
def test_unknown_region_suggests_the_closest_names(typo, expected):
    with pytest.raises(UnknownRegionError) as info:
        lookup_region(typo)
    msg = str(info.value)
    assert "\n" not in msg
    assert repr(typo) in msg
    assert expected in msg.split("closest:", 1)[1]
    assert "energybench regions QUERY" in msg


def test_unknown_region_is_never_a_world_average():
    with pytest.raises(UnknownRegionError, match="energybench regions QUERY"):
        lookup_region("WORLD")
    with pytest.raises(UnknownRegionError):
        lookup_region("")


def test_aws_region_says_only_google_has_cloud_factors():
    with pytest.raises(UnknownRegionError) as info:
        lookup_region("aws:us-east-1")
    msg = str(info.value)
    assert "Google Cloud" in msg and "gcp:us-east1" not in msg


def test_query_filters_by_kind_and_substring_with_exact_names_first():
    assert [r.name for r in list_regions("fra")][0] == "FRA"
    assert {r.kind for r in list_regions("ca-province")} == {"ca-province"}
    assert all("quebec" in r.name.lower() for r in list_regions("quebec"))
    assert list_regions("zzzz-nowhere") == []


def test_older_codecarbon_without_some_files_is_stated_not_guessed(tmp_path, monkeypatch, fresh_catalog):
    """A release with only the country file: countries work, the rest is a note, lookups fail loudly."""
    root = tmp_path / "codecarbon"
    (root / "data" / "private_infra").mkdir(parents=True)
    real = codecarbon_data().root
    shutil.copy(real / "data/private_infra/global_energy_mix.json", root / "data/private_infra")
    monkeypatch.setattr(regions_mod, "codecarbon_data", lambda: regions_mod.CodecarbonData(root=root, version="2.3.0"))
    assert {r.kind for r in list_regions()} == {"country"}
    notes = regions_mod.catalog().notes
    assert len(notes) == 5 and all("codecarbon 2.3.0 has no" in n for n in notes)
    assert lookup_region("FRA").source.startswith("codecarbon 2.3.0 data/private_infra/global_energy_mix.json")
    with pytest.raises(UnknownRegionError):
        lookup_region("NO1")


def test_missing_codecarbon_is_a_config_error(monkeypatch, fresh_catalog):
    monkeypatch.setattr(regions_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="codecarbon is not installed"):
        list_regions()


def test_carbon_package_imports_neither_pandas_nor_codecarbon(tmp_path: Path):
    code = (
        "import sys, energybench.carbon as c; c.lookup_region('FRA'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'codecarbon', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
