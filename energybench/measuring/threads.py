"""Thread counts that change energy figures: torch's intra-op threads and the BLAS/OpenMP pools.

Why: the same matmul on 1 thread or on 8 costs different joules, and torch's default depends on the
machine, so two CI runners can compare different things without anyone having changed a line. Benchmarks pin
the counts when asked (``--threads`` / ``--energy-threads``), and always record what they ran with, so a
comparison can say when two runs differ.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LIMITERS: list[Any] = []  # threadpoolctl limiters stay alive as long as the process measures


def current() -> dict[str, Any]:
    """What the process runs with now: torch's threads (if torch is imported) and the BLAS/OpenMP pools."""
    out: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        out["blas"] = "unknown (threadpoolctl is not installed)"
    else:
        pools = {f"{p.get('internal_api')}": p.get("num_threads") for p in threadpool_info()}
        if pools:
            out["pools"] = pools
    return out


def pin(n: int) -> tuple[dict[str, Any], list[str]]:
    """Pin torch (when imported) and every BLAS/OpenMP pool to ``n`` threads; returns what is now in force and
    a note for each pool that could not be pinned (and why)."""
    notes: list[str] = []
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        notes.append("BLAS/OpenMP threads not pinned: install threadpoolctl (pip install threadpoolctl), or set "
                     f"OMP_NUM_THREADS={n} before Python starts")
    else:
        _LIMITERS.append(threadpool_limits(limits=n))
    state = current()
    state["pinned"] = n
    if torch is None:
        notes.append("torch was not imported when threads were pinned: if the tests import it later, torch uses its "
                     "own default; import torch in conftest.py to have it pinned")
    return state, notes


def fitting(current: int, cpus: float, others: float) -> int | None:
    """The intra-op thread count that fits the CPUs other processes leave free, when ``current`` does not.

    Why: a thread pool larger than the free CPUs makes every parallel op wait at its barrier for the thread a
    neighbour has descheduled; the same work then costs several times as much in one run as in the next
    (one CPU model estimate of a torch matmul read 702 mJ and 21 mJ in two runs of one pytest suite). Fewer
    threads than that only ever cost a little. ``None``: ``current`` fits already."""
    free = max(cpus - others, 1.0)
    fits = max(1, int(free + 0.5))
    return fits if current > fits else None


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the block, then as before: for work too small to split across cores
    (a small subject training its baseline before any window opens), where a second thread mostly waits for
    the first and, on a shared machine, for whoever holds its core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
