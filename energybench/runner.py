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
  ~0.1 s apart): a workload faster than that is repeated inside the window (``energybench.calibration``,
  as the pytest fixture does) and the round records how often; a trial whose total still misses a device
  or is only a lower bound is kept but marked partial, and left out of medians and ratios;
* after each trial the whole run is rewritten atomically, so Ctrl-C or a crashing plugin never loses a
  finished trial;
* ``device`` may list several devices (``cpu,cuda``): each subject runs on each present device, trials
  interleaved across all of them, and a missing device is a note saying why;
* after the trials, one attribution pass per benchmark under ``torch.profiler`` splits a window's energy by
  layer (``energybench.layers``); profiling slows the work, so it is never one of the measured trials.

The run is a typed ``energybench.record.Run``; statistics and verdicts are derived from its rounds by
whoever reads it (``energybench.verdicts``), so nothing here computes a median.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TextIO

from energybench.calibration import MAX_ITERATIONS, calibrate, window_target_s
from energybench.devices import DevicePlan, plan_devices, synchronize, torch_device
from energybench.distributed.launcher import initialized_dist, is_nonzero_rank, launcher_environment
from energybench.errors import ConfigError, EnergybenchError, SamplerError, WriteError
from energybench.noise import Probe
from energybench.options import TRIALS
from energybench.record import BASELINE, Benchmark, CarbonBasis, Idle, OneOff, Quality, Round, Run, Size
from energybench.render.printable import printable
from energybench.render.progress import Progress
from energybench.run_cells import subject_failed, unrun_cells
from energybench.run_devices import devices_record, sampler_options_for
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
from energybench.suites import Suite, load_suites, select

__all__ = ["RunConfig", "RunNotSaved", "Suite", "load_suites", "run_suites", "select"]


class RunNotSaved(WriteError):
    """The run finished but its file could not be (re)written; ``run`` holds every figure, for printing."""

    def __init__(self, message: str, run: Run) -> None:
        super().__init__(message)
        self.run = run


@dataclass
class RunConfig:
    """Everything a run needs besides the suites; the CLI fills it from its flags."""

    trials: int = TRIALS
    warmup: int = 1
    quick: bool = False
    phase: str | None = None
    subjects: Sequence[str] | None = None
    region: str | None = None
    carbon: dict[str, Any] | None = None  # Meter carbon keywords (region, intensity, intensity_csv, pue)
    results_dir: str = "results"
    name: str = "compression"
    device: str = "cpu"  # one device or several, comma-separated: "cpu,cuda"
    threads: int | None = None
    seed: int = 0
    idle_s: float = 3.0
    cache_dir: str | None = None
    samplers: Sequence[Any] | None = None
    sampler_options: dict[str, Any] | None = None
    save: bool = True
    one_off_repeats: int = 3  # one-off costs (distillation, calibration) are measured this many times
    progress: bool | None = None  # None: only when stderr is a terminal
    stream: TextIO | None = None  # where notes and the progress bar go (stderr)
    embodied: Sequence[Any] = ()  # record.Embodied per device, for the run's SCI (carbon.sci)
    layers: bool = True  # the per-layer attribution pass after the trials


#: A trial window lasts at least this long (when its workload can be repeated), as the pytest fixture's rounds
#: do (``fixture.DEFAULT_MIN_TIME_S``): a 10 ms window is mostly scheduling jitter, and noisy trials cost the
#: paired test its power; the counters' own minimum (``calibration``) applies on top.
MIN_TRIAL_S = 0.1

# counters read this often inside a trial give reports a power-over-time curve; a read costs ~10-20 us
# (benchmarks/bench_overhead.py)
TIMELINE_INTERVAL_S = 0.1
# the per-layer pass runs a short workload several times in its one profiled window (a single short run
# splits noisily): enough runs for about this many seconds of work, at most LAYER_MAX_REPEATS
LAYER_TARGET_S = 0.25
LAYER_MAX_REPEATS = 5
# The layer pass saves at most this often (rewriting a 1.6 MB run after each of 64 quick benchmarks took ~16 s);
# an interrupt or error still saves what finished (run_suites' handler), so only a SIGKILL loses more
LAYER_SAVE_EVERY_S = 10.0


@dataclass
class _Entry:
    """One benchmark being measured: its model and workload, and the rounds so far."""

    subject: Subject
    model: Model
    workload: Workload
    bench: Benchmark
    rounds: list[Round] = field(default_factory=list)
    load: tuple[dict[str, float], tuple[str, ...]] = ({}, ())  # the machine's load around the last trial
    repeats: int = 1  # workload runs per trial window at least (see energybench.calibration)
    want_s: float = 0.0  # how long a trial window must last; 0: no minimum
    last_runs: int = 1  # runs in the latest trial window
    warmup_s: float | None = None  # seconds per warm-up run: the progress line's first guess of a trial's time
    _snap: tuple[Benchmark, int, Benchmark] | None = None  # (bench it was made from, rounds, snapshot)

    def snapshot(self) -> Benchmark:
        """The benchmark with its rounds so far. The same object until a round (or its layers) is added, so
        its derived statistics (bootstrap CIs) are computed once per new round, not once per save of every
        benchmark: saving after each trial would otherwise grow with the square of the rounds."""
        snap = self._snap
        if snap is None or snap[0] is not self.bench or snap[1] != len(self.rounds):
            snap = self._snap = (self.bench, len(self.rounds), replace(self.bench, rounds=tuple(self.rounds)))
        return snap[2]

    @property
    def label(self) -> str:
        where = f"@{self.bench.device}" if self.bench.device not in (None, "cpu") else ""
        return f"{self.bench.name} [{self.bench.method}]{where}"


@dataclass
class _State:
    """The run as it grows; ``snapshot()`` is the typed record saved after every trial."""

    run: Run
    entries: list[_Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subjects: dict[str, Any] = field(default_factory=dict)
    stopped: list[_Entry] = field(default_factory=list)  # cells that failed after measuring: rounds kept
    unrun: list[Benchmark] = field(default_factory=list)  # cells that failed or did not apply before any round

    def snapshot(self) -> Run:
        benches = [e.snapshot() for e in [*self.entries, *self.stopped]]
        return replace(self.run, benchmarks=(*benches, *self.unrun), notes=tuple(self.notes),
                       subjects=dict(self.subjects))

    def stop(self, e: _Entry, status: str, reason: str, log: Callable[[str], None]) -> None:
        """Take a cell out of the run with its status; the other cells go on (a finished round is kept)."""
        then = "; the other cells go on" if status == "failed" else ""
        log(f"{e.label}: {status.replace('-', ' ')}: {reason}{then}")
        self.entries.remove(e)
        e.bench = replace(e.bench, status=status, status_reason=reason)
        if e.rounds:
            self.stopped.append(e)
        else:
            self.unrun.append(e.bench)

    @property
    def rounds(self) -> int:
        return sum(len(e.rounds) for e in [*self.entries, *self.stopped])


def pin_settings(cfg: RunConfig, devices: DevicePlan | None = None) -> dict[str, Any]:
    """Pin threads, MHA fast path and seeds; return what was set, for the results file."""
    import torch

    from energybench import threads

    devices = devices or DevicePlan((cfg.device,))
    pinned = threads.pin(cfg.threads)[0] if cfg.threads else threads.current()
    torch.backends.mha.set_fastpath_enabled(False)
    torch.manual_seed(cfg.seed)
    return {
        "threads": pinned,
        "interop_threads": torch.get_num_interop_threads(),
        "mha_fastpath": torch.backends.mha.get_fastpath_enabled(),
        "compile": False,
        "dtype": "float32",
        "device": cfg.device,
        "seed": cfg.seed,
        "trials": cfg.trials,
        "warmup": cfg.warmup,
        "quick": cfg.quick,
        "quantized_engine": torch.backends.quantized.engine,
        "devices": list(devices.available),
        **({"devices_missing": dict(devices.missing)} if devices.missing else {}),
        "layers": cfg.layers,
    }


def run_suites(suites: list[Suite], cfg: RunConfig) -> Run:
    """Run the suites and return the run (also saved under ``cfg.results_dir`` after every trial)."""
    from energybench.meter import Meter

    stream = cfg.stream or sys.stderr
    log = _log(stream)

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
    state = _State(replace(_new_run(meter, settings, cfg.name, record), embodied=tuple(cfg.embodied)))
    for note in devices.notes():
        log(note)
        state.notes.append(note)
    saver = _Saver(cfg, log)
    try:
        state.run = replace(state.run, idle=_measure_idle(meter, cfg, log))
        _prepare(plan, meter, cfg, state, log)
        saver.save(state)
        _warm_up(state, cfg, log, window_target_s(meter.samplers, MIN_TRIAL_S))
        _trials(state, meter, cfg, saver, stream, log)
        if cfg.layers:
            _layer_pass(state, meter, cfg, saver, log)
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


def _new_run(meter: Any, settings: dict[str, Any], name: str, devices: dict[str, Any]) -> Run:
    from energybench.machine import commit_info, machine_info

    return Run(
        name=name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        kind="suite",
        machine=machine_info(meter.samplers),
        commit=commit_info(),
        environment={"settings": settings, "launcher": launcher_environment(), "devices": devices},
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


def _plugin_call(what: str, fn: Callable[[], Any]) -> Any:
    """Run plugin code; anything but our own errors becomes one clear line naming the plugin."""
    try:
        return fn()
    except (EnergybenchError, NotApplicable, KeyboardInterrupt):
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise PluginError(f"{what} raised {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")) from exc


def _prepare(plan: Any, meter: Any, cfg: RunConfig, state: _State, log: Callable[[str], None]) -> None:
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
            baseline: Model = _plugin_call(f"subject {subject.name!r} (baseline)", partial(subject.baseline, ctx))
        except PluginError as exc:
            log(f"{where}: failed: {exc}; its cells are skipped, the other subjects go on")
            state.unrun += subject_failed(subject, resolved, str(exc), device)
            continue
        models: list[tuple[Model | None, str, str]] = [(baseline, BASELINE, BASELINE)]
        not_run: dict[str, tuple[str, str]] = {}  # spec -> (status, reason) of a method that produced no model
        for spec, method, params in resolved:
            log(f"{where}: applying {spec}")
            try:
                model = _plugin_call(f"method {spec!r} on {subject.name!r}",
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
                quality = _plugin_call(f"quality of {subject.name!r}/{spec}",
                                       partial(subject.quality, model, baseline, ctx))
                workloads = _plugin_call(f"workloads of {subject.name!r}", partial(subject.workloads, model, ctx))
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
                state.entries.append(_Entry(subject, model, wl, bench))
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
        _, again = _plugin_call(f"repeating the {what} of {spec!r}", partial(measure_one_off, ctx, what, work))
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


def _warm_up(state: _State, cfg: RunConfig, log: Callable[[str], None], want_s: float) -> None:
    """Unmeasured runs, then how many runs each trial window needs to last ``want_s``; a cell whose plugin
    raises here stops with its status, the others go on."""
    for e in list(state.entries):
        try:
            last_s = None
            for _ in range(cfg.warmup):
                last_s = _timed_run(e, cfg)
            e.warmup_s = last_s
            e.repeats = _repeats(e, cfg, want_s, last_s, state.notes, log)
            e.want_s = want_s if e.workload.can_repeat else 0.0
        except NotApplicable as why:
            state.notes.append(f"{e.label}: not applicable: {why}")
            state.stop(e, "not-applicable", str(why), log)
            continue
        except PluginError as exc:
            state.stop(e, "failed", str(exc), log)
            continue
        e.bench = replace(e.bench, extra={**e.bench.extra, "min_runs_per_trial": e.repeats, "window_target_s": want_s})


def _timed_run(e: _Entry, cfg: RunConfig) -> float:
    """One unmeasured run after its setup; its duration (setup excluded)."""
    import torch

    if e.workload.setup is not None:
        _plugin_call(e.label, e.workload.setup)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    _plugin_call(e.label, e.workload.run)
    synchronize(e.bench.device)
    return time.perf_counter() - t0


def _repeats(e: _Entry, cfg: RunConfig, want_s: float, last_s: float | None, notes: list[str],
             log: Callable[[str], None]) -> int:
    """Runs per trial window so the window covers ``want_s`` (enough updates of the slowest counter).

    Under torch.distributed every rank must decide alike (a workload may hold collectives): the warm-up
    time is agreed first (the slowest rank's), and ``calibrate`` agrees on each of its own decisions."""
    from energybench.distributed import agree  # no-op outside a process group; never imports torch

    if last_s is not None:
        last_s = agree(last_s)
    if want_s <= 0 or (last_s is not None and last_s >= want_s):
        return 1
    if not e.workload.can_repeat:
        note = (f"{e.label}: one run{f' ({last_s:.3g} s)' if last_s is not None else ''} may be shorter than "
                f"the {want_s:.3g} s the slowest energy counter needs, and this workload cannot be repeated "
                "inside a window: a device may be missing from its trials (they are then marked partial)")
        log(note)
        notes.append(note)
        return 1
    if e.workload.setup is not None:
        _plugin_call(e.label, e.workload.setup)

    def once() -> None:
        _plugin_call(e.label, e.workload.run)
        synchronize(e.bench.device)

    repeats = calibrate(once, want_s, first_call_s=last_s)
    if repeats > 1:
        log(f"{e.label}: {repeats} runs per trial window (the slowest energy counter needs {want_s:.3g} s)")
    return repeats


def _run_once(e: _Entry, cfg: RunConfig, meter: Any = None, trial: int = 0) -> Any:
    """One trial: setup outside the window, then at least ``e.repeats`` runs inside it, and more while the
    window is shorter than ``e.want_s`` (load can make the calibrated count too few). Under
    torch.distributed the count alone decides, so every rank runs its collectives equally often.
    Returns (items, measurement); ``e.last_runs`` is how many runs the window held."""
    import torch

    if e.workload.setup is not None:
        _plugin_call(e.label, e.workload.setup)
    torch.manual_seed(cfg.seed + trial)
    if meter is None:
        return _plugin_call(e.label, e.workload.run), None
    synchronize(e.bench.device)
    window = f"trial{trial}:{e.label}"
    probe = Probe()
    probe.start()
    top_up = e.want_s if initialized_dist() is None else 0.0
    items, runs = 0.0, 0
    meter.begin(window)
    t0 = time.perf_counter()
    try:
        while runs < e.repeats or time.perf_counter() - t0 < top_up:
            items += float(_plugin_call(e.label, e.workload.run) or 1)  # fractional: MiniLM counts 1k sentences
            runs += 1
        synchronize(e.bench.device)
    finally:
        result = meter.end(window)
        e.last_runs = max(runs, 1)
        e.load = probe.stop()
    return items, result


def _layer_pass(state: _State, meter: Any, cfg: RunConfig, saver: _Saver, log: Callable[[str], None]) -> None:
    """One profiled run of every benchmark, after the trials, its window's energy split by layer. A failure
    here costs that benchmark its per-layer figures (with a note), never the trials already saved."""
    import torch

    from energybench.layers import energy_by_layer

    todo = [e for e in state.entries if e.workload.layers and e.rounds]
    if todo:
        log(f"attributing energy to layers: one profiled run of each of {len(todo)} benchmarks (not a trial)")
    saved_at = time.monotonic()
    for e in todo:
        torch.manual_seed(cfg.seed)
        # seconds per run: a trial window holds rounds[].iterations runs
        per_run = [r.duration_s / max(r.iterations or 1, 1) for r in e.rounds if r.duration_s > 0]
        typical = statistics.median(per_run) if per_run else 0.0
        repeats = max(1, min(LAYER_MAX_REPEATS, math.ceil(LAYER_TARGET_S / typical))) if typical > 0 else 1
        if not e.workload.can_repeat:
            repeats = 1
        try:
            profile = energy_by_layer(e.model.module, partial(_plugin_call, e.label, e.workload.run), meter=meter,
                                      setup=e.workload.setup, device=e.bench.device, repeats=repeats)
        except (EnergybenchError, NotApplicable, RuntimeError, ValueError) as exc:
            note = f"{e.label}: no per-layer figures: {exc}"
            log(note)
            state.notes.append(note)
            continue
        e.bench = replace(e.bench, layers=profile)
        if time.monotonic() - saved_at >= LAYER_SAVE_EVERY_S:
            saver.save(state)
            saved_at = time.monotonic()


def _round(e: _Entry, trial: int, items: Any, m: Any, idle_w: float | None) -> Round:
    items = items or 1
    state = e.workload.metadata.get("_state") or {}
    return Round(
        index=trial, energy_j=m.energy_j, duration_s=m.duration_s, items=float(items), co2e_g=m.co2e_g,
        source=m.source, domains=m.energy_by_domain(), iterations=e.last_runs,
        energy_above_idle_j=max(0.0, m.energy_j - idle_w * m.duration_s) if idle_w is not None else None,
        timeline=tuple((round(t, 4), {k: round(w, 4) for k, w in watts.items()}) for t, watts in m.timeline),
        warnings=tuple(m.warnings),
        workload={k: v for k, v in state.items() if isinstance(v, int | float)},
        load=e.load[0], flags=e.load[1], missing=m.missing_domains, lower_bound=m.lower_bound_domains,
    )


def _trials(state: _State, meter: Any, cfg: RunConfig, saver: _Saver, stream: TextIO,
            log: Callable[[str], None]) -> None:
    progress = Progress([e.label for e in state.entries], cfg.trials, stream,
                        False if is_nonzero_rank() else cfg.progress,  # under torchrun rank 0 alone prints
                        expected={e.label: max(e.warmup_s * e.repeats, e.want_s)
                                  for e in state.entries if e.warmup_s is not None})
    idle_w = state.run.idle.power_w if state.run.idle else None
    want_s = window_target_s(meter.samplers, MIN_TRIAL_S)
    try:
        for trial in range(cfg.trials):
            for e in list(state.entries):  # interleaved: A B C A B C ...
                try:
                    items, m = _run_once(e, cfg, meter=meter, trial=trial)
                except (PluginError, NotApplicable) as exc:  # this cell stops; its rounds and the other cells go on
                    status = "not-applicable" if isinstance(exc, NotApplicable) else "failed"
                    state.stop(e, status, f"{exc} (in trial {trial + 1} of {cfg.trials})", log)
                    progress.drop(e.label)
                    saver.save(state)
                    continue
                e.rounds.append(_round(e, trial, items, m, idle_w))
                saver.save(state)
                progress.step(e.label)
                if e.workload.can_repeat and 0 < m.duration_s < want_s:
                    # ran faster than calibrated (less load now): lengthen the next windows. The duration is
                    # the aggregated window's under torch.distributed, so every rank decides alike.
                    e.repeats = min(MAX_ITERATIONS, math.ceil(e.repeats * want_s / m.duration_s * 1.1))
            progress.milestone(f"trial {trial + 1}/{cfg.trials} done")
    finally:
        progress.close()
    if not state.entries and not state.stopped and not any(b.status == "failed" for b in state.unrun):
        raise ConfigError("nothing to run: no benchmark was applicable (see the notes above)")


def _log(stream: TextIO) -> Callable[[str], None]:
    """Notes on ``stream``; under torchrun only rank 0 writes, so a job prints each line once."""
    quiet = is_nonzero_rank()

    def log(msg: str) -> None:
        if not quiet:
            stream.write(printable(f"energybench: {msg}\n"))  # notes carry plugins' text
            stream.flush()

    return log


class _Saver:
    """First save claims ``NNNN_<name>.json``; later saves atomically rewrite that same file.

    A save that fails (full disk, read-only directory) never stops the measuring: the figures stay in
    memory, the first failure is logged once, every later save tries again, and ``error`` holds the last
    failure (``None`` once a save succeeds again), so the caller can print the figures and say so.
    """

    def __init__(self, cfg: RunConfig, log: Callable[[str], None] = lambda _msg: None) -> None:
        self.cfg = cfg
        self.log = log
        self.file: Any = None
        self.error: WriteError | None = None
        self.saved_rounds: int | None = None  # rounds in the file as last written

    def save(self, state: _State) -> Run:
        run = state.snapshot()
        if not self.cfg.save or is_nonzero_rank():
            return run  # under torch.distributed every rank holds the aggregated figures; rank 0 writes
        from energybench.storage import RunFile

        try:
            if self.file is None:
                self.file, saved = RunFile.create(run, self.cfg.results_dir, self.cfg.name)
                state.run = replace(state.run, name=saved.name, run_id=saved.run_id)
            else:
                saved = self.file.write(run)
        except WriteError as exc:
            if self.error is None:
                self.log(f"warning: {exc}; measuring goes on and the figures will be printed")
            self.error = exc
            return replace(run, run_id=state.run.run_id, path=None)
        self.error = None
        self.saved_rounds = state.rounds
        return saved

    def kept(self) -> str:
        """What the results directory holds of this run, for the message after a failed save."""
        if self.saved_rounds is None:
            return "nothing of this run was saved; the table above is every figure"
        return (f"{self.file.path} still holds the run as last saved ({self.saved_rounds} round(s)); the table "
                "above is every figure")
