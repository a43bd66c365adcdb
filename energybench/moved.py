"""Module paths from before the package's folders (0.1): each still imports, as the module that now holds it,
with a ``DeprecationWarning`` naming the new path. They go in the next minor release.

An import hook rather than 27 files of re-exports: the old name is the *same* module object as the new one,
so ``mock.patch("energybench.runner.X")`` and ``import energybench.storage as s; s.save_run`` still act on
the code that runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module -> its home now
MOVED = {
    "ab": "run.ab", "between_runs": "verdicts.spread", "calibration": "run.calibration",
    "compare": "verdicts.compare", "devices": "run.devices", "fixture": "pytest_plugin.fixture",
    "gate": "verdicts.gate", "history": "verdicts.history", "layer_compare": "verdicts.layers",
    "layers": "measuring.layers", "machine": "measuring.machine", "meter": "measuring.meter",
    "noise": "measuring.noise", "pairing": "verdicts.pairing", "pytest_benchmark_tap": "pytest_plugin.benchmark_bridge",
    "pytest_safety": "pytest_plugin.guards", "pytest_session": "pytest_plugin.table", "results": "record.frames",
    "run_cells": "run.state", "run_devices": "run.devices", "run_state": "run.state", "run_trials": "run.trials",
    "runner": "run.runner", "storage": "record.storage", "suites": "run.suites", "threads": "measuring.threads",
    "window_result": "measuring.window",
}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != "energybench" or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = "energybench." + MOVED[spec.name.partition(".")[2]]
        warnings.warn(f"{spec.name} is now {new}; the old path goes in the next minor release",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module is the new one, already executed."""


def install() -> None:
    """Once per process (``import energybench`` calls it)."""
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        sys.meta_path.append(_OldPaths())
