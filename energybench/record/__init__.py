"""The run record: what one run measured, as frozen dataclasses, and the only code that reads or writes it.

Why one module: a run file is read by compare, gates, reports, ``load_results`` and the run table, and
written by ``energybench run`` and the pytest plugin. When each of them built or took apart plain dicts,
the writers drifted (two different "carbon" blocks) and every reader re-derived medians its own way. Here
the shape is declared once (``Run -> Benchmark -> Round``, plus ``Machine`` and ``CarbonBasis``), every
field is checked on the way in with an error that names it, and derived figures (per-item energy,
medians, CIs) are properties computed from the rounds, so every reader gets the same number.

The file is versioned JSON (``schema: energybench/run``). ``VERSION`` is what this code writes; older
files are migrated on load (``_MIGRATIONS``), so a schema-1 directory saved before the record existed still
loads, compares and reports. Derived ``stats`` are written for people who read files with ``jq``; they are
ignored on load and recomputed, so a file can never disagree with what energybench computes from it.
Unknown keys at every level are kept in ``extra`` and written back, so plugins' data survives a round trip.
"""

from __future__ import annotations

from energybench.record.benchmark import Benchmark, Stopped
from energybench.record.environment import ABSide, BetweenRuns, Devices, Environment, Launcher, Settings
from energybench.record.layers import LayerEnergy, LayerProfile
from energybench.record.parts import (
    BASELINE,
    FIGURES,
    PHASES,
    CarbonBasis,
    Idle,
    Machine,
    OneOff,
    Quality,
    Round,
    Size,
)
from energybench.record.run import SCHEMA, VERSION, Run
from energybench.record.sci import Embodied

__all__ = ["BASELINE", "FIGURES", "PHASES", "SCHEMA", "VERSION", "ABSide", "Benchmark", "BetweenRuns", "CarbonBasis",
           "Devices", "Embodied", "Environment", "Idle", "Launcher", "LayerEnergy", "LayerProfile", "Machine",
           "OneOff", "Quality", "Round", "Run", "Settings", "Size", "Stopped"]
