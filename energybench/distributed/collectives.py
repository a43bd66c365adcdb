"""The communication: one gloo group for aggregation, ``agree``, and the exchange of rank reports.

Every rank sends a small report (its local measurement, host, rank, carbon settings) to every other rank with
``all_gather_object`` over a dedicated **gloo** group (``new_group(backend="gloo")``), created once per process
and timeout. The group needs no GPU, so aggregation works the same under NCCL (NCCL's object collectives would
need ``torch.cuda.set_device`` first), and its timeout is ours (``ENERGYBENCH_DIST_TIMEOUT_S``), not the
training job's. torch is imported only inside the functions that communicate, which run only under an
initialised process group.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from energybench.distributed.config import TIMEOUT_ENV, DistConfig
from energybench.distributed.errors import DistributedError, DistributedTimeoutError
from energybench.distributed.launcher import initialized_dist

T = TypeVar("T")


@dataclass
class AggregationGroup:
    """Our gloo group under one default process group; ``broken`` says why it must not be used again."""

    world: Any  # the default group it belongs to (held so its id is never reused while cached)
    group: Any
    timeout_s: float
    broken: str | None = None


# One group per (default process group, timeout): creating a group is itself collective, so doing it once
# per process keeps later Meters (e.g. one per ``measure()`` block) free of extra collectives.
_GROUPS: dict[tuple[int, float], AggregationGroup] = {}


def aggregation_group(timeout_s: float) -> AggregationGroup:
    """The gloo group used for aggregation, created on first use (a collective: every rank must call it)."""
    import torch.distributed as dist

    world = dist.group.WORLD
    key = (id(world), timeout_s)
    found = _GROUPS.get(key)
    if found is not None and found.world is world:
        return found
    try:
        group = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))
    except RuntimeError as exc:  # DistStoreError / DistBackendError: a rank never came
        raise DistributedTimeoutError(
            f"creating energybench's aggregation group timed out after {timeout_s:g} s ({_short(exc)}): every rank "
            f"must create its first Meter (or measure() block) at the same point; raise ${TIMEOUT_ENV} if ranks "
            "legitimately arrive later"
        ) from exc
    found = AggregationGroup(world, group, timeout_s)
    _GROUPS[key] = found
    return found


def agree(value: T, combine: Callable[[list[Any]], Any] = max, options: Mapping[str, Any] | None = None) -> T:
    """One value every rank agrees on, e.g. iterations per window: ``combine`` over all ranks' values.

    Code that decides how often to call a collective (a DDP step) from local timing must agree first, or
    ranks run different numbers of steps and hang. Collective: every rank must call it. Outside an
    initialised process group it returns ``value`` unchanged (and never imports torch).
    """
    dist = initialized_dist()
    if dist is None:
        return value
    config = DistConfig.from_options(options)
    group = aggregation_group(config.timeout_s)
    gathered: list[Any] = [None] * dist.get_world_size(group.group)
    try:
        dist.all_gather_object(gathered, value, group=group.group)
    except RuntimeError as exc:
        group.broken = f"agreeing on a value failed: {_short(exc)}"
        raise DistributedTimeoutError(
            f"ranks could not agree on a value within {config.timeout_s:g} s ({_short(exc)}): every rank must "
            "reach the same point; a rank crashed or is stuck"
        ) from exc
    return combine(gathered)


def exchange(group: AggregationGroup, report: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]:
    """Every rank's report of one window, on every rank (collective).

    Raises ``DistributedTimeoutError`` naming who failed and how (crashed early, or hung until the timeout)
    and marks the group broken: after a failure the ranks are out of step, so later windows fail at once.
    """
    import torch.distributed as dist

    name = report["window"]
    if group.broken:
        raise DistributedError(
            f"window {name!r} not aggregated: an earlier aggregation on this rank failed "
            f"({group.broken}), so the ranks are out of step"
        )
    timeout = timedelta(seconds=timeout_s)
    gathered: list[Any] = [None] * dist.get_world_size(group.group)
    started = time.monotonic()
    try:
        # The monitored barrier names the ranks that never arrived (on rank 0); the gather moves the data.
        # Every rank leaves the barrier at about the same instant: its wall clock then, compared across
        # ranks, is the clock offset between hosts that aggregation corrects window starts by.
        dist.monitored_barrier(group=group.group, timeout=timeout, wait_all_ranks=True)
        report = {**report, "barrier_wall_s": time.time()}
        dist.all_gather_object(gathered, report, group=group.group)
    except RuntimeError as exc:  # torch's DistError family: timeouts, closed connections
        why = _explain_failure(exc, timeout_s, time.monotonic() - started)
        group.broken = why
        raise DistributedTimeoutError(
            f"window {name!r} could not be aggregated across {len(gathered)} ranks: {why}; windows are "
            f"collective, every rank must end them (raise ${TIMEOUT_ENV}, now {timeout_s:g} s, "
            "if ranks legitimately lag)"
        ) from exc
    return gathered


def _short(exc: BaseException, limit: int = 160) -> str:
    """The first line of a torch/gloo error without its source path prefix (``[/path/pair.cc:553] ``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\.(?:cc|cpp|h|hpp):\d+\]\s*", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _explain_failure(exc: BaseException, timeout_s: float, waited_s: float) -> str:
    """Say who failed and how: a connection lost early is a crash, a full wait is a hang (or another window)."""
    text = str(exc)
    how = (
        f"did not reach the end within {timeout_s:g} s (hung, or ended another window)"
        if waited_s >= 0.9 * timeout_s
        else f"dropped out after {waited_s:.3g} s (crashed or exited mid-window)"
    )
    missing = re.search(r"Ranks? ([\d, ]+) failed to pass monitoredBarrier", text)
    if missing:
        ranks = ", ".join(r.strip() for r in missing.group(1).split(",") if r.strip())
        return f"rank(s) {ranks} {how}"
    if "waiting for send/recv from rank 0" in text:
        return f"rank 0, which checks that every rank arrived, or a rank it waited for {how} (see rank 0's error)"
    return f"a rank {how}: {_short(exc)}"
