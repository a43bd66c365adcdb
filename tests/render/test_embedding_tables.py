"""A recommender's rows carry their embedding tables' stored size beside their energy, in ``energybench run``'s
table and in ``energybench report``, even where a 100-column terminal leaves the size column out: the tables
are the bytes an embedding method exists to shrink (issue 27)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from energybench import units
from energybench.record import Quality, storage
from energybench.render.cells import tables_size

CLI = [sys.executable, "-m", "energybench"]
#: A recommender small enough to train in a second (the subject's quick settings shrunk further).
TINY_RECSYS = {"users": 300, "items": 200, "clusters": 10, "interactions": 12, "dim": 8, "hidden": 16, "batch": 64,
               "epochs": 1, "queries": 16, "candidates": 50}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    return proc


def _row(out: str, method: str) -> str:
    """``method``'s row of the table (below its ``method`` header; headlines may name the method too): its
    first line and the folded parts under it."""
    lines = out.splitlines()
    table = next(i for i, line in enumerate(lines) if line.strip().startswith("method "))
    start = next(i for i in range(table, len(lines)) if lines[i].strip().split(" ")[0] == method)
    return " ".join(lines[start : start + 2])


def test_an_embedding_quantized_row_shows_its_tables_size_in_run_and_report(tmp_path: Path) -> None:
    bench = tmp_path / "b"
    bench.mkdir()
    (bench / "suite.py").write_text("from energybench import Suite\n"
                                    f"SUITES = [Suite('recsys', methods=['emb-int8'], options={{'recsys': "
                                    f"{TINY_RECSYS!r}}})]\n")
    results = tmp_path / "res"
    run_out = _cli("run", str(bench), "--phase", "inference", "--trials", "2", "--idle", "0", "--results",
                   str(results), "--cache-dir", str(tmp_path / "cache")).stdout
    run = storage.load_run(next(results.glob("*.json")))
    sizes = {b.method: b.quality.extra["embedding_bytes"] for b in run.benchmarks if b.quality is not None}
    assert sizes["emb-int8"] < sizes["baseline"]  # int8 rows (and a scale and offset each) against fp32
    report_out = _cli("report", str(results)).stdout
    for out in (run_out, report_out):
        for method, size in sizes.items():
            row = _row(out, method)
            assert f"(tables {units.si(size, 'B')})" in row, out


def test_only_models_with_tables_get_the_part() -> None:
    assert tables_size(Quality("recall@10", 0.5, extra={"embedding_bytes": 124_000.0})) == "(tables 124 kB)"
    assert tables_size(Quality("accuracy", 0.9, extra={"test_images": 360})) == ""
    assert tables_size(None) == ""


@pytest.mark.parametrize("bad", [float("nan"), True, "124 kB"])
def test_a_size_that_is_not_a_number_is_left_out(bad: object) -> None:
    assert tables_size(Quality("recall@10", 0.5, extra={"embedding_bytes": bad})) == ""
