"""Grid carbon-intensity factors by place, read from the data files that ship with ``codecarbon``.

Why not ``import codecarbon``: importing it pulls its tracker, ``requests`` and more (~0.1-0.2 s), and its
``DataSource`` loads pandas for a 40-row CSV. ``energybench regions`` and every ``--region`` must start fast,
so this module finds codecarbon's installed package directory with ``importlib.util.find_spec`` (which does
not execute it) and reads the same JSON/CSV files codecarbon reads. The tests cross-check every factor
against codecarbon's own ``Emissions`` computations, so the two cannot silently drift apart.

Naming scheme (matched case-insensitively; spaces, ``_`` and ``-`` are interchangeable):

=================  ==========================  ==========================================================
kind               canonical name              aliases
=================  ==========================  ==========================================================
``country``        ``FRA`` (ISO 3166 alpha-3)  --
``us-state``       ``USA/california``          ``US-CA`` (ISO 3166-2)
``ca-province``    ``CAN/quebec``              ``CA-QC`` (ISO 3166-2)
``cn-province``    ``CHN/inner-mongolia``      ``CN-NM`` (ISO 3166-2, as codecarbon keys them)
``nordic-zone``    ``NOR/NO1``                 ``NO1`` (the electricity bidding-zone code)
``cloud``          ``gcp:europe-west1``        -- (codecarbon only has Google Cloud factors)
=================  ==========================  ==========================================================

A canonical ``COUNTRY/region`` name is codecarbon's own (``country_iso_code``, ``region``) pair, with
spaces written as ``-`` so it needs no shell quoting.
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError, UnknownRegionError

LBS_PER_MWH_TO_G_PER_KWH = 0.45359237  # 1 lb = 453.59237 g (exact); 1 MWh = 1000 kWh

# Canada's codecarbon file holds each province's generation mix (percent by source), not a factor.
# codecarbon turns a mix into a factor with the energy-usage project's per-fuel rates (kg CO2/kWh), applied
# in codecarbon/core/emissions.py ``Emissions._region_energy_mix_to_emissions_rate``; these are those rates.
# They live in codecarbon's code, not in a data file, so they are restated here with their source; the
# cross-check test fails if codecarbon ever changes them.
# https://github.com/responsibleproblemsolving/energy-usage#conversion-to-co2
ENERGY_USAGE_KG_PER_KWH = {"coal": 0.995725971, "petroleum": 0.8166885263, "naturalGas": 0.7438415916}

# ISO 3166-2 codes of the Canadian provinces and territories, so ``CA-QC`` works like ``US-CA``.
CANADA_ISO_3166_2 = {
    "alberta": "CA-AB",
    "british columbia": "CA-BC",
    "manitoba": "CA-MB",
    "new brunswick": "CA-NB",
    "newfoundland and labrador": "CA-NL",
    "northwest territories": "CA-NT",
    "nova scotia": "CA-NS",
    "nunavut": "CA-NU",
    "ontario": "CA-ON",
    "prince edward island": "CA-PE",
    "quebec": "CA-QC",
    "saskatchewan": "CA-SK",
    "yukon": "CA-YT",
}

NORDIC_COUNTRY = {"SE": "SWE", "NO": "NOR", "FI": "FIN"}

KINDS = ("country", "us-state", "ca-province", "cn-province", "nordic-zone", "cloud")


@dataclass(frozen=True)
class RegionFactor:
    """One place's grid intensity in gCO2e/kWh, with the year and file it comes from."""

    name: str
    label: str
    kind: str
    intensity_g_per_kwh: float
    year: int | None
    source: str
    aliases: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "intensity_g_per_kwh": self.intensity_g_per_kwh,
            "year": self.year,
            "source": self.source,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class Catalog:
    """All known regions, indexed by normalised name and alias, plus notes on data this codecarbon lacks."""

    regions: tuple[RegionFactor, ...]
    index: dict[str, RegionFactor]
    notes: tuple[str, ...]


def normalise(name: str) -> str:
    """Case-fold and unify separators so ``usa/New York``, ``USA/new_york`` and ``USA/new-york`` match."""
    return re.sub(r"[\s_\-]+", "-", name.strip().lower())


def _slug(text: str) -> str:
    return re.sub(r"\s+", "-", text.strip().lower())


# ----------------------------------------------------------------------------------------------- data files
@dataclass(frozen=True)
class CodecarbonData:
    """Where codecarbon's installed data lives, and its version (for every factor's ``source``)."""

    root: Path
    version: str

    def find(self, relpath: str) -> Path | None:
        path = self.root / relpath
        return path if path.is_file() else None

    def find_latest(self, filename: str) -> tuple[Path, int] | None:
        """``data/private_infra/<year>/<filename>`` for the newest year present (older releases used 2016)."""
        found = []
        for path in (self.root / "data" / "private_infra").glob(f"*/{filename}"):
            if path.parent.name.isdigit():
                found.append((int(path.parent.name), path))
        if not found:
            return None
        year, path = max(found)
        return path, year

    def describe(self, path: Path, upstream: str) -> str:
        rel = path.relative_to(self.root).as_posix()
        return f"codecarbon {self.version} {rel} ({upstream})"


@lru_cache(maxsize=1)
def codecarbon_data() -> CodecarbonData:
    """Locate the installed codecarbon package without importing it (its import is slow)."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "codecarbon is not installed, so no region data is available: "
            "pip install 'codecarbon>=3.3,<4', or pass --intensity G_PER_KWH"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "data").is_dir():
        raise ConfigError(
            f"codecarbon's data files are not in {root / 'data'}: reinstall it unzipped "
            "(pip install --force-reinstall 'codecarbon>=3.3,<4'), or pass --intensity G_PER_KWH"
        )
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("codecarbon")
    except PackageNotFoundError:  # a source checkout on sys.path: the file path is still exact provenance
        ver = "(unknown version)"
    return CodecarbonData(root=root, version=ver)


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------- per family
def _countries(cc: CodecarbonData) -> list[RegionFactor]:
    path = cc.find("data/private_infra/global_energy_mix.json")
    if path is None:
        return []
    source = cc.describe(path, "Our World in Data energy data / Ember")
    out = []
    for iso, row in _read_json(path).items():
        factor = row.get("carbon_intensity")
        if factor is None:  # no published factor: leave the country out rather than estimate one
            continue
        out.append(
            RegionFactor(
                name=iso.upper(),
                label=row.get("country_name", iso),
                kind="country",
                intensity_g_per_kwh=float(factor),
                year=row.get("year"),
                source=source,
            )
        )
    return out


def _us_states(cc: CodecarbonData) -> list[RegionFactor]:
    found = cc.find_latest("usa_emissions.json")
    if found is None:
        return []
    path, dir_year = found
    data = _read_json(path)
    meta = data.get("_source") if isinstance(data.get("_source"), dict) else {}
    year = meta.get("year", dir_year)
    upstream = f"{meta.get('name', 'EPA eGRID')}; lbs/MWh x 0.45359237 = g/kWh"
    source = cc.describe(path, upstream)
    out = []
    for key, row in data.items():
        # "_unit"/"_source" are metadata; "usa" is eGRID's national rate (the country is ``USA`` already).
        if key.startswith("_") or key == "usa" or not isinstance(row, dict) or "emissions" not in row:
            continue
        code = row.get("regionCode")
        out.append(
            RegionFactor(
                name=f"USA/{_slug(key)}",
                label=f"{key.title()}, USA",
                kind="us-state",
                intensity_g_per_kwh=float(row["emissions"]) * LBS_PER_MWH_TO_G_PER_KWH,
                year=year,
                source=source,
                aliases=(f"US-{code}",) if code else (),
            )
        )
    return out


def energy_mix_to_g_per_kwh(mix: dict[str, float]) -> float:
    """A generation mix (shares of ``total``) to gCO2/kWh, counting coal, oil and gas as codecarbon does."""
    total = mix["total"]
    return 1000.0 * sum(mix.get(fuel, 0.0) / total * kg for fuel, kg in ENERGY_USAGE_KG_PER_KWH.items())


def _canada(cc: CodecarbonData) -> list[RegionFactor]:
    found = cc.find_latest("canada_energy_mix.json")
    if found is None:
        return []
    path, year = found
    source = cc.describe(path, "provincial generation mix x energy-usage coal/oil/gas rates, as codecarbon")
    out = []
    for key, mix in _read_json(path).items():
        if not isinstance(mix, dict) or "total" not in mix:
            continue
        code = CANADA_ISO_3166_2.get(key)
        out.append(
            RegionFactor(
                name=f"CAN/{_slug(key)}",
                label=f"{key.title()}, Canada",
                kind="ca-province",
                intensity_g_per_kwh=energy_mix_to_g_per_kwh(mix),
                year=year,
                source=source,
                aliases=(code,) if code else (),
            )
        )
    return out


def _china(cc: CodecarbonData) -> list[RegionFactor]:
    found = cc.find_latest("china_provincial_emissions.json")
    if found is None:
        return []
    path, dir_year = found
    data = _read_json(path)
    meta = data.get("metadata", {})
    source = cc.describe(path, "MEE/NBS China provincial factors; CO2 only, not CO2e")
    out = []
    for code, row in data.get("data", {}).items():
        label = row.get("description", code)
        out.append(
            RegionFactor(
                name=f"CHN/{_slug(label)}",
                label=f"{label}, China",
                kind="cn-province",
                intensity_g_per_kwh=float(row["emission_factor"]),
                year=row.get("year", meta.get("year", dir_year)),
                source=source,
                aliases=(code.upper(),),
            )
        )
    return out


def _nordic(cc: CodecarbonData) -> list[RegionFactor]:
    path = cc.find("data/private_infra/nordic_emissions.json")
    if path is None:
        return []
    source = cc.describe(path, "ENTSO-E generation by bidding zone")
    out = []
    for zone, row in _read_json(path).get("data", {}).items():
        country = NORDIC_COUNTRY.get(zone[:2].upper())
        if country is None:
            continue
        out.append(
            RegionFactor(
                name=f"{country}/{zone.upper()}",
                label=row.get("description", zone),
                kind="nordic-zone",
                intensity_g_per_kwh=float(row["emission_factor"]),
                year=row.get("year"),
                source=source,
                aliases=(zone.upper(),),
            )
        )
    return out


def _cloud(cc: CodecarbonData) -> list[RegionFactor]:
    path = cc.find("data/cloud/impact.csv")
    if path is None:
        return []
    out = []
    with open(path, encoding="utf-8-sig", newline="") as f:  # the file starts with a byte-order mark
        for row in csv.DictReader(f):
            try:
                factor = float(row["impact"])
            except (KeyError, TypeError, ValueError):
                continue
            provider = row["provider"].strip().lower()
            place = ", ".join(x for x in (row.get("city") or row.get("state"), row.get("country_name")) if x)
            upstream = row.get("source") or row.get("providerName") or provider
            out.append(
                RegionFactor(
                    name=f"{provider}:{row['region'].strip()}",
                    label=f"{place} ({row.get('providerName') or provider})",
                    kind="cloud",
                    intensity_g_per_kwh=factor,
                    year=None,  # the file does not say which year the provider's figure is for
                    source=cc.describe(path, upstream),
                )
            )
    return out


_FAMILIES = (
    (_countries, "global_energy_mix.json (countries)"),
    (_us_states, "usa_emissions.json (US states)"),
    (_canada, "canada_energy_mix.json (Canadian provinces)"),
    (_china, "china_provincial_emissions.json (Chinese provinces)"),
    (_nordic, "nordic_emissions.json (Nordic bidding zones)"),
    (_cloud, "cloud/impact.csv (cloud regions)"),
)


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """Every region codecarbon's data knows, read once per process."""
    cc = codecarbon_data()
    regions: list[RegionFactor] = []
    notes: list[str] = []
    for loader, what in _FAMILIES:
        found = loader(cc)
        if not found:
            notes.append(f"codecarbon {cc.version} has no {what}; pip install 'codecarbon>=3.3,<4' for it")
        regions.extend(found)
    index: dict[str, RegionFactor] = {}
    for r in regions:
        for key in (r.name, *r.aliases):
            index.setdefault(normalise(key), r)
    return Catalog(regions=tuple(regions), index=index, notes=tuple(notes))


# ------------------------------------------------------------------------------------------------ public API
def lookup_region(name: str) -> RegionFactor:
    """The factor for ``name`` (canonical name or alias, any case); ``UnknownRegionError`` with suggestions."""
    cat = catalog()
    found = cat.index.get(normalise(name))
    if found is not None:
        return found
    raise UnknownRegionError(_unknown_message(name, cat))


def list_regions(query: str | None = None) -> list[RegionFactor]:
    """Regions whose name, alias, label or kind contains ``query`` (case-insensitive); all when ``None``."""
    regions = catalog().regions
    if not query:
        return list(regions)
    q = normalise(query)
    hits = [r for r in regions if any(q in normalise(t) for t in (r.name, r.label, r.kind, *r.aliases))]
    # An exact name or alias first: ``regions fra`` shows FRA before gcp:europe-west3 (Frankfurt).
    return sorted(hits, key=lambda r: q not in {normalise(x) for x in (r.name, *r.aliases)})


def closest_names(name: str, n: int = 5) -> list[str]:
    """Up to ``n`` canonical names nearest to ``name``: exact-suffix and substring hits first, then difflib."""
    cat = catalog()
    q = normalise(name)
    out: list[str] = []

    def add(region: RegionFactor) -> None:
        if region.name not in out:
            out.append(region.name)

    for r in cat.regions:  # "europe-west1" -> "gcp:europe-west1", "california" -> "USA/california"
        tails = [normalise(r.name).split("/")[-1].split(":")[-1]]
        if q in tails:
            add(r)
    keys = list(cat.index)
    for key in difflib.get_close_matches(q, keys, n=n * 2, cutoff=0.6):
        add(cat.index[key])
    if len(out) < n and len(q) >= 3:
        for r in cat.regions:
            if q in normalise(r.label) or q in normalise(r.name):
                add(r)
            if len(out) >= n:
                break
    return out[:n]


def _unknown_message(name: str, cat: Catalog) -> str:
    listing = f"`energybench regions QUERY` lists the {len(cat.regions)} known ones"
    if re.match(r"\s*(aws|azure)\s*:", name, re.IGNORECASE):
        # Suggesting a Google region for an AWS one would price the run with another company's grid mix.
        return (
            f"unknown region {name!r}: codecarbon has cloud factors for Google Cloud (gcp:...) only; pass "
            f"the data centre's country or state (e.g. USA/virginia) or --intensity G_PER_KWH; {listing}"
        )
    near = closest_names(name)
    hint = f"closest: {', '.join(near)}; " if near else ""
    return f"unknown region {name!r}: {hint}{listing}, or pass --intensity G_PER_KWH"
