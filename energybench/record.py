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

import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any, TypeVar

from energybench import stats
from energybench.errors import ResultsError

SCHEMA = "energybench/run"
VERSION = 2
BASELINE = "baseline"
PHASES = ("train", "inference", "other")
#: Per-round figures a benchmark can be summarised, compared or gated on.
FIGURES = (
    "energy_j", "energy_per_item_j", "duration_s", "power_w", "co2e_g", "energy_above_idle_j",
    "energy_above_idle_per_item_j", "throughput_items_per_s",
)  # fmt: skip
_MAX_DEPTH = 64

T = TypeVar("T")


# ------------------------------------------------------------------------------------------------ parsing
class _Field:
    """A cursor into the JSON being parsed: every type error names its path (``benchmarks[2].rounds[0]``)."""

    def __init__(self, value: Any, path: str, where: str) -> None:
        self.value = value
        self.path = path
        self.where = where

    def fail(self, problem: str) -> ResultsError:
        return ResultsError(f"{self.where}: malformed results file: {self.path}: {problem}")

    def child(self, key: str | int) -> _Field:
        if isinstance(key, int):
            return _Field(self.value[key], f"{self.path}[{key}]", self.where)
        value = self.value.get(key) if isinstance(self.value, dict) else None
        return _Field(value, f"{self.path}.{key}" if self.path else key, self.where)

    def obj(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.fail(f"expected an object, got {_kind(self.value)}")
        return self.value

    def opt_obj(self) -> dict[str, Any] | None:
        return None if self.value is None else self.obj()

    def items(self) -> Iterator[_Field]:
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {_kind(self.value)}")
        return (self.child(i) for i in range(len(self.value)))

    def number(self, *, allow_nan: bool = False, minimum: float | None = None) -> float:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(f"expected a number, got {_kind(v)}")
        v = float(v)
        if math.isnan(v):
            if allow_nan:
                return v
            raise self.fail("is NaN")
        if math.isinf(v):
            raise self.fail("is infinite")
        if minimum is not None and v < minimum:
            raise self.fail(f"must be >= {minimum:g}, got {v:g}")
        return v

    def opt_number(self, **kw: Any) -> float | None:
        return None if self.value is None else self.number(**kw)

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail(f"expected a string, got {_kind(self.value)}")
        return self.value

    def opt_text(self) -> str | None:
        return None if self.value is None else self.text()

    def texts(self) -> tuple[str, ...]:
        if self.value is None:
            return ()
        return tuple(str(f.text()) for f in self.items())

    def numbers(self, **kw: Any) -> dict[str, float]:
        """An object of ``key -> number`` (domains, watts)."""
        if self.value is None:
            return {}
        return {str(k): self.child(k).number(**kw) for k in self.obj()}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


def _extra(d: Mapping[str, Any], known: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in known}


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# ------------------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class Round:
    """One measured trial (runner) or round (pytest fixture): figures per call, with their provenance.

    ``energy_j`` is NaN when no sampler could give a figure for the window; ``domains`` holds joules per
    device/domain key. The pytest fixture stores per-call figures (window / ``iterations``).
    """

    index: int
    energy_j: float
    duration_s: float
    items: float = 1.0
    co2e_g: float | None = None
    source: str = "none"
    domains: Mapping[str, float] = field(default_factory=dict)
    iterations: int | None = None
    energy_above_idle_j: float | None = None
    timeline: tuple[tuple[float, Mapping[str, float]], ...] = ()
    warnings: tuple[str, ...] = ()
    workload: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def energy_per_item_j(self) -> float:
        return stats.per_item(self.energy_j, self.items)

    @property
    def power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else math.nan

    @property
    def energy_above_idle_per_item_j(self) -> float | None:
        if self.energy_above_idle_j is None:
            return None
        return stats.per_item(self.energy_above_idle_j, self.items)

    @property
    def throughput_items_per_s(self) -> float:
        return self.items / self.duration_s if self.duration_s > 0 else math.nan

    def value(self, figure: str) -> float | None:
        """One of ``FIGURES`` for this round (``None`` when the round has no such figure)."""
        if figure not in FIGURES:
            raise ValueError(f"unknown figure {figure!r}; one of {', '.join(FIGURES)}")
        return getattr(self, figure)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "round": self.index, "energy_j": self.energy_j, "duration_s": self.duration_s, "items": self.items,
            "co2e_g": self.co2e_g, "source": self.source, "domains": dict(self.domains),
        }
        if self.iterations is not None:
            d["iterations"] = self.iterations
        if self.energy_above_idle_j is not None:
            d["energy_above_idle_j"] = self.energy_above_idle_j
        if self.workload:
            d["workload"] = dict(self.workload)
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.timeline:
            d["timeline"] = [[t, dict(w)] for t, w in self.timeline]
        return {**d, **self.extra}

    @classmethod
    def parse(cls, f: _Field, index: int) -> Round:
        d = f.obj()
        iterations = f.child("iterations").opt_number(minimum=1)
        timeline = []
        if d.get("timeline") is not None:
            for point in f.child("timeline").items():
                if not isinstance(point.value, list) or len(point.value) != 2:
                    raise point.fail("expected [seconds, {domain: watts}]")
                timeline.append((point.child(0).number(), point.child(1).numbers(allow_nan=True)))
        number = f.child("round").opt_number(minimum=0)
        return cls(
            index=int(number) if number is not None else index,
            energy_j=f.child("energy_j").number(allow_nan=True, minimum=0),
            duration_s=f.child("duration_s").number(minimum=0),
            items=f.child("items").opt_number(minimum=0) or 1.0,
            co2e_g=f.child("co2e_g").opt_number(allow_nan=True, minimum=0),
            source=f.child("source").opt_text() or "none",
            domains=f.child("domains").numbers(allow_nan=True),
            iterations=int(iterations) if iterations is not None else None,
            energy_above_idle_j=f.child("energy_above_idle_j").opt_number(allow_nan=True, minimum=0),
            timeline=tuple(timeline),
            warnings=f.child("warnings").texts(),
            workload=f.child("workload").numbers(allow_nan=True),
            extra=_extra(d, _ROUND_KEYS),
        )


_ROUND_KEYS = ("round", "energy_j", "duration_s", "items", "co2e_g", "source", "domains", "iterations",
               "energy_above_idle_j", "timeline", "warnings", "workload")


@dataclass(frozen=True)
class Quality:
    """A quality figure measured next to the energy (perplexity, cosine similarity, accuracy)."""

    metric: str
    value: float
    higher_is_better: bool = True
    baseline: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def change(self) -> float | None:
        """Relative change against the baseline's figure (0.05 = 5% higher), ``None`` without one."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline - 1.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"metric": self.metric, "value": self.value, "higher_is_better": self.higher_is_better}
        if self.baseline is not None:
            d["baseline"] = self.baseline
            d["change"] = self.change
        return {**d, **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> Quality | None:
        d = f.opt_obj()
        if d is None or d.get("value") is None:
            return None
        return cls(
            metric=f.child("metric").opt_text() or "quality",
            value=f.child("value").number(allow_nan=True),
            higher_is_better=bool(d.get("higher_is_better", True)),
            baseline=f.child("baseline").opt_number(allow_nan=True),
            extra=_extra(d, ("metric", "value", "higher_is_better", "baseline", "change")),
        )


@dataclass(frozen=True)
class Size:
    """How big the benchmarked model is: parameters, non-zero parameters, serialized bytes."""

    params: int
    nonzero_params: int
    bytes: int

    @property
    def nonzero_fraction(self) -> float:
        return self.nonzero_params / self.params if self.params else 1.0

    def to_dict(self) -> dict[str, int]:
        return {"params": self.params, "nonzero_params": self.nonzero_params, "bytes": self.bytes}

    @classmethod
    def parse(cls, f: _Field) -> Size | None:
        d = f.opt_obj()
        if not d:
            return None
        return cls(*(int(f.child(k).number(minimum=0)) for k in ("params", "nonzero_params", "bytes")))


@dataclass(frozen=True)
class OneOff:
    """Energy a method spent once to make its model (distillation training, calibration)."""

    what: str
    energy_j: float | None
    duration_s: float | None = None
    source: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**_drop_none({"what": self.what, "energy_j": self.energy_j, "duration_s": self.duration_s,
                              "source": self.source}), **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> OneOff | None:
        d = f.opt_obj()
        if not d:
            return None
        return cls(
            what=f.child("what").opt_text() or "one-off cost",
            energy_j=f.child("energy_j").opt_number(allow_nan=True, minimum=0),
            duration_s=f.child("duration_s").opt_number(minimum=0),
            source=f.child("source").opt_text(),
            extra=_extra(d, ("what", "energy_j", "duration_s", "source")),
        )


@dataclass(frozen=True)
class Benchmark:
    """One workload of one subject under one method, with all its rounds.

    ``name`` identifies the workload (``lm/inference-generate``, or a pytest node id); ``method`` is the
    full compression spec (``prune-l1-0.5``) or ``baseline``; ``method_name`` is the registered technique
    (``prune-l1``); ``family`` is the model family (``lm``) and ``workload`` the workload alone. A benchmark
    is matched across runs by ``key`` (name plus method).
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
    extra: Mapping[str, Any] = field(default_factory=dict)  # the file's free-form "extra" object
    unknown: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as they are

    @property
    def is_baseline(self) -> bool:
        return self.method == BASELINE

    @property
    def key(self) -> str:
        """How a benchmark is matched across runs: its name, plus the method when it is not the baseline."""
        return self.name if self.is_baseline else f"{self.name} [{self.method}]"

    @property
    def source(self) -> str:
        """``measured`` only when every round was; ``estimated`` as soon as one was; ``none`` without rounds."""
        sources = {r.source for r in self.rounds} - {"none"}
        if not sources:
            return "none"
        return "measured" if sources == {"measured"} else "estimated"

    @property
    def has_items(self) -> bool:
        """Whether the rounds count items (energy per item means something beyond energy per call)."""
        return any(r.items != 1 for r in self.rounds) or self.item_unit is not None

    def values(self, figure: str) -> list[float]:
        """The finite per-round values of one of ``FIGURES``."""
        out = []
        for r in self.rounds:
            v = r.value(figure)
            if v is not None and math.isfinite(v):
                out.append(float(v))
        return out

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
        """The stability rule on energy per item (per call for pytest rounds, where items are constant)."""
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
            extra=f.child("extra").opt_obj() or {},
            unknown=_extra(d, _BENCH_KEYS),
        )


_BENCH_KEYS = ("name", "method", "method_name", "family", "workload", "phase", "item_unit", "params", "quality",
               "size", "rounds", "warnings", "notes", "one_off", "stats", "extra")


def _required_list(f: _Field, key: str) -> list[_Field]:
    child = f.child(key)
    if child.value is None:
        raise child.fail("missing (a list is required)")
    return list(child.items())


@dataclass(frozen=True)
class Machine:
    """The hardware and software a run measured on; energy only means something next to it."""

    hostname: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    memory_gb: float | None = None
    gpus: tuple[Mapping[str, Any], ...] = ()
    samplers: tuple[Mapping[str, Any], ...] = ()
    python: str | None = None
    platform: str | None = None
    torch: str | None = None
    torch_threads: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "hostname": self.hostname, "cpu_model": self.cpu_model, "cpu_count": self.cpu_count,
            "memory_gb": self.memory_gb, "gpus": [dict(g) for g in self.gpus],
            "samplers": [dict(s) for s in self.samplers], "python": self.python, "platform": self.platform,
            "torch": self.torch, "torch_threads": self.torch_threads,
        }
        return {**d, **self.extra}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Machine:
        """From ``machine.machine_info()`` (or a loaded file): unknown keys are kept in ``extra``."""
        return cls.parse(_Field(dict(d), "machine", "machine"))

    @classmethod
    def parse(cls, f: _Field) -> Machine:
        d = f.opt_obj() or {}
        count = f.child("cpu_count").opt_number(minimum=0)
        threads = f.child("torch_threads").opt_number(minimum=0)
        return cls(
            hostname=f.child("hostname").opt_text(), cpu_model=f.child("cpu_model").opt_text(),
            cpu_count=int(count) if count is not None else None,
            memory_gb=f.child("memory_gb").opt_number(minimum=0),
            gpus=tuple(g.obj() for g in (f.child("gpus").items() if d.get("gpus") is not None else ())),
            samplers=tuple(s.obj() for s in (f.child("samplers").items() if d.get("samplers") is not None else ())),
            python=f.child("python").opt_text(), platform=f.child("platform").opt_text(),
            torch=f.child("torch").opt_text(), torch_threads=int(threads) if threads is not None else None,
            extra=_extra(d, _names(cls)),
        )


@dataclass(frozen=True)
class CarbonBasis:
    """How the run's joules were priced: the grid factor, where it came from, and the PUE.

    For a time series ``intensity_g_per_kwh`` is the series' time-weighted mean (each round's grams are
    exact); ``Run.effective_intensity_g_per_kwh`` gives the energy-weighted factor the rounds really used.
    """

    region: str
    intensity_g_per_kwh: float
    source: str
    pue: float = 1.0
    year: int | None = None
    method: str = "fixed"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_provider(cls, provider: Any) -> CarbonBasis:
        """From an intensity provider's ``describe()``: the one way both writers fill it."""
        basis = cls.parse(_Field(dict(provider.describe()), "carbon", "carbon settings"))
        assert basis is not None  # describe() always returns a mapping
        return basis

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "intensity_g_per_kwh": self.intensity_g_per_kwh, "year": self.year,
                "source": self.source, "pue": self.pue, "method": self.method, **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> CarbonBasis | None:
        d = f.opt_obj()
        if d is None:
            return None
        year = f.child("year").opt_number()
        return cls(
            region=f.child("region").opt_text() or "custom",
            intensity_g_per_kwh=f.child("intensity_g_per_kwh").number(minimum=0),
            source=f.child("source").opt_text() or "unknown",
            pue=f.child("pue").opt_number(minimum=1) or 1.0,
            year=int(year) if year is not None else None,
            method=f.child("method").opt_text() or "fixed",
            extra=_extra(d, ("region", "intensity_g_per_kwh", "source", "pue", "year", "method")),
        )


@dataclass(frozen=True)
class Idle:
    """The machine's idle power, measured before the trials, for the labelled 'above idle' figure."""

    power_w: float
    duration_s: float
    energy_j: float | None = None
    source: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"power_w": self.power_w, "duration_s": self.duration_s, "energy_j": self.energy_j,
                           "source": self.source})

    @classmethod
    def parse(cls, f: _Field) -> Idle | None:
        if f.opt_obj() is None:
            return None
        return cls(power_w=f.child("power_w").number(allow_nan=True, minimum=0),
                   duration_s=f.child("duration_s").number(minimum=0),
                   energy_j=f.child("energy_j").opt_number(allow_nan=True, minimum=0),
                   source=f.child("source").opt_text() or "none")


@dataclass(frozen=True)
class Run:
    """One saved run: where and how it was measured, and its benchmarks.

    ``kind`` says who produced it: ``suite`` (``energybench run``: subjects and methods) or ``pytest`` (the
    ``energy`` fixture: a test suite's functions). ``path`` is where it was loaded from (not serialised).
    """

    name: str
    created: str
    benchmarks: tuple[Benchmark, ...] = ()
    kind: str = "suite"
    run_id: str | None = None
    machine: Machine = field(default_factory=Machine)
    commit: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    carbon: CarbonBasis | None = None
    idle: Idle | None = None
    subjects: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """How messages name this run: its id once saved, else its name."""
        return self.run_id or self.name

    def by_key(self) -> dict[str, Benchmark]:
        return {b.key: b for b in self.benchmarks}

    def rounds(self) -> Iterator[tuple[Benchmark, Round]]:
        for b in self.benchmarks:
            for r in b.rounds:
                yield b, r

    @property
    def energy_j(self) -> float:
        """Joules of every measured round (NaN rounds left out)."""
        return math.fsum(r.energy_j for _, r in self.rounds() if math.isfinite(r.energy_j))

    @property
    def co2e_g(self) -> float | None:
        grams = [r.co2e_g for _, r in self.rounds() if r.co2e_g is not None and math.isfinite(r.co2e_g)]
        return math.fsum(grams) if grams else None

    @property
    def effective_intensity_g_per_kwh(self) -> float | None:
        """The energy-weighted factor the rounds were priced at (grams / kWh / PUE); for a fixed factor it is
        that factor, for a time series the mean over when the work really ran."""
        if self.carbon is None:
            return None
        grams, joules = self.co2e_g, self.energy_j
        if grams is None or joules <= 0:
            return self.carbon.intensity_g_per_kwh
        return grams / (joules / 3.6e6) / self.carbon.pue

    def with_benchmarks(self, benchmarks: Sequence[Benchmark]) -> Run:
        return replace(self, benchmarks=tuple(benchmarks))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema": SCHEMA, "version": VERSION, "run_id": self.run_id, "name": self.name, "kind": self.kind,
            "created": self.created, "machine": self.machine.to_dict(), "commit": dict(self.commit),
            "environment": dict(self.environment),
            "carbon": self.carbon.to_dict() if self.carbon else None,
            "idle": self.idle.to_dict() if self.idle else None,
            "subjects": dict(self.subjects), "notes": list(self.notes), "warnings": list(self.warnings),
            "benchmarks": [b.to_dict() for b in self.benchmarks],
        }
        return {**d, **self.extra}

    def to_json(self) -> str:
        """The file's text: indented JSON, NaN for figures that could not be measured."""
        return json.dumps(self.to_dict(), indent=1, default=_json_default, allow_nan=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "results") -> Run:
        """Parse a results file's text; any problem is one ``ResultsError`` line naming the field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ResultsError(
                f"{where}: corrupt results file (invalid JSON at line {exc.lineno} column {exc.colno}); "
                "delete or re-run"
            ) from None
        except RecursionError:
            raise ResultsError(f"{where}: malformed results file: nested too deeply to be a run") from None
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "results") -> Run:
        """A run from parsed JSON of any supported schema version (older versions are migrated)."""
        if not isinstance(data, dict):
            raise ResultsError(f"{where}: not an energybench results file (top level is not an object)")
        if data.get("schema") != SCHEMA:
            raise ResultsError(
                f"{where}: not an energybench results file (schema {data.get('schema')!r}, expected {SCHEMA!r})")
        version = data.get("version")
        if version not in _MIGRATIONS and version != VERSION:
            raise ResultsError(
                f"{where}: results schema version {version!r} is not supported (this energybench reads versions "
                f"{', '.join(map(str, [*_MIGRATIONS, VERSION]))}); upgrade energybench or re-run the benchmarks")
        if _depth(data) > _MAX_DEPTH:
            raise ResultsError(f"{where}: malformed results file: nested deeper than {_MAX_DEPTH} levels")
        while version != VERSION:
            data, version = _MIGRATIONS[version](data), version + 1
        f = _Field(data, "", where)
        d = f.obj()
        benches = [Benchmark.parse(b) for b in _required_list(f, "benchmarks")]
        return cls(
            name=f.child("name").opt_text() or "run",
            created=f.child("created").opt_text() or "",
            benchmarks=tuple(benches),
            kind=f.child("kind").opt_text() or "suite",
            run_id=f.child("run_id").opt_text(),
            machine=Machine.parse(f.child("machine")),
            commit=f.child("commit").opt_obj() or {},
            environment=f.child("environment").opt_obj() or {},
            carbon=CarbonBasis.parse(f.child("carbon")),
            idle=Idle.parse(f.child("idle")),
            subjects=f.child("subjects").opt_obj() or {},
            notes=f.child("notes").texts(),
            warnings=f.child("warnings").texts(),
            extra=_extra(d, _RUN_KEYS),
        )


_RUN_KEYS = ("schema", "version", "run_id", "name", "kind", "created", "machine", "commit", "environment",
             "carbon", "idle", "subjects", "notes", "warnings", "benchmarks", "_path")


def _depth(value: Any, limit: int = _MAX_DEPTH + 1) -> int:
    """Nesting depth of parsed JSON, without recursion (a crafted file must not crash the reader)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, level + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, level + 1) for x in v)
    return deepest


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths turn up in params/extra; anything else (a user's object in extra_info) is kept as
    # its repr: losing a run's figures to one unserialisable value would be far worse than a string
    if hasattr(obj, "item"):
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set | frozenset | tuple):
        return sorted(obj, key=repr) if not isinstance(obj, tuple) else list(obj)
    return repr(obj)


# ------------------------------------------------------------------------------------------------ migrations
def _split_name(name: str) -> tuple[str | None, str]:
    """``lm/inference-generate`` -> (``lm``, ``inference-generate``); a pytest node id splits at ``::``."""
    if "::" in name:
        family, _, workload = name.partition("::")
        return family, workload
    if "/" in name:
        family, _, workload = name.partition("/")
        return family, workload
    return None, name


def _technique(spec: str) -> str:
    """The registered method a v1 spec came from (``int8-dynamic-perchannel`` -> ``int8-dynamic``)."""
    if spec == BASELINE:
        return BASELINE
    from energybench.subjects.api import BUILTIN_METHODS  # a table of names; imports nothing heavy

    for name in sorted(BUILTIN_METHODS, key=len, reverse=True):
        if spec == name or spec.startswith(name + "-"):
            return name
    return spec


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (before the typed record): ``subject`` held the method spec, ``method`` its first word;
    ``extra`` held notes, one-off costs and the runner's verdicts (now derived, so dropped)."""
    out = dict(data)
    launcher = ((data.get("environment") or {}).get("launcher") or {}) if isinstance(data.get("environment"),
                                                                                       dict) else {}
    out["kind"] = "pytest" if isinstance(launcher, dict) and launcher.get("tool") == "pytest" else "suite"
    benches = []
    listed = data.get("benchmarks")
    for b in listed if isinstance(listed, list) else []:
        if not isinstance(b, dict):
            benches.append(b)
            continue
        nb = dict(b)
        subject = b.get("subject")
        spec = subject if isinstance(subject, str) and subject and subject != BASELINE else BASELINE
        nb["method"] = spec
        nb["method_name"] = _technique(spec)
        if isinstance(b.get("name"), str):
            nb["family"], nb["workload"] = _split_name(b["name"])
        extra = dict(b.get("extra") or {}) if isinstance(b.get("extra"), dict) else {}
        nb["notes"] = extra.pop("notes", [])
        nb["one_off"] = extra.pop("one_off", None)
        if nb["one_off"] is not None and "energy_j" not in nb["one_off"]:
            nb["one_off"] = None  # a method that measured nothing once (no meter) had no cost to report
        for derived in ("vs_baseline", "break_even_items"):
            extra.pop(derived, None)
        nb.pop("subject", None)
        nb["extra"] = extra
        benches.append(nb)
    out["benchmarks"] = benches
    out["version"] = 2
    return out


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _migrate_1_to_2}
