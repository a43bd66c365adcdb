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

This module holds the order of a run; the grid of cells is ``run.prepare``, the trial windows and the layer
pass ``run.trials``, the growing record and its file ``run.state``. The run is a typed ``record.Run``;
statistics and verdicts are derived from its rounds by whoever reads it (``verdicts``), so nothing here
computes a median.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from energybench.distributed.launcher import launcher_environment
from energybench.errors import ConfigError, SamplerError, Terminated, WriteError
from energybench.record import BetweenRuns, CarbonBasis, Devices, Environment, Idle, Launcher, Run, Settings
from energybench.run.calibration import window_target_s
from energybench.run.config import RunConfig
from energybench.run.devices import DevicePlan, devices_record, plan_devices, sampler_options_for
from energybench.run.prepare import prepare, resolve
from energybench.run.slurm import SlurmWatch
from energybench.run.state import RunSaver, RunState, note_logger
from energybench.run.suites import Suite, load_suites, select
from energybench.run.trials import MIN_TRIAL_S, TIMELINE_INTERVAL_S, layer_pass, run_trials, warm_up
from energybench.samplers import benchmark_options
from energybench.verdicts.spread import from_saved

__all__ = ["RunConfig", "RunNotSaved", "Suite", "load_suites", "run_suites", "select"]

#: Without an idle measurement, the load is still read this long before the trials (to fit the thread count).
IDLE_PROBE_S = 0.5


class RunNotSaved(WriteError):
    """The run finished but its file could not be (re)written; ``run`` holds every figure, for printing."""

    def __init__(self, message: str, run: Run) -> None:
        super().__init__(message)
        self.run = run


def pin_settings(cfg: RunConfig, devices: DevicePlan | None = None, threads_to_pin: int | None = None) -> Settings:
    """Pin threads (``cfg.threads``, else ``threads_to_pin``), MHA fast path and seeds; return what was set,
    with the run's design, for the results file."""
    import torch

    from energybench.measuring import threads

    devices = devices or DevicePlan((cfg.device,))
    count = cfg.threads or threads_to_pin
    pinned = threads.pin(count)[0] if count else threads.current()
    torch.backends.mha.set_fastpath_enabled(False)
    torch.manual_seed(cfg.seed)
    design = cfg.design()
    return Settings(threads=pinned, interop_threads=torch.get_num_interop_threads(),
                    mha_fastpath=torch.backends.mha.get_fastpath_enabled(), compile=False, dtype="float32",
                    device=cfg.device, seed=cfg.seed, trials=cfg.trial_count, warmup=cfg.warmup, quick=cfg.quick,
                    quantized_engine=torch.backends.quantized.engine, devices=tuple(devices.available),
                    devices_missing=dict(devices.missing), layers=cfg.layers,
                    looks=design.looks if design.sequential else (), spend=design.spend if design.sequential else ())


def run_suites(suites: list[Suite], cfg: RunConfig) -> Run:
    """Run the suites and return the run (also saved under ``cfg.results_dir`` after every trial)."""
    started = time.monotonic()  # the run holds the machine from here: its wall time is the SCI's time reserved
    stream = cfg.stream or sys.stderr
    log = note_logger(stream)
    cfg.check()
    devices = plan_devices(cfg.device)
    plan = resolve(suites, devices.available, cfg.quick)  # every name checked before any work
    meter, measured = _open_meter(cfg, devices)
    try:
        idle, load = _measure_idle(meter, cfg, log)
        fitted, note = _fit_threads(cfg, load)
        settings = pin_settings(cfg, devices, fitted)
        state = RunState(replace(_new_run(meter, cfg, settings, measured), idle=idle), started=started)
    except BaseException:
        meter.close()
        raise
    for line in [*devices.notes(), *([note] if note else [])]:
        log(line)
        state.notes.append(line)
    saver = RunSaver(cfg, log)
    try:
        prepare(plan, meter, cfg, state, log)
        saver.save(state)
        warm_up(state, cfg, log, window_target_s(meter.samplers, MIN_TRIAL_S))
        slurm = SlurmWatch.begin(state)  # inside a Slurm job: the job, and sacct's figure before the trials
        run_trials(state, meter, cfg, saver, stream, log)
        slurm.finish(state)  # sacct's growth over the trials, a second opinion beside energybench's joules
        if cfg.layers:
            layer_pass(state, meter, cfg, saver, log)
        final = saver.save(state)
    except BaseException as exc:
        _keep_finished(state, saver, stream, log, exc)
        raise
    finally:
        meter.close()
    if saver.error is not None:
        raise RunNotSaved(f"{saver.error}; {saver.kept()}", final)
    return final


def _fit_threads(cfg: RunConfig, load: dict[str, float]) -> tuple[int | None, str | None]:
    """The torch thread count that fits the CPUs others leave free, and the note announcing it; (None, None)
    when ``--threads`` chose one or torch's fits."""
    import torch

    from energybench.measuring.threads import fitting

    if cfg.threads is not None or "other_cpus" not in load:
        return None, None
    fits = fitting(torch.get_num_threads(), load.get("cpus", 1.0), load["other_cpus"])
    if fits is None:
        return None, None
    return fits, (f"torch threads {torch.get_num_threads()} -> {fits}: about {load['other_cpus']:.1f} of the "
                  f"{load.get('cpus', 0):g} CPUs were busy elsewhere before the trials, and a larger pool waits for "
                  "them (--threads N sets the count)")


def _open_meter(cfg: RunConfig, devices: DevicePlan) -> tuple[Any, Devices]:
    """The run's meter over its own devices' samplers (idle GPUs and other jobs' would pull every ratio towards
    1), and the record of which devices it measures; a run on a device no sampler reads is a ``ConfigError``."""
    from energybench.measuring.meter import Meter

    options = benchmark_options(cfg.sampler_options)
    chosen_by = "--gpu-index" if options.get("gpu_indices") else f"--device {cfg.device}"
    if cfg.samplers is None:
        options = sampler_options_for(devices.available, options)
    else:
        chosen_by = "the samplers passed to the run"
    meter = Meter(samplers=cfg.samplers, options=options, counter_interval=TIMELINE_INTERVAL_S,
                  **(cfg.carbon or {"region": cfg.region}))
    try:
        if not meter.samplers:
            raise SamplerError("no energy sampler can read on this machine; `energybench sensors` says why")
        return meter, devices_record(devices.available, options, meter.samplers, chosen_by=chosen_by,
                                     detected=cfg.samplers is None)
    except (SamplerError, ConfigError):
        meter.close()
        raise


def stopped_by(exc: BaseException) -> str:
    """What cut a run short, as its file and reports say it."""
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"stopped by an error ({type(exc).__name__}{': ' + first[:200] if first else ''})"


def _mark_stopped(state: RunState, exc: BaseException) -> None:
    """The run's settings say it was cut short and how many whole trials it finished, so no reader takes the
    planned ``trials`` for what was measured."""
    settings = state.run.environment.settings or Settings()
    settings = replace(settings, stopped=stopped_by(exc), trials_finished=state.trials_done)
    state.run = replace(state.run, environment=replace(state.run.environment, settings=settings))


def _keep_finished(state: RunState, saver: RunSaver, stream: Any, log: Callable[[str], None],
                   exc: BaseException) -> None:
    """On an interrupt or error: save every finished trial marked partial, or print them when the file cannot
    be written."""
    _mark_stopped(state, exc)
    if not state.rounds:
        if saver.file is not None:  # the file claimed before the trials says the run stopped before any
            saver.save(state)
        return
    saved = saver.save(state)
    if saver.error is None:
        where = saved.path if saved.path else "memory (not saved: --no-save)"
        log(f"kept {state.trials_done} finished trial(s) in {where} ({state.rounds} round(s) in all), marked "
            f"partial ({stopped_by(exc)})")
        return
    from energybench.render.run_table import format_table
    from energybench.report import run_view

    log(f"{saver.error}; the {state.rounds} finished trial(s) are printed below and nowhere else")
    stream.write(format_table(run_view(saved)) + "\n")
    stream.flush()


def _new_run(meter: Any, cfg: RunConfig, settings: Settings, devices: Devices) -> Run:
    from energybench.measuring.machine import commit_info, machine_info

    machine = machine_info(meter.samplers)
    between = (BetweenRuns(cfg.between_run_sd, "option") if cfg.between_run_sd is not None
               else from_saved(cfg.name, cfg.results_dir, machine))  # the spread of saved runs of this machine
    return Run(
        name=cfg.name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        kind="suite",
        machine=machine,
        commit=commit_info(),
        environment=Environment(settings=settings, launcher=Launcher.of(launcher_environment()), devices=devices,
                                min_change=cfg.min_change, between_runs=between),
        carbon=CarbonBasis.from_provider(meter.provider) if meter.provider is not None else None,
        embodied=tuple(cfg.embodied),
    )


def _measure_idle(meter: Any, cfg: RunConfig, log: Callable[[str], None]) -> tuple[Idle | None, dict[str, float]]:
    """Idle power (``None`` when ``--idle 0``) and the machine's load meanwhile: what other processes used
    before any work, which the thread count is fitted to."""
    from energybench.measuring.noise import Probe

    probe = Probe()
    probe.start()
    if cfg.idle_seconds <= 0:
        time.sleep(IDLE_PROBE_S)
        return None, probe.stop()[0]
    log(f"measuring idle power for {cfg.idle_seconds:g} s (keep the machine quiet)")
    with meter.window("idle") as w:
        time.sleep(cfg.idle_seconds)
    load = probe.stop()[0]
    m = w.result
    for sampler in meter.samplers:  # e.g. RAPL's process share in process scope needs the package's idle draw
        set_floor = getattr(sampler, "set_idle_floor", None)
        if set_floor is not None:
            set_floor(m)
    return Idle(power_w=m.mean_power_w, duration_s=m.duration_s, energy_j=m.energy_j, source=_idle_source(m)), load


def _idle_source(m: Any) -> str:
    """Where the idle figure came from, and when it is partial, why: a domain n/a or only a lower bound
    (a sampler's impossible reading) must not pass as a whole measured or estimated idle power."""
    if m.missing_domains:
        return f"{m.source}; partial: no figure for {', '.join(m.missing_domains)}"
    if m.lower_bound_domains:
        return f"{m.source}; at least: only a lower bound for {', '.join(m.lower_bound_domains)}"
    return str(m.source)
