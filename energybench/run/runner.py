"""Runs benchmark suites as experiments: baseline vs compressed models, trials interleaved, saved as we go.

Why it is shaped like this:
* everything that changes the figures is pinned *and recorded* first: thread count, the MHA fast path (off
  for every subject, because ``quantize_dynamic`` and pruning hooks silently change its decision, pytorch
  issue 109987), compile (off), seeds, device, and each model's dtype;
* idle power is measured before any work, so energy above idle can be reported as a second, labelled figure
  (gross energy stays the headline: the machine draws idle power whether or not you count it);
* all bad input (unknown subject or method, bad knob values) is resolved before the first joule is spent;
* trials run A B C A B C ..., so slow drifts (thermal, other load) hit every model alike;
* one measurement window per trial, long enough for the slowest energy counter in use (a GPU's updates
  ~0.1 s apart): a workload faster than that is repeated inside the window (``energybench.run.calibration``,
  as the pytest fixture does) and the round records how often; a trial whose total still misses a device
  or is only a lower bound is kept but marked partial, and left out of medians and ratios;
* after each trial the whole run is rewritten atomically, so Ctrl-C or a crashing plugin never loses a
  finished trial;
* ``device`` may list several devices (``cpu,cuda``): each subject runs on each present device, trials
  interleaved across all of them, and a missing device is a note saying why;
* after the trials, one attribution pass per benchmark under ``torch.profiler`` splits a window's energy by
  layer (``energybench.measuring.layers``); profiling slows the work, so it is never one of the measured trials.

This module holds the order of a run; the trial windows and the layer pass are ``energybench.run.trials``,
the growing record and its file ``energybench.run.state``. The run is a typed ``energybench.record.Run``;
statistics and verdicts are derived from its rounds by whoever reads it (``energybench.verdicts.baseline``), so
nothing here computes a median.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from energybench.distributed.launcher import launcher_environment
from energybench.errors import ConfigError, SamplerError, WriteError
from energybench.record import (
    BASELINE,
    Benchmark,
    BetweenRuns,
    CarbonBasis,
    Devices,
    Environment,
    Idle,
    Launcher,
    OneOff,
    Quality,
    Run,
    Settings,
    Size,
)
from energybench.run.calibration import window_target_s
from energybench.run.devices import DevicePlan, devices_record, plan_devices, sampler_options_for, torch_device
from energybench.run.state import (
    Entry,
    RunConfig,
    RunSaver,
    RunState,
    note_logger,
    plugin_call,
    subject_failed,
    unrun_cells,
)
from energybench.run.suites import Suite, load_suites, select
from energybench.run.trials import MIN_TRIAL_S, TIMELINE_INTERVAL_S, layer_pass, run_trials, warm_up
from energybench.samplers import benchmark_options
from energybench.subjects.api import (
    PHASES,
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
from energybench.verdicts.spread import from_saved

__all__ = ["RunConfig", "RunNotSaved", "Suite", "load_suites", "run_suites", "select"]


class RunNotSaved(WriteError):
    """The run finished but its file could not be (re)written; ``run`` holds every figure, for printing."""

    def __init__(self, message: str, run: Run) -> None:
        super().__init__(message)
        self.run = run


def pin_settings(cfg: RunConfig, devices: DevicePlan | None = None) -> Settings:
    """Pin threads, MHA fast path and seeds; return what was set, for the results file."""
    import torch

    from energybench.measuring import threads

    devices = devices or DevicePlan((cfg.device,))
    pinned = threads.pin(cfg.threads)[0] if cfg.threads else threads.current()
    torch.backends.mha.set_fastpath_enabled(False)
    torch.manual_seed(cfg.seed)
    return Settings(threads=pinned, interop_threads=torch.get_num_interop_threads(),
                    mha_fastpath=torch.backends.mha.get_fastpath_enabled(), compile=False, dtype="float32",
                    device=cfg.device, seed=cfg.seed, trials=cfg.trials, warmup=cfg.warmup, quick=cfg.quick,
                    quantized_engine=torch.backends.quantized.engine, devices=tuple(devices.available),
                    devices_missing=dict(devices.missing), layers=cfg.layers)


def run_suites(suites: list[Suite], cfg: RunConfig) -> Run:
    """Run the suites and return the run (also saved under ``cfg.results_dir`` after every trial)."""
    from energybench.measuring.meter import Meter

    stream = cfg.stream or sys.stderr
    log = note_logger(stream)

    _check_numbers(cfg)
    if cfg.phase is not None and cfg.phase not in PHASES:
        raise ConfigError(f"unknown phase {cfg.phase!r}; use --phase train or --phase inference")
    devices = plan_devices(cfg.device)
    plan = [(device, *row) for device in devices.available for row in _resolve(suites)]  # checked before any work
    settings = pin_settings(cfg, devices)
    options = benchmark_options(cfg.sampler_options)
    chosen_by = "--gpu-index" if options.get("gpu_indices") else f"--device {cfg.device}"
    if cfg.samplers is None:  # only the run's own GPUs: idle ones and other jobs' would pull ratios to 1
        options = sampler_options_for(devices.available, options)
    else:
        chosen_by = "the samplers passed to the run"
    meter = Meter(
        samplers=cfg.samplers,
        options=options,
        counter_interval=TIMELINE_INTERVAL_S,
        **(cfg.carbon or {"region": cfg.region}),
    )
    if not meter.samplers:
        meter.close()
        raise SamplerError("no energy sampler can read on this machine; `energybench sensors` says why")
    try:
        record = devices_record(devices.available, options, meter.samplers, chosen_by=chosen_by,
                                detected=cfg.samplers is None)
    except ConfigError:
        meter.close()
        raise
    run = _new_run(meter, settings, cfg.name, record)
    state = RunState(replace(run, embodied=tuple(cfg.embodied), environment=replace(
        run.environment, min_change=cfg.min_change, between_runs=_between_runs(cfg, run))))
    for note in devices.notes():
        log(note)
        state.notes.append(note)
    saver = RunSaver(cfg, log)
    try:
        state.run = replace(state.run, idle=_measure_idle(meter, cfg, log))
        _prepare(plan, meter, cfg, state, log)
        saver.save(state)
        warm_up(state, cfg, log, window_target_s(meter.samplers, MIN_TRIAL_S))
        run_trials(state, meter, cfg, saver, stream, log)
        if cfg.layers:
            layer_pass(state, meter, cfg, saver, log)
        final = saver.save(state)
    except BaseException:
        if state.rounds:
            saved = saver.save(state)
            if saver.error is None:
                where = saved.path if saved.path else "memory (not saved: --no-save)"
                log(f"kept {state.rounds} finished trial(s) in {where}")
            else:  # nothing else holds them: print them before the process ends
                from energybench.render.run_table import format_table

                log(f"{saver.error}; the {state.rounds} finished trial(s) are printed below and nowhere else")
                stream.write(format_table(saved) + "\n")
                stream.flush()
        raise
    finally:
        meter.close()
    if saver.error is not None:
        raise RunNotSaved(f"{saver.error}; {saver.kept()}", final)
    return final


def _check_numbers(cfg: RunConfig) -> None:
    """The numeric settings by the same rules as the command line's options (NaN, inf, a negative or absurd
    count is one ``ConfigError`` naming the option, never a traceback from torch or ``time.sleep``)."""
    from energybench import options

    checks = [("--trials", options.trials_count, cfg.trials), ("--warmup", options.warmup_count, cfg.warmup),
              ("--seed", options.seed_value, cfg.seed), ("--idle", options.idle_seconds, cfg.idle_s)]
    if cfg.threads is not None:
        checks.append(("--threads", options.thread_count, cfg.threads))
    for flag, parse, value in checks:
        try:
            parse(value)
        except ValueError as exc:
            raise ConfigError(f"{flag} {exc}") from None


def _resolve(suites: list[Suite]) -> list[tuple[Subject, Suite, list[tuple[str, CompressionMethod, dict]]]]:
    known_subjects = subjects()
    known_methods = methods()
    plan = []
    for suite in suites:
        subject = get_subject(suite.subject, known_subjects)
        specs = list(suite.methods) if suite.methods is not None else list(subject.default_methods)
        resolved = []
        for spec in specs:
            method, params = resolve_method(spec, known_methods)
            resolved.append((spec, method, params))
        plan.append((subject, suite, resolved))
    return plan


def _between_runs(cfg: RunConfig, run: Run) -> BetweenRuns:
    """The between-run spread this run's verdicts include: as given, else from saved runs on this machine."""
    if cfg.between_run_sd is not None:
        return BetweenRuns(cfg.between_run_sd, "option")
    return from_saved(cfg.name, cfg.results_dir, run.machine)


def _new_run(meter: Any, settings: Settings, name: str, devices: Devices) -> Run:
    from energybench.measuring.machine import commit_info, machine_info

    return Run(
        name=name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        kind="suite",
        machine=machine_info(meter.samplers),
        commit=commit_info(),
        environment=Environment(settings=settings, launcher=Launcher.of(launcher_environment()), devices=devices),
        carbon=CarbonBasis.from_provider(meter.provider) if meter.provider is not None else None,
    )


def _measure_idle(meter: Any, cfg: RunConfig, log: Callable[[str], None]) -> Idle | None:
    if cfg.idle_s <= 0:
        return None
    log(f"measuring idle power for {cfg.idle_s:g} s (keep the machine quiet)")
    with meter.window("idle") as w:
        time.sleep(cfg.idle_s)
    m = w.result
    for sampler in meter.samplers:  # e.g. RAPL's process share in process scope needs the package's idle draw
        set_floor = getattr(sampler, "set_idle_floor", None)
        if set_floor is not None:
            set_floor(m)
    return Idle(power_w=m.mean_power_w, duration_s=m.duration_s, energy_j=m.energy_j, source=m.source)


def _prepare(plan: Any, meter: Any, cfg: RunConfig, state: RunState, log: Callable[[str], None]) -> None:
    several = len({row[0] for row in plan}) > 1
    for device, subject, suite, resolved in plan:
        reason = subject.unavailable_reason()
        if reason:
            if reason not in state.notes:
                log(reason)
                state.notes.append(reason)
            continue
        ctx = Context(device=torch_device(device), seed=cfg.seed, quick=cfg.quick, cache_dir=cfg.cache_dir,
                      meter=meter, options=suite.options, log=log)
        where = f"{subject.name}@{device}" if several else subject.name
        try:
            baseline: Model = plugin_call(f"subject {subject.name!r} (baseline)", partial(subject.baseline, ctx))
        except PluginError as exc:
            log(f"{where}: failed: {exc}; its cells are skipped, the other subjects go on")
            state.unrun += subject_failed(subject, resolved, str(exc), device)
            continue
        models: list[tuple[Model | None, str, str]] = [(baseline, BASELINE, BASELINE)]
        not_run: dict[str, tuple[str, str]] = {}  # spec -> (status, reason) of a method that produced no model
        for spec, method, params in resolved:
            log(f"{where}: applying {spec}")
            try:
                model = plugin_call(f"method {spec!r} on {subject.name!r}",
                                     partial(method.apply, baseline, subject, params, ctx))
                model.method = spec
                model.params = {**params, **model.params}
                _repeat_one_off(model, spec, cfg, ctx, log)
            except NotApplicable as why:
                note = f"{where}/{spec}: not applicable: {why}"
                log(note)
                state.notes.append(note)
                not_run[spec] = ("not-applicable", str(why))
                models.append((None, spec, method.name))
                continue
            except PluginError as exc:
                log(f"{subject.name}/{spec}: failed: {exc}; the other cells go on")
                not_run[spec] = ("failed", str(exc))
                models.append((None, spec, method.name))
                continue
            models.append((model, spec, method.name))
        state.subjects[where] = {"description": subject.description, **_safe(subject.metadata)}
        base_workloads: list[Workload] = []
        for model, spec, technique in models:
            if model is None:
                state.unrun += unrun_cells(subject, base_workloads, spec, technique, *not_run[spec], cfg.phase,
                                           device)
                continue
            try:
                quality = plugin_call(f"quality of {subject.name!r}/{spec}",
                                       partial(subject.quality, model, baseline, ctx))
                workloads = plugin_call(f"workloads of {subject.name!r}", partial(subject.workloads, model, ctx))
            except PluginError as exc:
                if spec == BASELINE:
                    log(f"{subject.name}: failed: {exc}; its cells are skipped, the other subjects go on")
                    state.unrun += subject_failed(subject, resolved, str(exc), device)
                    break
                log(f"{subject.name}/{spec}: failed: {exc}; the other cells go on")
                state.unrun += unrun_cells(subject, base_workloads, spec, technique, "failed", str(exc), cfg.phase,
                                           device)
                continue
            if spec == BASELINE:
                base_workloads = list(workloads)
            size = model_size(model.module)
            for wl in workloads:
                if cfg.phase and wl.phase != cfg.phase:
                    continue
                bench = Benchmark(
                    name=f"{subject.name}/{wl.name}", method=spec, method_name=technique, family=subject.name,
                    workload=wl.name, phase=wl.phase, item_unit=wl.item_unit,
                    params={**model.params, "dtype": model.dtype},
                    quality=Quality(quality.metric, quality.value, quality.higher_is_better, quality.baseline,
                                    dict(quality.extra)),
                    size=Size(**size), notes=tuple(model.notes), one_off=_one_off(model),
                    extra={"workload": {k: v for k, v in wl.metadata.items() if not k.startswith("_")}},
                    device=device,
                )
                state.entries.append(Entry(subject, model, wl, bench))
    if not state.entries:
        failed = [b for b in state.unrun if b.status == "failed"]
        if failed:
            raise PluginError(f"every cell failed or did not apply, e.g. {failed[0].key}: {failed[0].status_reason}")
        raise ConfigError("nothing to run: every subject was skipped or filtered out (see the notes above)")


def _repeat_one_off(model: Model, spec: str, cfg: RunConfig, ctx: Context, log: Callable[[str], None]) -> None:
    """Measure a method's one-off work (distillation, calibration) ``cfg.one_off_repeats`` times in all, so its
    cost carries an interval instead of one sample."""
    from energybench.subjects.one_off import measure_one_off

    work = model.one_off_work
    if work is None or model.one_off_energy_j is None or cfg.one_off_repeats < 2 or ctx.meter is None:
        return
    energies = [model.one_off_energy_j]
    what = str(model.one_off.get("what", "one-off work"))
    for i in range(cfg.one_off_repeats - 1):
        log(f"{spec}: measuring its {what} again ({i + 2}/{cfg.one_off_repeats})")
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


