"""Your share of a shared GPU: the device's energy apportioned by each process's share of its utilisation.

NVML and amdsmi measure a whole GPU. When several processes share one, the device's figure is everyone's, and
a benchmark that reports it as its own overstates itself by whatever its neighbours did. This module keeps the
device's figure as it is (it is what the hardware measured) and adds a separate, uncounted figure
``gpu:N:process-share``: this process tree's part of it, labelled ``estimated (shared GPU: share of
utilisation)`` because it is an attribution, never a measurement.

The rule, at every read of the device (window edges and the meter's polls): the energy drawn since the
previous read is split among processes by their utilisation over the same span (NVML: the SM-utilisation
samples of ``nvmlDeviceGetProcessUtilization``; amdsmi: GFX-engine busy nanoseconds of
``amdsmi_get_gpu_process_list``). A span in which no process was busy (the GPU idled) is split as the last
busy span was, since the idle draw of a GPU follows whoever holds it; before any process was seen busy it is
kept as *unattributed*. Over any window the figures of every process plus the unattributed part add up to the
device's own energy, which ``window_stats`` reports per process.

A *source* is a callable returning busy weights per pid since its previous call, or raising
``ShareUnavailable`` with the reason it cannot (a MIG slice, a driver without per-process accounting).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from energybench.integrate import counter_delta
from energybench.samplers.base import Domain
from energybench.samplers.cpu_time import live_descendants

LABEL = "estimated (shared GPU: share of utilisation)"
METHOD = "gpu-utilisation-share"
SUFFIX = ":process-share"
ENV = "ENERGYBENCH_GPU_SHARE"
#: How often the set of this process tree's pids is refreshed between window edges (a scan costs ~1 ms).
RESCAN_S = 1.0
MAX_ROWS = 100_000

Source = Callable[[], Mapping[int, float]]


class ShareUnavailable(Exception):
    """The GPU cannot say who used it (the message says why); the share is then left out, with the reason."""


def share_key(key: str) -> str:
    """``gpu:0`` -> ``gpu:0:process-share``."""
    return f"{key}{SUFFIX}"


def enabled(options: Mapping[str, Any]) -> bool:
    """Whether the share was asked for: option ``gpu_share`` or ``$ENERGYBENCH_GPU_SHARE`` (1/true/yes)."""
    value = options.get("gpu_share")
    if value is None:
        value = os.environ.get(ENV, "")
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def this_process_tree() -> set[int]:
    """This process and its live descendants: whose GPU work counts as "ours"."""
    return {os.getpid(), *live_descendants()}


def apportion(energy_j: float, weights: Mapping[int, float]) -> dict[int, float]:
    """``energy_j`` split in proportion to ``weights`` (non-positive weights get nothing); the parts add up to
    ``energy_j`` exactly up to float rounding, because the last part takes the remainder."""
    positive = [(pid, w) for pid, w in weights.items() if w > 0 and math.isfinite(w)]
    total = sum(w for _, w in positive)
    if not positive or total <= 0:
        return {}
    parts: dict[int, float] = {}
    given = 0.0
    for pid, w in positive[:-1]:
        parts[pid] = energy_j * w / total
        given += parts[pid]
    last_pid = positive[-1][0]
    parts[last_pid] = energy_j - given
    return parts


@dataclass
class _Totals:
    """Running joules since the first read: per pid, unattributed, the device's, this process tree's."""

    per_pid: dict[int, float] = field(default_factory=dict)
    unattributed_j: float = 0.0
    device_j: float = 0.0
    mine_j: float = 0.0

    def row(self, t: float) -> ShareRow:
        return ShareRow(t, dict(self.per_pid), self.unattributed_j, self.device_j, self.mine_j)


@dataclass(frozen=True)
class ShareRow:
    """Cumulative figures after one read: joules per pid, unattributed joules, the device's joules."""

    t: float
    per_pid: dict[int, float]
    unattributed_j: float
    device_j: float
    mine_j: float


class GpuShare:
    """The running split of one GPU's energy among processes (see the module docstring).

    ``advance`` takes the device's cumulative joules (counter samplers) and returns this process tree's
    cumulative joules; ``power`` takes the device's watts (polled samplers) and returns this tree's watts.
    Either way every read is a row, so ``window_stats`` can report any window's split.
    """

    def __init__(
        self,
        key: str,
        source: Source,
        *,
        mine: Callable[[], Iterable[int]] = this_process_tree,
        max_value: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        note: str = "",
    ) -> None:
        self.key = key
        self.key_out = share_key(key)  # the domain this share is reported as
        self._source, self._mine_fn, self._clock = source, mine, clock
        self._max_value = max_value
        #: The most the device can draw (the sampler sets its own bound): a step implying more is a counter
        #: fault (a misread wrap, a glitch) the meter rejects too, so it is not split either.
        self.max_power_w: float | None = None
        self._tree: tuple[float, set[int]] = (-math.inf, set())  # (when scanned, this process tree's pids)
        self._last: tuple[float, float] | None = None  # (t, device joules or watts) at the previous read
        self._weights: dict[int, float] = {}  # the last busy span's weights
        self._totals = _Totals()
        self._rows: deque[ShareRow] = deque(maxlen=MAX_ROWS)
        self._notes: list[str] = []
        self.unavailable: str | None = None
        self._details = {"label": LABEL, "scope": "process", "of_domain": key,
                         "basis": f"{key}'s energy split by each process's share of its utilisation over each read",
                         **({"note": note} if note else {})}

    # -- figures -----------------------------------------------------------------------------------------
    def domain(self) -> Domain:
        """The uncounted, estimated domain that carries this process tree's share."""
        return Domain(key=self.key_out, source="estimated", method=METHOD, counted=False, details=dict(self._details))

    def rescan(self) -> None:
        """Find this process tree afresh (the sampler's edge hook calls it, so edges see new workers)."""
        self._tree = (self._clock(), set(self._mine_fn()))

    @property
    def _mine(self) -> set[int]:
        return self._tree[1]

    def advance(self, device_j: float) -> float:
        """This process tree's cumulative joules after a read of the device's cumulative ``device_j``."""
        now = self._clock()
        if self._last is None:
            self._start(now)
        elif math.isfinite(device_j):
            step = counter_delta(self._last[1], device_j, self._max_value)
            self._split(0.0 if step.resets or not self._plausible(step.joules, now) else step.joules, now)
        if math.isfinite(device_j):
            self._last = (now, device_j)
        return self._totals.mine_j if self.unavailable is None else math.nan

    def power(self, watts: float) -> float:
        """This process tree's watts for a read of the device's ``watts`` (trapezoid energy since the last)."""
        now = self._clock()
        if self._last is None:
            self._start(now)
        elif math.isfinite(watts):
            t0, w0 = self._last
            self._split(max(now - t0, 0.0) * (w0 + watts) / 2, now)
        if math.isfinite(watts):
            self._last = (now, watts)
        if self.unavailable is not None:
            return math.nan
        total = sum(self._weights.values())
        mine = sum(w for pid, w in self._weights.items() if pid in self._mine)
        return watts * mine / total if total > 0 else 0.0

    def _plausible(self, joules: float, now: float) -> bool:
        """Whether a step's energy could have been drawn since the last read (one second of slack)."""
        assert self._last is not None
        return self.max_power_w is None or joules <= self.max_power_w * (max(now - self._last[0], 0.0) + 1.0)

    def _start(self, now: float) -> None:
        """The first read: the source counts from here (what it saw before is no span's), and a zero row
        opens the history so a window that starts at this read has its first edge."""
        self.rescan()
        self._busy()
        self._rows.append(self._totals.row(now))

    def _split(self, energy_j: float, now: float) -> None:
        if now - self._tree[0] > RESCAN_S:
            self.rescan()
        busy = self._busy()
        if busy and sum(busy.values()) > 0:
            self._weights = dict(busy)
        parts = apportion(energy_j, self._weights)
        totals = self._totals
        if not parts:
            totals.unattributed_j += energy_j
        for pid, joules in parts.items():
            totals.per_pid[pid] = totals.per_pid.get(pid, 0.0) + joules
            if pid in self._mine:
                totals.mine_j += joules
        totals.device_j += energy_j
        self._rows.append(totals.row(now))

    def _busy(self) -> dict[int, float]:
        if self.unavailable is not None:
            return {}
        try:
            return {int(pid): float(w) for pid, w in self._source().items()}
        except ShareUnavailable as exc:
            self.unavailable = str(exc)
            self._notes.append(f"{share_key(self.key)}: n/a from now on: {exc}")
            return {}

    # -- reporting ---------------------------------------------------------------------------------------
    def take_warnings(self) -> list[str]:
        fresh, self._notes = self._notes, []
        return fresh

    def window_stats(self, start: float, end: float) -> dict[str, Any] | None:
        """Each process's joules and share of the device's energy between the first and last reads in
        ``[start, end]``; the processes' joules plus ``unattributed_j`` equal ``device_j``."""
        rows = [r for r in self._rows if start <= r.t <= end]
        if len(rows) < 2:
            return None
        first, last = rows[0], rows[-1]
        device = last.device_j - first.device_j
        processes = {}
        for pid, joules in last.per_pid.items():
            delta = joules - first.per_pid.get(pid, 0.0)
            if delta > 0:
                processes[pid] = {"energy_j": delta, "share": delta / device if device > 0 else math.nan,
                                  "this_process_tree": pid in self._mine}
        return {
            "label": LABEL,
            "device_j": device,
            "this_process_tree_j": last.mine_j - first.mine_j,
            "unattributed_j": last.unattributed_j - first.unattributed_j,
            "processes": processes,
            "unavailable": self.unavailable,
        }
