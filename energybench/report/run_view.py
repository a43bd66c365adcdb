"""What ``energybench run``'s table shows of one run, computed once: each row's verdict, the break-even of
each method with a one-off cost, the same work compared across devices, and the load the trials saw.
``render.run_table`` words it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from energybench.measuring.noise import describe_condition
from energybench.record import Run
from energybench.verdicts.baseline import BreakEven, VsBaseline, break_even, run_verdicts
from energybench.verdicts.devices import DeviceComparison, device_comparisons


@dataclass(frozen=True)
class RunView:
    """A run with the verdicts its table shows (keyed by ``Benchmark.key``)."""

    run: Run
    verdicts: Mapping[str, VsBaseline]
    break_evens: Mapping[str, BreakEven | None]
    hardware: tuple[DeviceComparison, ...]
    load: str | None = None  # the load the trials saw, in words (``measuring.noise.describe_condition``)


def run_view(run: Run) -> RunView:
    verdicts = run_verdicts(run)
    evens = {b.key: break_even(run, b, verdicts) for b in run.benchmarks
             if b.one_off is not None and b.one_off.energy_j is not None and b.phase == "inference"}
    load = describe_condition([r.load for _, r in run.rounds() if r.load])
    return RunView(run, verdicts, evens, tuple(device_comparisons(run)), load)
