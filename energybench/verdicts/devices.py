"""The same work compared across devices: each workload and method on one device against the same on the
reference device (the CPU when it ran), with the same ratio, interval and test as a method against its
baseline (``run --device cpu,cuda`` interleaves trials across devices as across methods). Data only:
``render/`` words it.
"""

from __future__ import annotations

from dataclasses import dataclass

from energybench.record import Benchmark, Run
from energybench.verdicts.baseline import VsBaseline, judge_pairs, min_change_of
from energybench.verdicts.spread import of_run


@dataclass(frozen=True)
class DeviceComparison:
    """One workload and method on ``device`` against the same on ``reference`` (energy per item)."""

    name: str
    method: str
    reference: str
    device: str
    reference_bench: Benchmark
    bench: Benchmark
    vs: VsBaseline


def device_comparisons(run: Run, reference: str | None = None) -> list[DeviceComparison]:
    """Every (workload, method) measured on two or more devices, each device against the reference device
    (``reference``, else the CPU when it ran, else the first device in the file): paired by trial and
    corrected across all of the run's device comparisons (``verdicts.judge_pairs``)."""
    groups: dict[tuple[str, str], list[Benchmark]] = {}
    for b in run.benchmarks:
        if b.rounds and b.device is not None:
            groups.setdefault((b.name, b.method), []).append(b)
    found: list[tuple[str, str, str, Benchmark, Benchmark]] = []
    for (name, method), benches in groups.items():
        devices = [b.device for b in benches]
        if len(set(devices)) < 2:
            continue
        ref_name = str(reference if reference in devices else "cpu" if "cpu" in devices else devices[0])
        ref = next(b for b in benches if b.device == ref_name)
        found += [(name, method, ref_name, ref, b) for b in benches if b is not ref]
    verdicts = judge_pairs([(ref, b) for *_, ref, b in found], between=of_run(run), min_change=min_change_of(run))
    return [DeviceComparison(name, method, ref_name, str(b.device), ref, b, vs)
            for (name, method, ref_name, ref, b), vs in zip(found, verdicts, strict=True)]
