"""Energy of torch.distributed jobs: measure on every rank, aggregate at each window's end.

When a process group is initialised, every ``Meter`` gets this package's window hook, so each window's
result is the job's (identical on every rank) with nothing to configure. One module a job:
``launcher`` (who started this process, where; torch-free), ``config`` (settings and their environment
variables), ``errors``, ``collectives`` (the gloo group, ``agree``, the exchange), ``hook`` (what
``Meter.end`` runs, and the local-only path) and ``aggregation`` (pure: dedup, carbon per host, timelines).

This face hands the public names on lazily, as ``energybench`` itself does: ``energybench.distributed.launcher``
is imported by the runner and the pytest plugin in every process, so importing it must not pull in the
aggregation code. Nothing here imports torch; only the communicating functions do, under a process group.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "aggregation": ("KEY_FORMAT", "REPORT_VERSION", "aggregate", "device_identity", "host_floor_w", "prefixed_key"),
    "collectives": ("AggregationGroup", "agree", "aggregation_group", "exchange"),
    "config": ("AGGREGATE_ENV", "DEFAULT_TIMEOUT_S", "ON_ERROR_CHOICES", "ON_ERROR_ENV", "TIMEOUT_ENV", "DistConfig"),
    "errors": ("DistributedError", "DistributedTimeoutError"),
    "hook": ("AggregatingHook", "LocalHook", "local_only", "rank_report", "window_hook"),
    "launcher": (
        "HOST_ENV",
        "host_name",
        "initialized_dist",
        "is_nonzero_rank",
        "launcher_environment",
        "launcher_kind",
    ),
}
_LAZY = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
