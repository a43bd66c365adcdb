"""Per-event energy profiles: defaults with their source, the file format, re-pricing saved counts."""

from __future__ import annotations

import json

import pytest

from energybench.counted.errors import CountedError
from energybench.counted.profile import (
    DEFAULT_PROFILE,
    EVENTS,
    Profile,
    derive,
    load_profile,
    resolve_profile,
    save_profile,
)
from energybench.counted.result import CountedResult, reprice
from energybench.counted.valgrind import CacheGeometry

RAW = {"Ir": 1_000_000, "Dr": 300_000, "Dw": 100_000, "I1mr": 500, "D1mr": 4_000, "D1mw": 1_500,
       "ILmr": 100, "DLmr": 900, "DLmw": 200}


def test_derived_events_split_misses_by_where_they_were_served():
    events = derive(RAW)
    assert events == {"instructions": 1_000_000, "data_accesses": 400_000, "ll_hits": 6_000 - 1_200,
                      "dram_lines": 1_200}


def test_default_table_names_its_source_and_prices_every_event():
    assert set(DEFAULT_PROFILE.energies_j) == set(EVENTS)
    assert "Horowitz" in DEFAULT_PROFILE.source and "ISSCC 2014" in DEFAULT_PROFILE.source
    assert DEFAULT_PROFILE.energies_j["instructions"] == pytest.approx(70e-12)
    assert DEFAULT_PROFILE.energies_j["dram_lines"] == pytest.approx(8 * 1.95e-9)
    result = CountedResult("w", RAW, 1, DEFAULT_PROFILE, CacheGeometry())
    expected = 1e6 * 70e-12 + 4e5 * 20e-12 + 4800 * 800e-12 + 1200 * 15.6e-9
    assert result.energy_j == pytest.approx(expected)
    assert result.source == "modeled"
    assert result.method == "counted events x per-event energies, profile horowitz-45nm"


def test_profile_file_round_trips_and_is_found_through_the_environment(tmp_path, monkeypatch):
    profile = Profile("lab-box", {"instructions": 1e-10, "dram_lines": 2e-8}, "fitted", CacheGeometry(
        ll=(16777216, 16, 64)), {"rms_relative_residual": 0.01})
    path = save_profile(profile, tmp_path / "p.json")
    assert load_profile(path) == profile
    monkeypatch.setenv("ENERGYBENCH_COUNTED_PROFILE", str(path))
    assert resolve_profile().name == "lab-box"
    assert resolve_profile(None, environ={}).name == DEFAULT_PROFILE.name


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "is not JSON"),
    (json.dumps({"name": "x"}), "is not an energybench counted profile"),
    (json.dumps({"format": "energybench.counted-profile", "version": 9, "name": "x", "energies_j": {}}),
     "has version 9"),
    (json.dumps({"format": "energybench.counted-profile", "version": 1, "name": "x",
                 "energies_j": {"flops": 1e-12}}), "prices unknown event(s) flops"),
    (json.dumps({"format": "energybench.counted-profile", "version": 1, "name": "x",
                 "energies_j": {"instructions": -1}}), "must be joules >= 0"),
    (json.dumps({"format": "energybench.counted-profile", "version": 1, "name": "x",
                 "energies_j": {"instructions": 1e-10}, "cache": {"I1": [32768, 8, 60], "D1": [32768, 8, 64],
                                                                   "LL": [8388608, 16, 64]}}), "cache.I1"),
])
def test_a_malformed_profile_is_one_line_naming_the_file_and_the_fix(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CountedError) as info:
        load_profile(path)
    message = str(info.value)
    assert problem in message and str(path) in message
    assert "energybench calibrate --out FILE" in message and "\n" not in message
    assert info.value.exit_code == 2


def test_reprice_keeps_the_counts_and_changes_only_the_price():
    doubled = Profile("double", {e: 2 * j for e, j in DEFAULT_PROFILE.energies_j.items()}, "test")
    result = CountedResult("w", RAW, 4, DEFAULT_PROFILE, CacheGeometry())
    again = reprice(result, doubled)
    assert again.counts == result.counts and again.iterations == 4
    assert again.energy_j == pytest.approx(2 * result.energy_j)
    assert again.method.endswith("profile double")
    from_record = reprice(json.loads(json.dumps(result.to_dict())), doubled)  # what a run file carries
    assert from_record.energy_j == pytest.approx(again.energy_j)
    assert reprice(RAW, doubled).energy_j == pytest.approx(2 * result.energy_j / 1)  # bare raw counts


def test_reprice_with_a_profile_for_other_caches_says_so():
    other = Profile("big-ll", DEFAULT_PROFILE.energies_j, "test", CacheGeometry(ll=(33554432, 16, 64)))
    again = reprice(CountedResult("w", RAW, 1, DEFAULT_PROFILE, CacheGeometry()), other)
    assert any("other simulated caches" in w for w in again.warnings)


def test_a_counted_result_becomes_a_modeled_measurement_with_its_counts():
    m = CountedResult("w", RAW, 2, DEFAULT_PROFILE, CacheGeometry(), wall_s=3.0).to_measurement()
    (domain,) = m.domains
    assert domain.source == "modeled" and domain.key == "cpu:counted"
    assert domain.details["counts"] == RAW
    assert m.metadata["provenance"] == "modeled"
    assert m.energy_j == pytest.approx(CountedResult("w", RAW, 2, DEFAULT_PROFILE, CacheGeometry()).energy_j)
