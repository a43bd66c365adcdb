"""A torch.distributed worker for tests/distributed/test_distributed_runs.py: measures windows on every rank.

Run as ``python -m torch.distributed.run --standalone --nproc_per_node=2 window_worker.py SCENARIO OUTDIR``
(or started by hand with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, as srun or mpirun would). Both ranks read
the same fake powercap tree (``$ENERGYBENCH_POWERCAP_ROOT``) that the test's writer thread advances at a known
power. Each rank writes what it saw to ``OUTDIR/rank<N>.json``; the test asserts on those files.

Scenarios:
- ``basic``: a shared-host window, ranks ending different windows, a window after that, a region given on
  rank 0 only, two simulated hosts in different regions, and ``energybench.measure()``.
- ``hang``: rank 1 begins a window and never ends it; rank 0 must fail with a clear error within the
  timeout, keep its local figures, and fail fast (or return local figures) on later windows.
- ``crash``: rank 1 exits abruptly mid-window; rank 0 must fail with a clear error at once.
- ``containers``: each rank has a hostname of its own (``ctr-0``, ``ctr-1``, like two containers on one
  machine) and rank 1's wall clock runs 2.5 s ahead; one window on the shared package.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

from energybench.distributed import DistributedError, agree
from energybench.distributed.launcher import launcher_environment
from energybench.measuring.meter import Meter, measure

ONLY_RAPL = {"samplers": ["powercap"]}
WORK_S = 0.4  # the fake tree's counters advance by wall time, so sleeping is enough work


def error_record(exc: DistributedError, t0: float) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "elapsed_s": time.monotonic() - t0,
        "local": exc.local.to_dict() if exc.local is not None else None,
        "window": exc.window,
    }


def basic(rank: int) -> dict[str, Any]:
    out: dict[str, Any] = {"launcher": launcher_environment(), "agreed": agree(rank + 3)}
    meter = Meter(options=ONLY_RAPL)
    with meter.window("train") as w:
        time.sleep(WORK_S)
    assert w.result is not None
    out["shared"] = w.result.to_dict()

    meter.begin(f"rank-{rank}-window")  # ranks disagree on the window's name
    t0 = time.monotonic()
    try:
        meter.end(f"rank-{rank}-window")
    except DistributedError as exc:
        out["mismatch"] = error_record(exc, t0)

    if rank == 0:  # a window only rank 0 runs (e.g. evaluation): a local meter, no collective
        solo = Meter(options={**ONLY_RAPL, "dist_aggregate": False})
        with solo.window("rank0-only") as w:
            time.sleep(0.05)
        out["solo"] = w.result.to_dict() if w.result else None
        solo.close()

    with meter.window("after") as w:  # the group is still usable after a mismatch
        time.sleep(0.05)
    out["after"] = w.result.to_dict() if w.result else None
    meter.close()

    partial = Meter(region="FRA" if rank == 0 else None, options=ONLY_RAPL)
    partial.begin("partial-region")
    t0 = time.monotonic()
    try:
        partial.end("partial-region")
    except DistributedError as exc:
        out["partial_region"] = error_record(exc, t0)
    partial.close()

    # two simulated hosts (each with its own package), in different grid regions
    hosts = Meter(region=["FRA", "DEU"][rank], options={**ONLY_RAPL, "dist_host": f"node{rank}"})
    with hosts.window("two-hosts") as w:
        time.sleep(0.2)
    out["two_hosts"] = w.result.to_dict() if w.result else None
    hosts.close()

    with measure("block", options=ONLY_RAPL) as m:
        time.sleep(0.05)
    out["measure"] = m.result.to_dict() if m.result else None
    return out


def hang(rank: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    meter = Meter(options=ONLY_RAPL)
    meter.begin("train")
    time.sleep(0.2)
    if rank == 1:
        time.sleep(120)  # a hung rank: never ends the window (torchrun stops it when rank 0 fails)
        return out
    t0 = time.monotonic()
    try:
        meter.end("train")
    except DistributedError as exc:
        out["timeout"] = error_record(exc, t0)
    meter.begin("later")
    t0 = time.monotonic()
    try:
        meter.end("later")
    except DistributedError as exc:
        out["later"] = error_record(exc, t0)
    lenient = Meter(options={**ONLY_RAPL, "dist_on_error": "local"})
    with lenient.window("lenient") as w:
        time.sleep(0.05)
    out["lenient"] = w.result.to_dict() if w.result else None
    return out


def crash(rank: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    meter = Meter(options=ONLY_RAPL)
    meter.begin("train")
    if rank == 1:
        time.sleep(0.5)
        os._exit(17)  # dies mid-window, like a segfault or an OOM kill
    time.sleep(0.1)
    t0 = time.monotonic()
    try:
        meter.end("train")
    except DistributedError as exc:
        out["crash"] = error_record(exc, t0)
    return out


def containers(rank: int) -> dict[str, Any]:
    import socket

    real_time = time.time
    socket.gethostname = lambda: f"ctr-{rank}"  # type: ignore[assignment]  # a container's own hostname
    if rank == 1:
        time.time = lambda: real_time() + 2.5  # type: ignore[assignment]  # a host whose clock is 2.5 s ahead
    meter = Meter(options=ONLY_RAPL)
    with meter.window("train") as w:
        time.sleep(1.0)
    meter.close()
    return {"train": w.result.to_dict() if w.result else None}


def main() -> int:
    scenario, outdir = sys.argv[1], Path(sys.argv[2])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    out = {"basic": basic, "hang": hang, "crash": crash, "containers": containers}[scenario](rank)
    (outdir / f"rank{rank}.json").write_text(json.dumps(out, default=str))
    if scenario in ("hang", "crash"):
        sys.stdout.flush()
        os._exit(3)  # a failed job: the launcher stops the other ranks; no clean shutdown with a dead peer
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
