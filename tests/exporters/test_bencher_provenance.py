"""The Bencher export keeps each figure's provenance: a measured and an estimated joule never share a measure."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

from report_fixtures import make_run

from energybench.record import storage


def test_bencher_measures_say_measured_or_estimated(tmp_path) -> None:
    run = make_run()  # its rounds are the CPU estimate's
    measured = replace(run.benchmarks[1], rounds=tuple(replace(r, source="measured") for r in run.benchmarks[1].rounds))
    path = storage.save_run(replace(run, benchmarks=(run.benchmarks[0], measured)), tmp_path, "mixed")
    proc = subprocess.run([sys.executable, "-m", "energybench", "export", "bencher", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    bmf = json.loads(proc.stdout)
    assert set(bmf[run.benchmarks[0].key]) == {"energy-per-item-joules-estimated", "co2e-per-item-grams-estimated"}
    assert set(bmf[measured.key]) == {"energy-per-item-joules-measured", "co2e-per-item-grams-measured"}
