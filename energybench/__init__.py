"""energybench: measure the energy and carbon cost of machine-learning work.

``import energybench`` stays cheap (no torch, no pandas): public names are resolved lazily on first use,
so the CLI starts fast and users only pay for what they touch. ``dir(energybench)`` and tab completion
list them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from energybench import moved as _moved  # noqa: E402  (old module paths still import, with a warning)

_moved.install()

_LAZY = {
    # measuring
    "measure": "energybench.measuring.meter",
    "Meter": "energybench.measuring.meter",
    "Measurement": "energybench.measurement",
    "DomainEnergy": "energybench.measurement",
    "CarbonInfo": "energybench.measurement",
    "detect_samplers": "energybench.samplers",
    "launcher_environment": "energybench.distributed.launcher",
    "energy_by_layer": "energybench.measuring.layers",
    # results
    "Run": "energybench.record",
    "Benchmark": "energybench.record",
    "Round": "energybench.record",
    "load_results": "energybench.record.frames",
    "load_layers": "energybench.record.frames",
    "save_run": "energybench.record.storage",
    "load_run": "energybench.record.storage",
    # comparing and gating
    "compare_runs": "energybench.verdicts.compare",
    "parse_gate": "energybench.verdicts.gate",
    "build_report": "energybench.report",
    # compression benchmarks
    "Suite": "energybench.run.suites",
    "RunConfig": "energybench.run.config",
    "run_suites": "energybench.run.runner",
    "Subject": "energybench.subjects.api",
    "CompressionMethod": "energybench.subjects.api",
    "EnergybenchError": "energybench.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # type checkers and IDEs see the real objects
    from energybench.distributed.launcher import launcher_environment  # noqa: F401
    from energybench.errors import EnergybenchError  # noqa: F401
    from energybench.measurement import CarbonInfo, DomainEnergy, Measurement  # noqa: F401
    from energybench.measuring.layers import energy_by_layer  # noqa: F401
    from energybench.measuring.meter import Meter, measure  # noqa: F401
    from energybench.record import Benchmark, Round, Run  # noqa: F401
    from energybench.record.frames import load_layers, load_results  # noqa: F401
    from energybench.record.storage import load_run, save_run  # noqa: F401
    from energybench.report import build_report  # noqa: F401
    from energybench.run.config import RunConfig  # noqa: F401
    from energybench.run.runner import run_suites  # noqa: F401
    from energybench.run.suites import Suite  # noqa: F401
    from energybench.samplers import detect_samplers  # noqa: F401
    from energybench.subjects.api import CompressionMethod, Subject  # noqa: F401
    from energybench.verdicts.compare import compare_runs  # noqa: F401
    from energybench.verdicts.gate import parse_gate  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'energybench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The lazy public names too, so ``dir(energybench)`` and notebook completion show ``measure`` & co."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})
