"""The progress line's forecast of ``--quick``'s per-layer pass counts the rows the pass will profile: those
whose verdict is "saves". A row decided early counts by how it was decided, not by its estimate."""

from __future__ import annotations

from dataclasses import replace

from energybench.record import BASELINE, Benchmark, Round, Run, Stopped
from energybench.run.looks import Looks, likely_savers
from energybench.run.state import Cell, RunState
from energybench.verdicts.sequential import design


def _cell(method: str, ratio: float, stopped: Stopped | None = None) -> Cell:
    rounds = [Round(index=t, energy_j=ratio * (1.0 + 0.02 * (t % 3)), duration_s=1.0) for t in range(6)]
    bench = Benchmark(name="w", method=method, stopped=stopped)
    return Cell(subject=None, model=None, workload=None, bench=bench, rounds=rounds)  # type: ignore[arg-type]


def test_a_row_decided_futile_is_not_profiled_even_when_its_estimate_saves_more_than_the_minimum():
    base = _cell(BASELINE, 1.0)
    futile = _cell("small", 0.93, Stopped(6, "futile"))  # 7% below: past the 5% minimum, yet no claim
    claimed = _cell("big", 0.5, Stopped(6, "claim"))
    dearer = _cell("dear", 1.4, Stopped(6, "claim"))  # a claimed cost is not a saving either
    state = RunState(Run(name="t", created=""), entries=[base, futile, claimed, dearer])
    looks = Looks(design(12), state, 0.05)
    looks.open = [base]
    savers = likely_savers(looks)
    assert savers.get(claimed.bench.key) == 1.0
    assert futile.bench.key not in savers and dearer.bench.key not in savers


def test_a_row_closed_without_a_decision_counts_by_its_estimate():
    base = _cell(BASELINE, 1.0)
    stopped = _cell("m", 0.8)
    state = RunState(Run(name="t", created=""), entries=[base, stopped])
    looks = Looks(design(12), state, 0.05)
    looks.open = [base]
    assert likely_savers(looks) == {stopped.bench.key: 1.0}
    stopped.bench = replace(stopped.bench, stopped=Stopped(6, "futile"))
    assert likely_savers(looks) == {}
