"""The window hook: what ``Meter.end`` does with each window's result while a process group is up.

``window_hook`` is the ``WindowHookFactory`` that ``energybench.measuring.meter.WINDOW_HOOKS`` names. Under an
initialised process group it gives every ``Meter`` a hook that sends the rank's result to every rank
(``collectives.exchange``) and merges the reports (``aggregation.aggregate``): each rank returns the same job-wide
result.

**Windows are collective.** Every rank must create its first ``Meter`` (the group is created then) and begin
and end the same windows in the same order, like any collective. A rank that ends another window, or
never ends it, makes the others raise ``DistributedError`` (a mismatch is caught at once; a missing rank after
the timeout): never a hang, and the local figures travel on the error's ``.local`` (and in its message),
so nothing measured is lost. A meter made with ``options={"dist_aggregate": False}`` (or
``ENERGYBENCH_DIST_AGGREGATE=0``) measures its rank alone, for code that only some ranks run. With
``dist_on_error="local"`` (or ``ENERGYBENCH_DIST_ON_ERROR=local``) a communication failure instead returns
the local measurement with a warning. After a failure the group is not trusted again: later windows on this
rank raise (or return local figures) at once instead of waiting. Local results are marked
``metadata["distributed"]["aggregated"] = False``. End windows from one thread per rank: concurrent
collectives on one group could pair up differently on different ranks.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from energybench.distributed.aggregation import REPORT_VERSION, aggregate
from energybench.distributed.collectives import AggregationGroup, aggregation_group, exchange
from energybench.distributed.config import DistConfig
from energybench.distributed.errors import DistributedError
from energybench.distributed.launcher import initialized_dist, launcher_environment
from energybench.measurement import Measurement
from energybench.units import joules as format_joules

if TYPE_CHECKING:
    from energybench.measuring.meter import Meter, WindowHook


def window_hook(meter: Meter, options: Mapping[str, Any]) -> WindowHook | None:
    """The ``WindowHookFactory`` the meter's ``WINDOW_HOOKS`` names: while a process group is initialised,
    the hook that aggregates each window across ranks (or marks it local with ``dist_aggregate`` off).

    Creates the aggregation group now (collective), so a rank that never creates its meter is reported here,
    before any work is measured.
    """
    if initialized_dist() is None:
        return None
    config = DistConfig.from_options(options)
    if not config.aggregate:
        return LocalHook(config)
    return AggregatingHook(meter, config, aggregation_group(config.timeout_s))


def local_only(local: Measurement, *, host: str, reason: str, warning: str | None = None) -> Measurement:
    """This rank's own figures, marked as such so no report mistakes them for the job's."""
    dist = initialized_dist()
    marker = {
        "aggregated": False,
        "reason": reason,
        "rank": dist.get_rank() if dist is not None else None,
        "world_size": dist.get_world_size() if dist is not None else None,
        "host": host,
    }
    warnings = (*local.warnings, warning) if warning else local.warnings
    return replace(local, warnings=warnings, metadata={**local.metadata, "distributed": marker})


class LocalHook:
    """A meter with aggregation off: every window is this rank's alone (no group, no collective)."""

    def __init__(self, config: DistConfig) -> None:
        self.config = config

    def finalize(self, result: Measurement) -> Measurement:
        return local_only(result, host=self.config.host, reason="aggregation off (dist_aggregate)")

    def finalize_local(self, result: Measurement, reason: str) -> Measurement:
        return local_only(result, host=self.config.host, reason=reason)


class AggregatingHook:
    """Makes every window collective: each rank's result becomes the job's, identical on every rank."""

    def __init__(self, meter: Meter, config: DistConfig, group: AggregationGroup) -> None:
        self.meter = meter
        self.config = config
        self.group = group

    def finalize_local(self, result: Measurement, reason: str) -> Measurement:
        """Skip the collective for this window (e.g. its body raised on this rank): the local figures, marked.

        The peers that do reach the window's end then fail after the timeout, naming this rank; waiting here
        instead would hold this rank's own exception back by the whole timeout.
        """
        return local_only(
            result, host=self.config.host, reason=reason, warning=f"not aggregated across ranks: {reason}"
        )

    def finalize(self, result: Measurement) -> Measurement:
        try:
            reports = exchange(self.group, rank_report(result, self.meter, self.config), self.config.timeout_s)
        except DistributedError as exc:
            if self.config.on_error == "local":
                note = f"not aggregated across ranks: {exc}"
                return local_only(
                    result, host=self.config.host, reason="peer failure (dist_on_error=local)", warning=note
                )
            raise type(exc)(
                f"{exc}; this rank's own figures ({format_joules(result.energy_j)}) are kept on the error's .local",
                local=result,
                window=result.name,
            ) from exc.__cause__
        try:
            return aggregate(reports, aggregation={"backend": "gloo", "timeout_s": self.config.timeout_s})
        except DistributedError as exc:  # bad input (mismatched windows, regions): raised alike on every rank
            exc.local, exc.window = result, result.name
            raise


def rank_report(local: Measurement, meter: Meter, config: DistConfig) -> dict[str, Any]:
    """What one rank contributes to a window's aggregation (plain data: it is pickled to every rank)."""
    import torch.distributed as dist

    rank = dist.get_rank()
    env = launcher_environment()
    provider = getattr(meter, "provider", None)
    return {
        "version": REPORT_VERSION,
        "window": local.name,
        "rank": rank,
        "world_size": dist.get_world_size(),
        "host": config.host,
        "host_id": config.host_id or config.host,
        "local_rank": env.get("local_rank"),
        "pid": env.get("pid"),
        "own_gpu": _own_gpu_index(env.get("local_rank")),
        "carbon_settings": provider.describe() if provider is not None else None,
        "measurement": local.to_dict(),
        "launcher": env if rank == 0 else None,
    }


def _own_gpu_index(local_rank: int | None) -> int | None:
    """The CUDA device this rank drives: its current device once CUDA is up, else torchrun's LOCAL_RANK."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_available() and cuda.is_initialized():
        return int(cuda.current_device())
    return local_rank
