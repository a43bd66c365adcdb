"""A run: where and how it was measured, its benchmarks, and the file's JSON (the only code that writes or
parses it)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from energybench.errors import ResultsError
from energybench.measurement import JOULES_PER_KWH
from energybench.record import bounds
from energybench.record.benchmark import Benchmark
from energybench.record.environment import Environment
from energybench.record.migrations import MIGRATIONS
from energybench.record.parse import _extra, _Field, _required_list
from energybench.record.parts import CarbonBasis, Idle, Machine, Round
from energybench.record.sci import Embodied, parse_embodied_list
from energybench.record.sci_figures import run_sci

SCHEMA = "energybench/run"
VERSION = 3
_MAX_DEPTH = 64


@dataclass(frozen=True)
class Run:
    """One saved run: where and how it was measured, and its benchmarks.

    ``kind`` says who produced it: ``suite`` (``energybench run``: subjects and methods) or ``pytest`` (the
    ``energy`` fixture: a test suite's functions). ``path`` is where it was loaded from (not serialised).
    ``wall_s`` is how long the run held the machine (idle window, set-up, warm-up and trials), the SCI's time
    reserved; ``None`` in files written before it was recorded.
    """

    name: str
    created: str
    benchmarks: tuple[Benchmark, ...] = ()
    kind: str = "suite"
    run_id: str | None = None
    machine: Machine = field(default_factory=Machine)
    commit: Mapping[str, Any] = field(default_factory=dict)
    environment: Environment = field(default_factory=Environment)
    carbon: CarbonBasis | None = None
    idle: Idle | None = None
    subjects: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = field(default=None, compare=False)
    embodied: tuple[Embodied, ...] = ()  # SCI inputs: the hardware's embodied emissions (``carbon.sci``)
    wall_s: float | None = None

    @property
    def label(self) -> str:
        """How messages name this run: its id once saved, else its name."""
        return self.run_id or self.name

    def by_key(self) -> dict[str, Benchmark]:
        return {b.key: b for b in self.benchmarks}

    def rounds(self) -> Iterator[tuple[Benchmark, Round]]:
        """Every round, each benchmark key once: a key written twice counts once (the later benchmark, as
        ``by_key`` and every comparison read it), so no total counts the same work twice."""
        for b in self.by_key().values():
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
        return grams / (joules / JOULES_PER_KWH) / self.carbon.pue

    def with_benchmarks(self, benchmarks: Sequence[Benchmark]) -> Run:
        return replace(self, benchmarks=tuple(benchmarks))

    def to_dict(self) -> dict[str, Any]:
        """The run as its file holds it; the caller's to change (the benchmarks' cached dicts are copied)."""
        d = self._shared_dict()
        d["benchmarks"] = [_copied(b) for b in d["benchmarks"]]
        return d

    def _shared_dict(self) -> dict[str, Any]:
        """``to_dict`` without copying the benchmarks' dicts, which are cached and shared: for writing only
        (a run is rewritten after every trial)."""
        idle, idle_notes = bounds.settled_idle(self.idle)
        d: dict[str, Any] = {
            "schema": SCHEMA, "version": VERSION, "run_id": self.run_id, "name": self.name, "kind": self.kind,
            "created": self.created, "machine": self.machine.to_dict(), "commit": dict(self.commit),
            "environment": self.environment.to_dict(),
            "carbon": self.carbon.to_dict() if self.carbon else None,
            "idle": idle, "subjects": dict(self.subjects), "notes": list(self.notes),
            "warnings": [*self.warnings, *idle_notes],
            "benchmarks": [bounds.settled(b) for b in self.benchmarks],  # a figure beyond the bounds: n/a
        }
        if self.wall_s is not None:
            d["wall_s"] = self.wall_s
        sci = self.sci_dict()
        if sci is not None:
            d["sci"] = sci
        return {**d, **self.extra}

    def sci_dict(self) -> dict[str, Any] | None:
        """SCI inputs and the derived per-benchmark figures (``carbon.sci``; the figures are ignored on load)."""
        report = run_sci(self)
        if report is None and not self.embodied:
            return None
        return {"inputs": {"embodied": [e.to_dict() for e in self.embodied]},
                "results": report.to_dict() if report is not None else None}

    def to_json(self) -> str:
        """The file's text: JSON, one benchmark a line (written after every trial, so it must be quick to make:
        json's C encoder runs only without ``indent``), NaN for figures that could not be measured."""
        d = self._shared_dict()
        benches = d.pop("benchmarks")
        dump = partial(json.dumps, default=_json_default, allow_nan=True, separators=(",", ":"))
        head = dump(d)[:-1]
        lines = ",\n".join(dump(b) for b in benches)
        return head + ("," if d else "") + '"benchmarks":[\n' + lines + "\n]}\n"

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
        except ValueError as exc:  # e.g. an integer literal of more digits than Python converts
            raise ResultsError(f"{where}: corrupt results file ({' '.join(str(exc).split())[:120]}); "
                               "delete or re-run") from None
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
        if version not in MIGRATIONS and version != VERSION:
            raise ResultsError(
                f"{where}: results schema version {version!r} is not supported (this energybench reads versions "
                f"{', '.join(map(str, [*MIGRATIONS, VERSION]))}); upgrade energybench or re-run the benchmarks")
        if _depth(data) > _MAX_DEPTH:
            raise ResultsError(f"{where}: malformed results file: nested deeper than {_MAX_DEPTH} levels")
        while version != VERSION:
            data, version = MIGRATIONS[version](data), version + 1
        f = _Field(data, "", where)
        d = f.obj()
        for key in ("id", "branch"):
            f.child("commit").child(key).opt_text()
        benches = [Benchmark.parse(b) for b in _required_list(f, "benchmarks")]
        idle = Idle.parse(f.child("idle"))
        bounds.check(benches, idle, where)  # what the writer never writes (it n/a's it) is refused
        return cls(
            name=f.child("name").opt_text() or "run",
            created=f.child("created").opt_text() or "",
            benchmarks=tuple(benches),
            kind=f.child("kind").opt_text() or "suite",
            run_id=f.child("run_id").opt_text(),
            machine=Machine.parse(f.child("machine")),
            commit=f.child("commit").opt_obj() or {},
            environment=Environment.parse(f.child("environment")),
            carbon=CarbonBasis.parse(f.child("carbon")),
            idle=idle,
            subjects=f.child("subjects").opt_obj() or {},
            notes=f.child("notes").texts(),
            warnings=f.child("warnings").texts(),
            extra=_extra(d, _RUN_KEYS),
            embodied=parse_embodied_list(f.child("sci").child("inputs").child("embodied")),
            wall_s=f.child("wall_s").opt_number(minimum=0),
        )


_RUN_KEYS = ("schema", "version", "run_id", "name", "kind", "created", "machine", "commit", "environment",
             "carbon", "idle", "subjects", "notes", "warnings", "benchmarks", "_path", "sci", "wall_s")


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


def _copied(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), much quicker than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copied(v) for v in value]
    return value
