"""`energybench run` under torchrun: every rank measures, windows aggregate, rank 0 alone saves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runner_subjects import write_suite


def test_runner_under_torchrun_aggregates_ranks_and_saves_once(tmp_path: Path) -> None:
    bench = write_suite(tmp_path / "b", ["bf16"])
    results = tmp_path / "res"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "energybench",
         "run", str(bench), "--subjects", "lm", "--trials", "2", "--idle", "0.2", "--results", str(results)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={**os.environ, "ENERGYBENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    saved = list(results.glob("*.json"))
    assert len(saved) == 1  # both ranks hold the job's figures; only rank 0 writes them
    run = json.loads(saved[0].read_text())
    assert run["environment"]["launcher"]["world_size"] == 2
    keys = set(run["benchmarks"][0]["rounds"][0]["domains"])
    assert all(any(k.endswith(f"rank{i}/cpu:server-share") for k in keys) for i in (0, 1))
    assert proc.stdout.count("lm/train-step") >= 1  # one table, printed by rank 0 only
    assert proc.stdout.count("energy per item") == 1
    # notes and progress lines are printed once for the job, not once per rank
    for line in ("measuring idle power", "lm: applying bf16", "trial 1/2 done", "trial 2/2 done"):
        assert proc.stderr.count(line) == 1, (line, proc.stderr[-3000:])
