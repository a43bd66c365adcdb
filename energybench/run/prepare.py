"""The grid a run measures: each subject's baseline, each method applied to it, their quality and workloads,
as one ``state.Cell`` per (device, subject, method, workload).

All bad input (unknown subject or method, bad knob values) is resolved by ``resolve`` before the first joule
is spent. Plugin code runs behind ``state.plugin_call``: a method that does not apply, or plugin code that
raises, becomes a cell with that status, and the other cells go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from energybench.errors import ConfigError
from energybench.record import BASELINE, Benchmark, OneOff, Quality, Size
from energybench.run.config import RunConfig
from energybench.run.devices import torch_device
from energybench.run.state import Cell, RunState, plugin_call, subject_failed, unrun_cells
from energybench.run.suites import Suite
from energybench.subjects.api import (
    CompressionMethod,
    Context,
    Model,
    NotApplicable,
    PluginError,
    Subject,
    Workload,
    get_subject,
    methods,
    model_size,
    resolve_method,
    subjects,
)

__all__ = ["SubjectPlan", "prepare", "resolve"]

Resolved = list[tuple[str, CompressionMethod, dict[str, Any]]]


@dataclass(frozen=True)
class SubjectPlan:
    """One subject's row of the plan on one device: its suite and the methods resolved from it."""

    device: str
    subject: Subject
    suite: Suite
    methods: Resolved


def resolve(suites: Sequence[Suite], devices: Sequence[str], quick: bool = False) -> list[SubjectPlan]:
    """Every subject and method spec resolved (a typo is a ``ConfigError`` now, before anything runs);
    ``quick`` leaves out each suite's ``skip_quick``."""
    known_subjects, known_methods = subjects(), methods()
    plan = []
    for suite in suites:
        subject = get_subject(suite.subject, known_subjects)
        specs = list(suite.methods) if suite.methods is not None else list(subject.default_methods)
        specs = [s for s in specs if not (quick and s in suite.skip_quick)]
        resolved = [(spec, *resolve_method(spec, known_methods)) for spec in specs]
        plan.append((subject, suite, resolved))
    return [SubjectPlan(device, subject, suite, resolved) for device in devices for subject, suite, resolved in plan]


@dataclass
class _Subject:
    """What one subject on one device produced: its models (``None`` where a method produced none, with why)."""

    cell: SubjectPlan
    where: str
    ctx: Context
    models: list[tuple[Model | None, str, str]] = field(default_factory=list)
    not_run: dict[str, tuple[str, str]] = field(default_factory=dict)  # spec -> (status, reason)


def prepare(plan: Sequence[SubjectPlan], meter: Any, cfg: RunConfig, state: RunState,
            log: Callable[[str], None]) -> None:
    """Build every cell's models and entries into ``state``; a subject whose baseline fails is skipped with
    its cells marked failed, and the others go on."""
    several = len({c.device for c in plan}) > 1
    for cell in plan:
        reason = cell.subject.unavailable_reason()
        if reason:
            if reason not in state.notes:
                log(reason)
                state.notes.append(reason)
            continue
        ctx = Context(device=torch_device(cell.device), seed=cfg.seed, quick=cfg.quick, cache_dir=cfg.cache_dir,
                      meter=meter, options=cell.suite.options, log=log)
        made = _Subject(cell, f"{cell.subject.name}@{cell.device}" if several else cell.subject.name, ctx)
        if _models(made, cfg, state, log):
            state.subjects[made.where] = {"description": cell.subject.description, **_safe(cell.subject.metadata)}
            _entries(made, cfg, state, log)
    if not state.entries:
        failed = [b for b in state.unrun if b.status == "failed"]
        if failed:
            raise PluginError(f"every cell failed or did not apply, e.g. {failed[0].key}: {failed[0].status_reason}")
        raise ConfigError("nothing to run: every subject was skipped or filtered out (see the notes above)")


def _models(made: _Subject, cfg: RunConfig, state: RunState, log: Callable[[str], None]) -> bool:
    """The baseline, then each method applied to it; False when the baseline itself failed."""
    cell, subject = made.cell, made.cell.subject
    try:
        baseline: Model = plugin_call(f"subject {subject.name!r} (baseline)", partial(subject.baseline, made.ctx))
    except PluginError as exc:
        log(f"{made.where}: failed: {exc}; its cells are skipped, the other subjects go on")
        state.unrun += subject_failed(subject, cell.methods, str(exc), cell.device)
        return False
    made.models.append((baseline, BASELINE, BASELINE))
    for spec, method, params in cell.methods:
        log(f"{made.where}: applying {spec}")
        try:
            model = plugin_call(f"method {spec!r} on {subject.name!r}",
                                partial(method.apply, baseline, subject, params, made.ctx))
            model.method = spec
            model.params = {**params, **model.params}
            _repeat_one_off(model, spec, cfg, made.ctx, log)
        except NotApplicable as why:
            note = f"{made.where}/{spec}: not applicable: {why}"
            log(note)
            state.notes.append(note)
            made.not_run[spec] = ("not-applicable", str(why))
            model = None
        except PluginError as exc:
            log(f"{subject.name}/{spec}: failed: {exc}; the other cells go on")
            made.not_run[spec] = ("failed", str(exc))
            model = None
        made.models.append((model, spec, method.name))
    return True


def _entries(made: _Subject, cfg: RunConfig, state: RunState, log: Callable[[str], None]) -> None:
    """One entry per workload of each model, with the model's quality; a model whose quality or workloads
    raise becomes failed cells (the baseline's failure skips the subject)."""
    cell, subject = made.cell, made.cell.subject
    baseline = made.models[0][0]
    assert baseline is not None  # _models returned True: the baseline was built
    base_workloads: list[Workload] = []
    for model, spec, technique in made.models:
        if model is None:
            state.unrun += unrun_cells(subject, base_workloads, spec, technique, *made.not_run[spec], cfg.phase,
                                       cell.device)
            continue
        try:
            quality = plugin_call(f"quality of {subject.name!r}/{spec}",
                                  partial(subject.quality, model, baseline, made.ctx))
            workloads = plugin_call(f"workloads of {subject.name!r}", partial(subject.workloads, model, made.ctx))
        except PluginError as exc:
            if spec == BASELINE:
                log(f"{subject.name}: failed: {exc}; its cells are skipped, the other subjects go on")
                state.unrun += subject_failed(subject, cell.methods, str(exc), cell.device)
                return
            log(f"{subject.name}/{spec}: failed: {exc}; the other cells go on")
            state.unrun += unrun_cells(subject, base_workloads, spec, technique, "failed", str(exc), cfg.phase,
                                       cell.device)
            continue
        if spec == BASELINE:
            base_workloads = list(workloads)
        size = model_size(model.module)
        for wl in workloads:
            if not cfg.phase or wl.phase == cfg.phase:
                bench = _benchmark(subject, model, spec, technique, wl, quality, size, cell.device)
                state.entries.append(Cell(subject, model, wl, bench))


def _benchmark(subject: Subject, model: Model, spec: str, technique: str, wl: Workload, quality: Quality,
               size: dict[str, Any], device: str) -> Benchmark:
    return Benchmark(
        name=f"{subject.name}/{wl.name}", method=spec, method_name=technique, family=subject.name,
        workload=wl.name, phase=wl.phase, item_unit=wl.item_unit, params={**model.params, "dtype": model.dtype},
        quality=quality,
        size=Size(**size), notes=tuple(model.notes), one_off=_one_off(model),
        extra={"workload": {k: v for k, v in wl.metadata.items() if not k.startswith("_")}}, device=device,
    )


def _repeat_one_off(model: Model, spec: str, cfg: RunConfig, ctx: Context, log: Callable[[str], None]) -> None:
    """Measure a method's one-off work (distillation, calibration) ``cfg.one_off_count`` times in all, so its
    cost carries an interval instead of one sample."""
    from energybench.subjects.one_off import measure_one_off

    work = model.one_off_work
    if work is None or model.one_off_energy_j is None or cfg.one_off_count < 2 or ctx.meter is None:
        return
    energies = [model.one_off_energy_j]
    what = str(model.one_off.get("what", "one-off work"))
    for i in range(cfg.one_off_count - 1):
        log(f"{spec}: measuring its {what} again ({i + 2}/{cfg.one_off_count})")
        _, again = plugin_call(f"repeating the {what} of {spec!r}", partial(measure_one_off, ctx, what, work))
        if again.get("energy_j") is not None:
            energies.append(again["energy_j"])
    model.one_off["energies"] = energies


def _one_off(model: Model) -> OneOff | None:
    if model.one_off_energy_j is None and not model.one_off:
        return None
    info = dict(model.one_off)
    energies = tuple(float(e) for e in info.pop("energies", ()) if e is not None)
    finite = [e for e in energies if e == e]
    energy = sum(finite) / len(finite) if finite else model.one_off_energy_j
    return OneOff(what=str(info.pop("what", "one-off cost")), energy_j=energy,
                  duration_s=info.pop("duration_s", None), source=info.pop("source", None), energies=energies,
                  extra={k: v for k, v in info.items() if k != "energy_j"})


def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return dict(fn())
    except Exception as exc:  # identity is nice to have, it must not cost the run
        return {"metadata_error": str(exc)}
