"""A pytest module run on every rank by torchrun (copied to a temp dir as ``test_energy_ddp.py``).

It shows that the ``energy`` fixture needs nothing special under torch.distributed: its rounds are meter
windows, so each round's figure is already the job's (aggregated across ranks). Each rank writes the
fixture's record to ``$DIST_OUT/rank<N>.json`` for tests/distributed/test_distributed_runs.py to check.
"""

import json
import os
import time

import pytest
import torch.distributed as dist


@pytest.fixture(scope="session", autouse=True)
def process_group():
    dist.init_process_group("gloo")
    yield
    dist.destroy_process_group()


def test_sleep_energy(energy):
    energy.pedantic(time.sleep, args=(0.15,), rounds=2, warmup_rounds=0, iterations=1)
    with open(os.path.join(os.environ["DIST_OUT"], f"rank{dist.get_rank()}.json"), "w") as fh:
        json.dump(energy.record().to_dict(), fh)
