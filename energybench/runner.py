"""Runs benchmark suites as experiments: baseline vs compressed models, trials interleaved, saved as we go.

Why it is shaped like this:
* everything that changes the figures is pinned *and recorded* first: thread count, the MHA fast path (off
  for every subject, because ``quantize_dynamic`` and pruning hooks silently change its decision, pytorch
  issue 109987), compile (off), seeds, device, and each model's dtype;
* idle power is measured before any work, so energy above idle can be reported as a second, labelled figure
  (gross energy stays the headline: the machine draws idle power whether or not you count it);
* all bad input (unknown subject or method, bad knob values) is resolved before the first joule is spent;
* trials run A B C A B C ..., so slow drifts (thermal, other load) hit every model alike;
* one measurement window per trial; after each trial the whole run is rewritten atomically, so Ctrl-C or a
  crashing plugin never loses a finished trial;
* ``device`` may list several devices (``cpu,cuda``): each subject runs on each present device, trials
  interleaved across all of them, and a missing device is a note saying why;
* after the trials, one attribution pass per benchmark under ``torch.profiler`` splits a window's energy by
  layer (``energybench.layers``); profiling slows the work, so it is never one of the measured trials.

The run is a typed ``energybench.record.Run``; statistics and verdicts are derived from its rounds by
whoever reads it (``energybench.verdicts``), so nothing here computes a median.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TextIO

from energybench.devices import DevicePlan, plan_devices, synchronize, torch_device
from energybench.distributed.launcher import is_nonzero_rank, launcher_environment
from energybench.errors import ConfigError, EnergybenchError, SamplerError
from energybench.record import BASELINE, Benchmark, CarbonBasis, Idle, OneOff, Quality, Round, Run, Size
from energybench.render.progress import Progress
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

__all__ = ["RunConfig", "Suite", "load_suites", "run_suites", "select"]


@dataclass
class RunConfig:
    """Everything a run needs besides the suites; the CLI fills it from its flags."""

    trials: int = 5
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
    progress: bool | None = None  # None: only when stderr is a terminal
    stream: TextIO | None = None  # where notes and the progress bar go (stderr)
    layers: bool = True  # the per-layer attribution pass after the trials


# counters read this often inside a trial give reports a power-over-time curve; a read costs ~10-20 us
# (benchmarks/bench_overhead.py)
TIMELINE_INTERVAL_S = 0.1
# the per-layer pass runs a short workload several times in its one profiled window (a single short run
# splits noisily): enough runs for about this many seconds of work, at most LAYER_MAX_REPEATS
LAYER_TARGET_S = 0.25
LAYER_MAX_REPEATS = 5


@dataclass
class _Entry:
    """One benchmark being measured: its model and workload, and the rounds so far."""

    subject: Subject
    model: Model
    workload: Workload
    bench: Benchmark
    rounds: list[Round] = field(default_factory=list)
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

    def snapshot(self) -> Run:
        benches = [e.snapshot() for e in self.entries]
        return replace(self.run, benchmarks=tuple(benches), notes=tuple(self.notes), subjects=dict(self.subjects))

    @property
    def rounds(self) -> int:
        return sum(len(e.rounds) for e in self.entries)


def pin_settings(cfg: RunConfig, devices: DevicePlan | None = None) -> dict[str, Any]:
    """Pin threads, MHA fast path and seeds; return what was set, for the results file."""
    import torch

    devices = devices or DevicePlan((cfg.device,))

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.backends.mha.set_fastpath_enabled(False)
    torch.manual_seed(cfg.seed)
    return {
        "threads": torch.get_num_threads(),
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


def check_device(device: str) -> DevicePlan:
    """The devices of ``--device`` that can run here (``ConfigError`` when none can, or a name is unknown)."""
    return plan_devices(device)


def run_suites(suites: list[Suite], cfg: RunConfig) -> Run:
    """Run the suites and return the run (also saved under ``cfg.results_dir`` after every trial)."""
    from energybench.meter import Meter

    stream = cfg.stream or sys.stderr

    def log(msg: str) -> None:
        stream.write(f"energybench: {msg}\n")
        stream.flush()

    if cfg.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {cfg.trials}")
    if cfg.phase is not None and cfg.phase not in PHASES:
        raise ConfigError(f"unknown phase {cfg.phase!r}; use --phase train or --phase inference")
    devices = check_device(cfg.device)
    plan = [(device, *row) for device in devices.available for row in _resolve(suites)]  # checked before any work
    settings = pin_settings(cfg, devices)
    meter = Meter(
        samplers=cfg.samplers,
        options=benchmark_options(cfg.sampler_options),
        counter_interval=TIMELINE_INTERVAL_S,
        **(cfg.carbon or {"region": cfg.region}),
    )
    if not meter.samplers:
        meter.close()
        raise SamplerError("no energy sampler can read on this machine; `energybench sensors` says why")
    state = _State(_new_run(meter, settings, cfg.name))
    for note in devices.notes():
        log(note)
        state.notes.append(note)
    saver = _Saver(cfg)
    try:
        state.run = replace(state.run, idle=_measure_idle(meter, cfg, log))
        _prepare(plan, meter, cfg, state, log)
        saver.save(state)
        _warm_up(state, cfg, log)
        _trials(state, meter, cfg, saver, stream)
        if cfg.layers:
            _layer_pass(state, meter, cfg, saver, log)
        return saver.save(state)
    except BaseException:
        if state.rounds:
            saved = saver.save(state)
            where = saved.path if saved.path else "memory (not saved: --no-save)"
            log(f"kept {state.rounds} finished trial(s) in {where}")
        raise
    finally:
        meter.close()


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


def _new_run(meter: Any, settings: dict[str, Any], name: str) -> Run:
    from energybench.machine import commit_info, machine_info

    return Run(
        name=name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        kind="suite",
        machine=machine_info(meter.samplers),
        commit=commit_info(),
        environment={"settings": settings, "launcher": launcher_environment()},
        carbon=CarbonBasis.from_provider(meter.provider) if meter.provider is not None else None,
    )


def _measure_idle(meter: Any, cfg: RunConfig, log: Callable[[str], None]) -> Idle | None:
    if cfg.idle_s <= 0:
        return None
    log(f"measuring idle power for {cfg.idle_s:g} s (keep the machine quiet)")
    with meter.window("idle") as w:
        time.sleep(cfg.idle_s)
    m = w.result
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
        baseline: Model = _plugin_call(f"subject {subject.name!r} (baseline)", partial(subject.baseline, ctx))
        models: list[tuple[Model, str, str]] = [(baseline, BASELINE, BASELINE)]
        for spec, method, params in resolved:
            log(f"{where}: applying {spec}")
            try:
                model = _plugin_call(f"method {spec!r} on {subject.name!r}",
                                     partial(method.apply, baseline, subject, params, ctx))
            except NotApplicable as why:
                note = f"{where}/{spec}: not applicable: {why}"
                log(note)
                state.notes.append(note)
                continue
            model.method = spec
            model.params = {**params, **model.params}
            models.append((model, spec, method.name))
        state.subjects[where] = {"description": subject.description, **_safe(subject.metadata)}
        for model, spec, technique in models:
            quality = _plugin_call(f"quality of {subject.name!r}/{spec}",
                                   partial(subject.quality, model, baseline, ctx))
            size = model_size(model.module)
            workloads = _plugin_call(f"workloads of {subject.name!r}", partial(subject.workloads, model, ctx))
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
        raise ConfigError("nothing to run: every subject was skipped or filtered out (see the notes above)")


def _one_off(model: Model) -> OneOff | None:
    if model.one_off_energy_j is None and not model.one_off:
        return None
    info = dict(model.one_off)
    return OneOff(what=str(info.pop("what", "one-off cost")), energy_j=model.one_off_energy_j,
                  duration_s=info.pop("duration_s", None), source=info.pop("source", None),
                  extra={k: v for k, v in info.items() if k != "energy_j"})


def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return dict(fn())
    except Exception as exc:  # identity is nice to have, it must not cost the run
        return {"metadata_error": str(exc)}


def _warm_up(state: _State, cfg: RunConfig, log: Callable[[str], None]) -> None:
    for e in list(state.entries):
        try:
            for _ in range(cfg.warmup):
                _run_once(e, cfg)
        except NotApplicable as why:
            note = f"{e.label}: not applicable: {why}"
            log(note)
            state.notes.append(note)
            state.entries.remove(e)


def _run_once(e: _Entry, cfg: RunConfig, meter: Any = None, trial: int = 0) -> Any:
    import torch

    if e.workload.setup is not None:
        _plugin_call(e.label, e.workload.setup)
    torch.manual_seed(cfg.seed + trial)
    if meter is None:
        return _plugin_call(e.label, e.workload.run), None
    synchronize(e.bench.device)
    window = f"trial{trial}:{e.label}"
    meter.begin(window)
    try:
        items = _plugin_call(e.label, e.workload.run)
        synchronize(e.bench.device)
    finally:
        result = meter.end(window)
    return items, result


def _layer_pass(state: _State, meter: Any, cfg: RunConfig, saver: _Saver, log: Callable[[str], None]) -> None:
    """One profiled run of every benchmark, after the trials, its window's energy split by layer. A failure
    here costs that benchmark its per-layer figures (with a note), never the trials already saved."""
    import torch

    from energybench.layers import energy_by_layer

    todo = [e for e in state.entries if e.workload.layers and e.rounds]
    if todo:
        log(f"attributing energy to layers: one profiled run of each of {len(todo)} benchmarks (not a trial)")
    for e in todo:
        torch.manual_seed(cfg.seed)
        typical = e.bench.summary("duration_s").median
        repeats = max(1, min(LAYER_MAX_REPEATS, math.ceil(LAYER_TARGET_S / typical))) if typical > 0 else 1
        try:
            profile = energy_by_layer(e.model.module, partial(_plugin_call, e.label, e.workload.run), meter=meter,
                                      setup=e.workload.setup, device=e.bench.device, repeats=repeats)
        except (EnergybenchError, NotApplicable, RuntimeError, ValueError) as exc:
            note = f"{e.label}: no per-layer figures: {exc}"
            log(note)
            state.notes.append(note)
            continue
        e.bench = replace(e.bench, layers=profile)
        saver.save(state)


def _round(e: _Entry, trial: int, items: Any, m: Any, idle_w: float | None) -> Round:
    items = items or 1  # may be fractional: MiniLM counts in thousands of sentences
    state = e.workload.metadata.get("_state") or {}
    return Round(
        index=trial, energy_j=m.energy_j, duration_s=m.duration_s, items=float(items), co2e_g=m.co2e_g,
        source=m.source, domains=m.energy_by_domain(),
        energy_above_idle_j=max(0.0, m.energy_j - idle_w * m.duration_s) if idle_w is not None else None,
        timeline=tuple((round(t, 4), {k: round(w, 4) for k, w in watts.items()}) for t, watts in m.timeline),
        warnings=tuple(m.warnings),
        workload={k: v for k, v in state.items() if isinstance(v, int | float)},
    )


def _trials(state: _State, meter: Any, cfg: RunConfig, saver: _Saver, stream: TextIO) -> None:
    progress = Progress(len(state.entries) * cfg.trials, stream, cfg.progress)
    idle_w = state.run.idle.power_w if state.run.idle else None
    try:
        for trial in range(cfg.trials):
            for e in state.entries:  # interleaved: A B C A B C ...
                items, m = _run_once(e, cfg, meter=meter, trial=trial)
                e.rounds.append(_round(e, trial, items, m, idle_w))
                saver.save(state)
                progress.step(e.label)
            progress.trial_done(trial, cfg.trials)
    finally:
        progress.close()


class _Saver:
    """First save claims ``NNNN_<name>.json``; later saves atomically rewrite that same file."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.file: Any = None

    def save(self, state: _State) -> Run:
        run = state.snapshot()
        if not self.cfg.save or is_nonzero_rank():
            return run  # under torch.distributed every rank holds the aggregated figures; rank 0 writes
        from energybench.storage import RunFile

        if self.file is None:
            self.file, saved = RunFile.create(run, self.cfg.results_dir, self.cfg.name)
            state.run = replace(state.run, name=saved.name, run_id=saved.run_id)
            return saved
        return self.file.write(run)
