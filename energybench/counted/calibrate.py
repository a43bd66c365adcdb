"""Fitting a machine's own per-event energies: kernels counted by the simulator, measured by RAPL.

Three steps, each its own function so a caller (or a test) can supply any of them:

1. ``count_kernels``: each kernel's events per call under callgrind, once (counts repeat exactly).
2. ``measure_native``: each kernel's joules per call on the real CPU through a counter sampler (RAPL via
   powercap), repeated for at least ``min_seconds`` per repeat, minus the idle floor
   (``measure_idle``), median over repeats. The counter is read directly at the edges, as the meter does.
3. ``fit.fit_energies``: least squares, relative error, with the residual of every kernel.

The kernels run natively in this process, one after another, so other load on the machine adds to what
RAPL sees: calibrate on a quiet machine, and read the residual before trusting the profile.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from energybench.counted.child import load_target
from energybench.counted.fit import Fit, Sample, fit_energies
from energybench.counted.kernels import KERNELS, Kernel
from energybench.counted.profile import Profile, derive
from energybench.counted.runner import count_targets
from energybench.counted.valgrind import CacheGeometry
from energybench.samplers.base import Sampler

#: What calibration fits unless told otherwise (see ``kernels``: data accesses cannot be told apart).
DEFAULT_EVENTS = ("instructions", "ll_hits", "dram_lines")
NativeRun = Callable[[Kernel, Callable[[], Any], int], None]


@dataclass(frozen=True)
class NativeFigure:
    """A kernel on the real CPU: joules and seconds per call (medians over repeats) and their spread."""

    joules: float
    seconds: float
    calls: int
    repeats: tuple[float, ...]

    @property
    def spread(self) -> float:
        """(max - min) / median of the per-call joules across repeats."""
        return (max(self.repeats) - min(self.repeats)) / self.joules if self.joules > 0 else math.inf


@dataclass(frozen=True)
class Calibration:
    """A fitted profile and everything it was fitted from."""

    profile: Profile
    fit: Fit
    counts: dict[str, dict[str, int]]
    native: dict[str, NativeFigure]
    idle_w: float


def run_calls(kernel: Kernel, fn: Callable[[], Any], calls: int) -> None:
    for _ in range(calls):
        fn()


def count_kernels(kernels: Sequence[Kernel], cache: CacheGeometry) -> dict[str, dict[str, int]]:
    """Raw counts of one call of each kernel, all in one simulated process."""
    profile = Profile("calibration", {}, "", cache)
    results = count_targets([k.target for k in kernels], 1, profile=profile, names=[k.name for k in kernels])
    return {k.name: dict(r.counts) for k, r in zip(kernels, results, strict=True)}


class CounterReader:
    """Total joules of a counter sampler's counted domains, unwrapped across reads (RAPL wraps)."""

    def __init__(self, sampler: Sampler) -> None:
        self.domains = [d for d in sampler.domains() if d.counted and d.source == "measured"]
        self._sampler = sampler
        self._last: dict[str, float] = {}
        self._total = 0.0

    def read(self) -> float:
        values = self._sampler.read()
        for domain in self.domains:
            value = values[domain.key]
            if domain.key in self._last:
                step = value - self._last[domain.key]
                if step < 0 and domain.max_value:
                    step += domain.max_value
                self._total += max(step, 0.0)
            self._last[domain.key] = value
        return self._total


def measure_idle(reader: CounterReader, seconds: float, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> float:
    """Watts with nothing running: the floor every kernel's joules are taken above."""
    if seconds <= 0:
        return 0.0
    e0, t0 = reader.read(), clock()
    sleep(seconds)
    e1, t1 = reader.read(), clock()
    return (e1 - e0) / (t1 - t0)


def measure_native(kernels: Sequence[Kernel], reader: CounterReader, *, idle_w: float, min_seconds: float = 1.0,
                   repeats: int = 5, run: NativeRun = run_calls,
                   clock: Callable[[], float] = time.perf_counter) -> dict[str, NativeFigure]:
    """Joules per call of each kernel on the real CPU, above the idle floor. ``clock`` times the repeats (the
    idle floor is charged by it); how many calls make ``min_seconds`` is sized on the wall clock."""
    figures = {}
    for kernel in kernels:
        fn = load_target(kernel.target)
        fn()  # warm-up: first-call costs (page faults, lazy set-up) are not per-call energy
        t0 = time.perf_counter()
        fn()
        calls = max(1, math.ceil(min_seconds / max(time.perf_counter() - t0, 1e-6)))
        joules, seconds = [], []
        for _ in range(repeats):
            e0, t0 = reader.read(), clock()
            run(kernel, fn, calls)
            e1, t1 = reader.read(), clock()
            joules.append((e1 - e0 - idle_w * (t1 - t0)) / calls)
            seconds.append((t1 - t0) / calls)
        figures[kernel.name] = NativeFigure(statistics.median(joules), statistics.median(seconds), calls,
                                            tuple(joules))
    return figures


def calibrate(sampler: Sampler, *, name: str, kernels: Sequence[Kernel] = KERNELS,
              events: Sequence[str] = DEFAULT_EVENTS, cache: CacheGeometry | None = None, idle_s: float = 2.0,
              min_seconds: float = 1.0, repeats: int = 5, run: NativeRun = run_calls,
              counts: Mapping[str, Mapping[str, int]] | None = None,
              clock: Callable[[], float] = time.perf_counter,
              sleep: Callable[[float], None] = time.sleep) -> Calibration:
    """Count, measure, fit: a profile named ``name`` for this machine (``counts`` skips step 1; ``clock`` and
    ``sleep`` are the time the idle floor is charged by, a test's own where its hardware keeps time)."""
    geometry = cache or CacheGeometry()
    counted = {k: dict(v) for k, v in counts.items()} if counts is not None else count_kernels(kernels, geometry)
    reader = CounterReader(sampler)
    idle_w = measure_idle(reader, idle_s, clock, sleep)
    native = measure_native(kernels, reader, idle_w=idle_w, min_seconds=min_seconds, repeats=repeats, run=run,
                            clock=clock)
    samples = [Sample(k.name, {e: float(v) for e, v in derive(counted[k.name]).items()}, native[k.name].joules)
               for k in kernels]
    fit = fit_energies(samples, events)
    record = {**fit.to_dict(), "idle_w": idle_w, "machine": platform.machine(), "node": platform.node(),
              "processor": platform.processor(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "sampler": sampler.name, "domains": [d.key for d in reader.domains],
              "native_spread": {k: native[k].spread for k in native}}
    folded = "" if "data_accesses" in events else "; L1 data accesses folded into instructions"
    profile = Profile(name, {e: max(0.0, j) for e, j in fit.energies_j.items()},
                      f"fitted by energybench calibrate on {platform.node() or 'this machine'} from "
                      f"{len(kernels)} kernels against {sampler.name}{folded}", geometry, record)
    return Calibration(profile, fit, counted, native, idle_w)
