"""Version-2 run files load as version 3: pytest rounds, saved per call, become their windows (x iterations), and
every per-call figure, per-item figure and comparison reads as it did before."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from energybench.errors import ResultsError
from energybench.record import VERSION, Run, storage
from energybench.verdicts.compare import compare_runs

ROOT = Path(__file__).resolve().parents[2]
# saved by the pytest plugin of commit b0736f1 (schema version 2, per-call pytest rounds)
V2_PYTEST = ROOT / "tests" / "support" / "data" / "schema2" / "0001_v2pytest.json"


def _old() -> dict:
    return json.loads(V2_PYTEST.read_text())


def test_v2_pytest_rounds_become_windows_with_the_same_per_call_figures():
    old = _old()
    assert old["version"] == 2 and old["kind"] == "pytest"
    run = storage.load_run(V2_PYTEST)
    assert VERSION == 3 and run.to_dict()["version"] == 3
    assert [b["name"] for b in old["benchmarks"]] == [b.name for b in run.benchmarks]
    for ob, bench in zip(old["benchmarks"], run.benchmarks, strict=True):
        assert len(ob["rounds"]) == len(bench.rounds)
        for o, r in zip(ob["rounds"], bench.rounds, strict=True):
            k = o["iterations"]
            assert k > 1 and r.iterations == k
            assert r.energy_j == pytest.approx(o["energy_j"] * k) and r.duration_s == pytest.approx(o["duration_s"] * k)
            assert r.items == pytest.approx(o["items"] * k) and r.co2e_g == pytest.approx(o["co2e_g"] * k)
            assert r.domains == pytest.approx({d: v * k for d, v in o["domains"].items()})
            # what a call cost, per item, and the power are what version 2 said
            assert r.energy_per_call_j == pytest.approx(o["energy_j"])
            assert r.duration_per_call_s == pytest.approx(o["duration_s"])
            assert r.co2e_per_call_g == pytest.approx(o["co2e_g"])
            assert r.energy_per_item_j == pytest.approx(o["energy_j"] / o["items"])
            assert r.power_w == pytest.approx(o["energy_j"] / o["duration_s"])
        # the table's and the gates' figure: the median per call, as version 2 stored it
        assert bench.summary("energy_per_call_j").median == pytest.approx(
            statistics.median(r["energy_j"] for r in ob["rounds"]))
    assert {b.has_items for b in run.benchmarks} == {True, False}  # items per call, not per window, decide
    row = compare_runs(run, run).rows[0]
    assert row.base_energy == pytest.approx(statistics.median(r["energy_j"] for r in old["benchmarks"][0]["rounds"]))


def test_a_migrated_file_is_written_as_version_3_and_not_multiplied_again(tmp_path):
    run = storage.load_run(V2_PYTEST)
    again = storage.load_run(storage.save_run(run, tmp_path, "again"))
    assert json.loads(Path(again.path).read_text())["version"] == 3
    assert again.benchmarks == run.benchmarks


def test_v2_window_rounds_of_other_kinds_are_left_as_they_were():
    """``energybench run`` trials and ``ab --command`` rounds were already windows in version 2."""
    for kind in ("suite", "ab-command"):
        data = dict(_old(), kind=kind)
        run = Run.from_dict(data)
        for ob, bench in zip(data["benchmarks"], run.benchmarks, strict=True):
            assert [r.energy_j for r in bench.rounds] == [r["energy_j"] for r in ob["rounds"]]
            assert [r.items for r in bench.rounds] == [r["items"] for r in ob["rounds"]]


def test_a_v2_round_without_items_holds_one_item_a_call():
    data = _old()
    for r in data["benchmarks"][0]["rounds"]:
        r.pop("items")
    bench = Run.from_dict(data).benchmarks[0]
    assert [r.items for r in bench.rounds] == [float(r.iterations) for r in bench.rounds]
    assert not bench.has_items


@pytest.mark.parametrize("value,match", [
    ("many", r"rounds\[0\]\.iterations: expected a number, got a string"),
    (0, r"rounds\[0\]\.iterations: must be >= 1"),
])
def test_a_bad_v2_iteration_count_is_named_not_multiplied(value, match):
    data = _old()
    data["benchmarks"][0]["rounds"][0]["iterations"] = value
    with pytest.raises(ResultsError, match=match):
        Run.from_dict(data, where="old.json")
