"""Cells of a run that get no round: a method that did not apply, or plugin code that raised (data only).

Why a cell and not an abort: one subject that does not cast its inputs for bf16 used to end the whole run
with nothing saved for the other methods. Now the runner records each such cell in the run (``Benchmark``
with ``status`` and ``status_reason``, no rounds) and goes on, so the saved run says what happened to every
cell of the grid and every other cell is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from energybench.record import BASELINE, Benchmark
from energybench.subjects.api import Subject, Workload


def unrun_cells(subject: Subject, workloads: Sequence[Workload], spec: str, technique: str, status: str,
                reason: str, phase: str | None = None, device: str | None = None) -> list[Benchmark]:
    """One cell per workload of the subject (the baseline's, as the method never produced its own), all with
    ``status`` and ``reason``; ``phase`` keeps only that phase's workloads, as the run does."""
    return [Benchmark(name=f"{subject.name}/{wl.name}", method=spec, method_name=technique, family=subject.name,
                      workload=wl.name, phase=wl.phase, item_unit=wl.item_unit, status=status, status_reason=reason,
                      device=device)
            for wl in workloads if not phase or wl.phase == phase]


def subject_failed(subject: Subject, resolved: Sequence[tuple[str, Any, Any]], reason: str,
                   device: str | None = None) -> list[Benchmark]:
    """The baseline raised, so no cell of this subject can be measured or compared: one failed cell per method,
    under the workload ``*`` (the workloads were never known)."""
    return [Benchmark(name=f"{subject.name}/*", method=spec, method_name=technique, family=subject.name,
                      workload="*", status="failed", device=device,
                      status_reason=reason if spec == BASELINE else f"baseline failed: {reason}")
            for spec, technique in [(BASELINE, BASELINE), *((s, m.name) for s, m, _ in resolved)]]
