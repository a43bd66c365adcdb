"""One real run shared by the exporter, SCI and intensity tests: the runner with a tiny LM, real torch, the real
meter (the CPU-model estimate here), priced for France, with two devices' embodied emissions for SCI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from energybench.record import Embodied, Run
from energybench.run.runner import RunConfig, Suite, run_suites

TINY = {
    "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "context": 16, "batch": 4, "train_steps": 20,
    "target_loss": 5.0, "max_target_steps": 20, "steps_per_trial": 1, "gen_batch": 2, "gen_tokens": 2,
    "score_batches": 1, "val_batches": 1, "corpus_bytes": 20_000, "distill_steps": 5,
}
DEVICES = (Embodied("server", 1200.0, 4.0, 0.25), Embodied("gpu", 150.0, 5.0, 1.0))


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A saved run (``run.path`` is its file) of the lm baseline and int8-dynamic, 3 trials, region FRA."""
    base = tmp_path_factory.mktemp("real_run")
    cfg = RunConfig(trials=3, quick=True, results_dir=str(base / "results"), cache_dir=str(base / "cache"),
                    idle_s=0.2, threads=1, stream=io.StringIO(), carbon={"region": "FRA"}, embodied=DEVICES)
    run = run_suites([Suite("lm", methods=["int8-dynamic"], options={"lm": TINY})], cfg)
    assert run.path is not None and Path(run.path).is_file()
    return run
