"""The parts of a run record: a round's figures, quality, size, one-off costs, the machine, the carbon basis."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from energybench import stats
from energybench.record.parse import _checked_entries, _drop_none, _extra, _Field, _names

if TYPE_CHECKING:
    from energybench.measurement import Measurement

BASELINE = "baseline"
PHASES = ("train", "inference", "other")
#: Per-round figures a benchmark can be summarised, compared or gated on: the window's (``energy_j``...), and
#: per call (``energy_per_call_j``...), which is what comparisons and gates use (a round's call count varies).
FIGURES = (
    "energy_j", "energy_per_item_j", "duration_s", "power_w", "co2e_g", "energy_above_idle_j",
    "energy_above_idle_per_item_j", "throughput_items_per_s", "energy_per_call_j", "duration_per_call_s",
    "co2e_per_call_g",
)  # fmt: skip


@dataclass(frozen=True)
class Round:
    """One measured trial (runner) or round (pytest fixture): the figures of its window, with their provenance.

    ``energy_j``, ``duration_s``, ``co2e_g``, ``domains``, ``energy_above_idle_j`` and ``items`` are always the
    whole window's (since schema 3: one energy per round, so every total is a plain sum); ``iterations`` is the
    calls (pytest) or workload repeats (runner) inside it, ``None`` meaning 1, and the ``*_per_call`` properties
    divide by it. ``energy_j`` is NaN when no sampler could give a figure for the window; ``domains`` holds
    joules per device/domain key.

    ``missing`` names counted domains the window's total lacks (n/a, or their sampler was lost) and
    ``lower_bound`` those whose figure is only a lower bound: such a round is ``partial``, its figures are
    not the trial's energy, and summaries, ratios and gates leave it out (``Benchmark.values``). ``index``
    is the trial, so a paired comparison can drop both sides of a partial trial.
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
    load: Mapping[str, float] = field(default_factory=dict)  # what else the machine did (energybench.measuring.noise)
    flags: tuple[str, ...] = ()  # why this round must not stand in a comparison (saturated machine...)
    extra: Mapping[str, Any] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    lower_bound: tuple[str, ...] = ()
    #: which process of a multi-process A/B session measured it (``energybench ab --processes``); a pair is
    #: the same ``(process, index)`` on both sides, and the process pair is the unit of the test
    process: int | None = None

    @property
    def partial(self) -> bool:
        """The round's total is not the whole trial's energy (see the class docstring)."""
        return bool(self.missing or self.lower_bound)

    @property
    def partial_reason(self) -> str | None:
        """Why the round is partial, in words, or ``None``."""
        parts = []
        if self.missing:
            parts.append(f"no figure for {', '.join(self.missing)}")
        if self.lower_bound:
            parts.append(f"only a lower bound for {', '.join(self.lower_bound)}")
        return "; ".join(parts) or None

    @property
    def excluded(self) -> bool:
        """Whether comparisons and gates leave this round out (its ``flags`` say why)."""
        return bool(self.flags)

    @property
    def calls(self) -> int:
        """Calls (workload repeats) inside the window: ``iterations``, 1 when not recorded."""
        return self.iterations or 1

    @property
    def energy_per_call_j(self) -> float:
        return self.energy_j / self.calls

    @property
    def duration_per_call_s(self) -> float:
        return self.duration_s / self.calls

    @property
    def co2e_per_call_g(self) -> float | None:
        return self.co2e_g / self.calls if self.co2e_g is not None else None

    @property
    def items_per_call(self) -> float:
        return self.items / self.calls

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
        if self.load:
            d["load"] = dict(self.load)
        if self.flags:
            d["flags"] = list(self.flags)
        if self.timeline:
            d["timeline"] = [[t, dict(w)] for t, w in self.timeline]
        if self.missing:
            d["missing"] = list(self.missing)
        if self.lower_bound:
            d["lower_bound"] = list(self.lower_bound)
        if self.process is not None:
            d["process"] = self.process
        return {**d, **self.extra}

    @classmethod
    def from_measurement(cls, m: Measurement, *, index: int, items: float = 1.0, iterations: int = 1,
                         idle_power_w: float | None = None, with_timeline: bool = False,
                         load: Mapping[str, float] | None = None, flags: tuple[str, ...] = (),
                         workload: Mapping[str, float] | None = None) -> Round:
        """The round of one measured window, with every field a round carries: provenance, the domains that
        are missing or only a lower bound, the machine's load and its flags. Figures are the window's, ``items``
        all the items of its ``iterations`` calls."""
        beyond = m.energy_j - idle_power_w * m.duration_s if idle_power_w is not None else None
        above = None if beyond is None else max(0.0, beyond) if math.isfinite(beyond) else math.nan  # n/a: no 0 J
        return cls(
            index=index, energy_j=m.energy_j, duration_s=m.duration_s, items=float(items), co2e_g=m.co2e_g,
            source=m.source, domains=m.energy_by_domain(), iterations=iterations,
            energy_above_idle_j=above, warnings=tuple(m.warnings), workload=dict(workload or {}),
            timeline=tuple((round(t, 4), {d: round(w, 4) for d, w in watts.items()}) for t, watts in m.timeline)
            if with_timeline else (),
            load=dict(load or {}), flags=(*flags, *m.flags), missing=m.missing_domains,
            lower_bound=m.lower_bound_domains,
        )

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
        process = f.child("process").opt_number(minimum=0)
        return cls(
            index=int(number) if number is not None else index,
            energy_j=f.child("energy_j").number(allow_nan=True, minimum=0),
            duration_s=f.child("duration_s").number(minimum=0),
            items=f.child("items").opt_number(above=0) or 1.0,
            co2e_g=f.child("co2e_g").opt_number(allow_nan=True, minimum=0),
            source=f.child("source").opt_text() or "none",
            domains=f.child("domains").numbers(allow_nan=True),
            iterations=int(iterations) if iterations is not None else None,
            energy_above_idle_j=f.child("energy_above_idle_j").opt_number(allow_nan=True, minimum=0),
            timeline=tuple(timeline),
            warnings=f.child("warnings").texts(),
            workload=f.child("workload").numbers(allow_nan=True),
            load=f.child("load").numbers(allow_nan=True),
            flags=f.child("flags").texts(),
            extra=_extra(d, _ROUND_KEYS),
            missing=f.child("missing").texts(),
            lower_bound=f.child("lower_bound").texts(),
            process=int(process) if process is not None else None,
        )


_ROUND_KEYS = ("round", "energy_j", "duration_s", "items", "co2e_g", "source", "domains", "iterations",
               "energy_above_idle_j", "timeline", "warnings", "workload", "load", "flags", "missing", "lower_bound",
               "process")


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
            value=f.child("value").number(allow_nan=True, maximum=None),  # a broken model's perplexity is huge
            higher_is_better=f.child("higher_is_better").boolean(True),
            baseline=f.child("baseline").opt_number(allow_nan=True, maximum=None),
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
    """Energy a method spent once to make its model (distillation training, calibration).

    ``energies`` holds every repeat of that work (measured more than once so the cost has an interval);
    ``energy_j`` is their mean, or the single figure of an older file.
    """

    what: str
    energy_j: float | None
    duration_s: float | None = None
    source: str | None = None
    energies: tuple[float, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def repeats(self) -> int:
        return len(self.energies) or (1 if self.energy_j is not None else 0)

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% t interval of the mean cost (``None`` with fewer than two repeats)."""
        xs = [e for e in self.energies if math.isfinite(e)]
        if len(xs) < 2:
            return None
        from energybench.stats.distributions import t_ppf

        mean, sd = statistics.fmean(xs), statistics.stdev(xs)
        half = t_ppf(0.975, len(xs) - 1) * sd / math.sqrt(len(xs))
        return (max(0.0, mean - half), mean + half)

    @property
    def ci_low(self) -> float | None:
        return self.interval[0] if self.interval else None

    @property
    def ci_high(self) -> float | None:
        return self.interval[1] if self.interval else None

    def to_dict(self) -> dict[str, Any]:
        d = _drop_none({"what": self.what, "energy_j": self.energy_j, "duration_s": self.duration_s,
                        "source": self.source})
        if self.energies:
            d["energies"] = list(self.energies)
        return {**d, **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> OneOff | None:
        d = f.opt_obj()
        if not d:
            return None
        energies = tuple(e.number(allow_nan=True, minimum=0) for e in f.child("energies").items()) \
            if d.get("energies") is not None else ()
        return cls(
            what=f.child("what").opt_text() or "one-off cost",
            energy_j=f.child("energy_j").opt_number(allow_nan=True, minimum=0),
            duration_s=f.child("duration_s").opt_number(minimum=0),
            source=f.child("source").opt_text(),
            energies=energies,
            extra=_extra(d, ("what", "energy_j", "duration_s", "source", "energies")),
        )


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
            gpus=_checked_entries(f.child("gpus"), texts=("name",), numbers=("power_limit_w",)),
            samplers=_checked_entries(f.child("samplers"), texts=("name", "source", "method"),
                                      text_lists=("domains",)),
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
    factor_kind: str = "average"  # or "marginal": which kind of grid factor priced the joules
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_provider(cls, provider: Any) -> CarbonBasis:
        """From an intensity provider's ``describe()``: the one way both writers fill it."""
        basis = cls.parse(_Field(dict(provider.describe()), "carbon", "carbon settings"))
        assert basis is not None  # describe() always returns a mapping
        return basis

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "intensity_g_per_kwh": self.intensity_g_per_kwh, "year": self.year,
                "source": self.source, "pue": self.pue, "method": self.method, "factor_kind": self.factor_kind,
                **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> CarbonBasis | None:
        d = f.opt_obj()
        if d is None:
            return None
        year = f.child("year").opt_number(minimum=1, maximum=9999)
        return cls(
            region=f.child("region").opt_text() or "custom",
            intensity_g_per_kwh=f.child("intensity_g_per_kwh").number(minimum=0),
            source=f.child("source").opt_text() or "unknown",
            pue=f.child("pue").opt_number(minimum=1) or 1.0,
            year=int(year) if year is not None else None,
            method=f.child("method").opt_text() or "fixed",
            factor_kind=_factor_kind(f.child("factor_kind")),
            extra=_extra(d, ("region", "intensity_g_per_kwh", "source", "pue", "year", "method", "factor_kind")),
        )


FACTOR_KINDS = ("average", "marginal")


def _factor_kind(f: _Field) -> str:
    """Files written before factor kinds were recorded priced with codecarbon's annual averages."""
    kind = f.opt_text() or "average"
    if kind not in FACTOR_KINDS:
        raise f.fail(f"must be one of {', '.join(FACTOR_KINDS)}, got {kind!r}")
    return kind


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
