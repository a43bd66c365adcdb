"""A benchmark: one workload of one subject under one method, with its rounds and derived summaries."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from energybench import stats
from energybench.record.layers import LayerProfile
from energybench.record.parse import _extra, _Field, _required_list
from energybench.record.parts import BASELINE, FIGURES, OneOff, Quality, Round, Size

#: A cell's status. ``ok``: measured as planned. ``failed``: plugin code raised (``status_reason`` holds the error's
#: first line); the rounds finished before that are kept. ``not-applicable``: the method does not apply to this
#: workload (int8 has no backward pass); no rounds. Written only when not ``ok``, so older readers see nothing new.
STATUSES = ("ok", "failed", "not-applicable")
#: Why a row of a sequential run stopped (``verdicts.sequential``): decided for a claim, futile (no claim was
#: reachable), at the design's last look, (a baseline) because every row judged against it had stopped, or (an
#: adaptive A/B session, ``verdicts.adaptive``) because the session's budget made this look its last.
STOP_REASONS = ("claim", "futile", "last look", "rows decided", "budget")


@dataclass(frozen=True)
class Stopped:
    """Where a row of a sequential run stopped: after how many trials, and why (one of ``STOP_REASONS``)."""

    after: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"after": self.after, "reason": self.reason}

    @classmethod
    def parse(cls, f: _Field) -> Stopped | None:
        if f.opt_obj() is None:
            return None
        reason = f.child("reason").text()
        if reason not in STOP_REASONS:
            raise f.child("reason").fail(f"expected one of {', '.join(STOP_REASONS)}, got {reason!r}")
        return cls(int(f.child("after").number(minimum=1)), reason)


@dataclass(frozen=True)
class Benchmark:
    """One workload of one subject under one method, with all its rounds.

    ``name`` identifies the workload (``lm/inference-generate``, or a pytest node id); ``method`` is the
    full compression spec (``prune-l1-0.5``) or ``baseline``; ``method_name`` is the registered technique
    (``prune-l1``); ``family`` is the model family (``lm``) and ``workload`` the workload alone. A benchmark
    is matched across runs by ``key`` (name plus method, plus the device when it is not the CPU).
    ``device`` is where the model ran (``cpu``, ``cuda``; ``None`` in files from before devices were
    recorded, which ran on the CPU unless their settings say otherwise); ``layers`` is the per-layer
    attribution of a separate profiled pass (``energybench.measuring.layers``), when one was made.
    """

    name: str
    method: str = BASELINE
    method_name: str = BASELINE
    family: str | None = None
    workload: str | None = None
    phase: str = "other"
    item_unit: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    quality: Quality | None = None
    size: Size | None = None
    rounds: tuple[Round, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    one_off: OneOff | None = None
    status: str = "ok"  # one of STATUSES: a failing plugin cell is recorded, not allowed to abort the run
    status_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # the file's free-form "extra" object
    device: str | None = None
    layers: LayerProfile | None = None
    stopped: Stopped | None = None  # a sequential run's row: where it stopped and why
    unknown: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as they are

    @property
    def is_baseline(self) -> bool:
        return self.method == BASELINE

    @property
    def key(self) -> str:
        """How a benchmark is matched across runs: its name, plus the method when it is not the baseline, plus
        ``@device`` when it ran somewhere other than the CPU (so CPU keys, and pytest keys, never change)."""
        key = self.name if self.is_baseline else f"{self.name} [{self.method}]"
        return key if self.device in (None, "cpu") else f"{key}@{self.device}"

    @property
    def ok(self) -> bool:
        """Whether the cell ran as planned (not failed, not skipped as not applicable)."""
        return self.status == "ok"

    @property
    def source(self) -> str:
        """``measured`` only when every round was; ``modeled`` (counted events, ``energybench.counted``) when every
        round was; ``estimated`` as soon as one was; ``none`` without rounds."""
        sources = {r.source for r in self.rounds} - {"none"}
        if not sources:
            return "none"
        return sources.pop() if sources in ({"measured"}, {"modeled"}) else "estimated"

    @property
    def has_items(self) -> bool:
        """Whether the rounds count items (energy per item means something beyond energy per call): a round's
        ``items`` are its window's, so a call's share is what says."""
        return any(r.items_per_call != 1 for r in self.rounds) or self.item_unit is not None

    def values(self, figure: str, *, unflagged: bool = False) -> list[float]:
        """The finite per-round values of one of ``FIGURES``, partial rounds left out (``Round.partial``: a total
        that misses a domain, or is a lower bound, is not the trial's energy); ``unflagged`` also leaves out the
        rounds a flag excludes (a saturated machine). Computed once per benchmark and figure (a results file may
        hold hundreds of thousands of rounds)."""
        key = (figure, unflagged)
        cache = self._values
        if key not in cache:
            if figure not in FIGURES:
                raise ValueError(f"unknown figure {figure!r}; one of {', '.join(FIGURES)}")
            out = []
            for r in self.rounds:
                if r.partial or (unflagged and r.excluded):
                    continue
                v = getattr(r, figure)
                if v is not None and math.isfinite(v):
                    out.append(float(v))
            cache[key] = out
        return list(cache[key])

    @cached_property
    def _values(self) -> dict[tuple[str, bool], list[float]]:
        return {}

    @property
    def partial_rounds(self) -> tuple[Round, ...]:
        return tuple(r for r in self.rounds if r.partial)

    @property
    def partial_warning(self) -> str | None:
        """One line on the partial rounds: how many, which trials, why, and that they are left out."""
        partial = self.partial_rounds
        if not partial:
            return None
        reasons = list(dict.fromkeys(r.partial_reason for r in partial if r.partial_reason))
        trials = ", ".join(str(r.index) for r in partial[:8]) + (", ..." if len(partial) > 8 else "")
        return (f"{len(partial)} of {len(self.rounds)} rounds partial (trial {trials}: {'; '.join(reasons[:3])}): "
                "left out of medians, ratios and gates")

    def summary(self, figure: str) -> stats.Summary:
        """Median, CI and spread of one figure, computed once per benchmark."""
        cache = self._summaries
        if figure not in cache:
            cache[figure] = stats.summarize(self.values(figure))
        return cache[figure]

    @cached_property
    def _summaries(self) -> dict[str, stats.Summary]:
        return {}

    @property
    def energy_per_item(self) -> stats.Summary:
        return self.summary("energy_per_item_j")

    @property
    def stability_warning(self) -> str | None:
        """The stability rule on energy per item (per call for pytest rounds that count no items)."""
        return stats.stability_warning(self.values("energy_per_item_j"))

    def stats_dict(self) -> dict[str, dict[str, float]]:
        """Derived summaries as written to the file for other tools (ignored on load)."""
        out = {}
        for fig in FIGURES:
            s = self.summary(fig)
            if s.n:
                out[fig] = s.to_dict()
        return out

    def to_dict(self) -> dict[str, Any]:
        """The benchmark as the run file holds it; built once per (frozen) benchmark, as a run is rewritten after
        every trial and most of its benchmarks have not changed since the last time (do not mutate it)."""
        return self._as_dict

    @cached_property
    def _as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "method": self.method, "method_name": self.method_name, "family": self.family,
            "workload": self.workload, "phase": self.phase, "item_unit": self.item_unit,
            "params": dict(self.params),
            "quality": self.quality.to_dict() if self.quality else None,
            "size": self.size.to_dict() if self.size else None,
            "rounds": [r.to_dict() for r in self.rounds],
            "warnings": list(self.warnings), "notes": list(self.notes),
            "one_off": self.one_off.to_dict() if self.one_off else None,
            "stats": self.stats_dict(), "extra": dict(self.extra),
        }
        if not self.ok:
            d["status"], d["status_reason"] = self.status, self.status_reason
        if self.device is not None:
            d["device"] = self.device
        if self.layers is not None:
            d["layers"] = self.layers.to_dict()
        if self.stopped is not None:
            d["stopped"] = self.stopped.to_dict()
        return {**d, **self.unknown}

    @classmethod
    def parse(cls, f: _Field) -> Benchmark:
        d = f.obj()
        name = f.child("name").text()
        phase = f.child("phase").opt_text() or "other"
        params = f.child("params").opt_obj() or {}
        return cls(
            name=name,
            method=f.child("method").opt_text() or BASELINE,
            method_name=f.child("method_name").opt_text() or f.child("method").opt_text() or BASELINE,
            family=f.child("family").opt_text(),
            workload=f.child("workload").opt_text(),
            phase=phase,
            item_unit=f.child("item_unit").opt_text(),
            params=dict(params),
            quality=Quality.parse(f.child("quality")),
            size=Size.parse(f.child("size")),
            rounds=tuple(Round.parse(r, i) for i, r in enumerate(_required_list(f, "rounds"))),
            warnings=f.child("warnings").texts(),
            notes=f.child("notes").texts(),
            one_off=OneOff.parse(f.child("one_off")),
            status=f.child("status").opt_text() or "ok",
            status_reason=f.child("status_reason").opt_text(),
            extra=f.child("extra").opt_obj() or {},
            device=f.child("device").opt_text(),
            layers=LayerProfile.parse(f.child("layers")),
            stopped=Stopped.parse(f.child("stopped")),
            unknown=_extra(d, _BENCH_KEYS),
        )


_BENCH_KEYS = ("name", "method", "method_name", "family", "workload", "phase", "item_unit", "params", "quality",
               "size", "rounds", "warnings", "notes", "one_off", "stats", "extra", "status", "status_reason",
               "device", "layers", "stopped")
