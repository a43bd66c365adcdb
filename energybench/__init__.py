"""energybench: measure the energy and carbon cost of machine-learning work.

``import energybench`` stays cheap (no torch, no pandas): public names are resolved lazily on first use,
so the CLI starts fast and users only pay for what they touch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "measure": "energybench.meter",
    "Meter": "energybench.meter",
    "Measurement": "energybench.measurement",
    "DomainEnergy": "energybench.measurement",
    "CarbonInfo": "energybench.measurement",
    "EnergybenchError": "energybench.errors",
    "detect_samplers": "energybench.samplers",
    "load_results": "energybench.results",
    "save_run": "energybench.storage",
    "load_run": "energybench.storage",
    "compare_runs": "energybench.compare",
    "parse_gate": "energybench.gate",
    "Suite": "energybench.runner",
    "RunConfig": "energybench.runner",
    "run_suites": "energybench.runner",
    "Subject": "energybench.subjects.api",
    "CompressionMethod": "energybench.subjects.api",
    "launcher_environment": "energybench.distributed.launcher",
    "build_report": "energybench.report",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'energybench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
