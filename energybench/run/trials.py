"""The measured part of a run: warm-up and window sizing, the interleaved trials, and the per-layer pass.

Each trial window is long enough for the slowest energy counter in use (``energybench.run.calibration``): a
workload faster than that is repeated inside the window and the round records how often. Trials run
A B C A B C ..., and the run file is rewritten after every trial and at most every ``SAVE_EVERY_S`` inside
one; an interrupt, SIGTERM or error saves every finished window first.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any, TextIO

from energybench.distributed.launcher import initialized_dist, is_nonzero_rank
from energybench.errors import ConfigError, EnergybenchError
from energybench.measuring.noise import Probe
from energybench.record import Round
from energybench.render.progress import Progress
from energybench.run.calibration import MAX_ITERATIONS, calibrate, window_target_s
from energybench.run.config import RunConfig
from energybench.run.devices import synchronize
from energybench.run.looks import TOP_UP_FACTOR, Looks, likely_savers
from energybench.run.state import Cell, RunSaver, RunState, plugin_call
from energybench.subjects.api import NotApplicable, PluginError
from energybench.verdicts.baseline import MIN_PAIRS
from energybench.verdicts.spread import saved_trial_spreads

__all__ = ["LAYER_MAX_REPEATS", "LAYER_SAVE_EVERY_S", "LAYER_TARGET_S", "MIN_TRIAL_S", "SAVE_EVERY_S",
           "TIMELINE_INTERVAL_S", "layer_pass", "run_trials", "warm_up"]

#: A trial window lasts at least this long (when its workload can be repeated), as the pytest fixture's rounds
#: do (``fixture.DEFAULT_MIN_TIME_S``): a 10 ms window is mostly scheduling jitter, and noisy trials cost the
#: paired test its power; the counters' own minimum (``calibration``) applies on top.
MIN_TRIAL_S = 0.1

# Inside a trial the run file is rewritten at most this often, and after every trial: rewriting a large run
# after every window would cost a noticeable share of the run. An interrupt, a SIGTERM or an error saves every
# finished window first (run_suites' handler), so only a SIGKILL or a power cut can lose windows, at most this
# many seconds of them.
SAVE_EVERY_S = 2.0

# counters read this often inside a trial give reports a power-over-time curve (a read's cost:
# benchmarks/bench_overhead.py)
TIMELINE_INTERVAL_S = 0.1
# the per-layer pass runs a short workload several times in its one profiled window (a single short run
# splits noisily): enough runs for about this many seconds of work, at most LAYER_MAX_REPEATS
LAYER_TARGET_S = 0.25
LAYER_MAX_REPEATS = 5
# the profiler's set-up and post-processing around one benchmark's profiled window (a forecast, for the progress
# line): the README's job profiled 37 benchmarks in 13.1 s, about 3.5 s of it their runs (2-core VM, 2026-12-07)
LAYER_OVERHEAD_S = 0.25
# The layer pass saves at most this often (a save rewrites the whole run); an interrupt or error still saves what
# finished (run_suites' handler), so only a SIGKILL loses more
LAYER_SAVE_EVERY_S = 10.0


def warm_up(state: RunState, cfg: RunConfig, log: Callable[[str], None], want_s: float) -> None:
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


def _timed_run(e: Cell, cfg: RunConfig) -> float:
    """One unmeasured run after its setup; its duration (setup excluded)."""
    import torch

    if e.workload.setup is not None:
        plugin_call(e.label, e.workload.setup)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    plugin_call(e.label, e.workload.run)
    synchronize(e.bench.device)
    return time.perf_counter() - t0


def _repeats(e: Cell, cfg: RunConfig, want_s: float, last_s: float | None, notes: list[str],
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
    if initialized_dist() is None and last_s is not None and last_s > 0:
        # one process: the warm-up's time sizes the window, and each trial tops its window up to ``want_s``
        # (``_run_once``) and lengthens the next ones, so timing extra batches first would only cost time
        repeats = min(MAX_ITERATIONS, math.ceil(want_s / last_s))
    else:
        if e.workload.setup is not None:
            plugin_call(e.label, e.workload.setup)

        def once() -> None:
            plugin_call(e.label, e.workload.run)
            synchronize(e.bench.device)

        repeats = calibrate(once, want_s, first_call_s=last_s)
    if repeats > 1:
        log(f"{e.label}: {repeats} runs per trial window (the slowest energy counter needs {want_s:.3g} s)")
    return repeats


def _run_once(e: Cell, cfg: RunConfig, meter: Any = None, trial: int = 0, probe: Probe | None = None) -> Any:
    """One trial: setup outside the window, then at least ``e.repeats`` runs inside it, and more while the
    window is shorter than ``e.want_s`` (load can make the calibrated count too few). Under
    torch.distributed the count alone decides, so every rank runs its collectives equally often.
    Returns (items, measurement); ``e.last_runs`` is how many runs the window held."""
    import torch

    if e.workload.setup is not None:
        plugin_call(e.label, e.workload.setup)
    torch.manual_seed(cfg.seed + trial)
    if meter is None:
        return plugin_call(e.label, e.workload.run), None
    synchronize(e.bench.device)
    window = f"trial{trial}:{e.label}"
    probe = probe or Probe()
    probe.start()
    top_up = e.want_s if initialized_dist() is None else 0.0
    items, runs = 0.0, 0
    meter.begin(window)
    t0 = time.perf_counter()
    try:
        while runs < e.repeats or time.perf_counter() - t0 < top_up:
            items += float(plugin_call(e.label, e.workload.run) or 1)  # fractional: MiniLM counts 1k sentences
            runs += 1
        synchronize(e.bench.device)
    finally:
        result = meter.end(window)
        e.last_runs = max(runs, 1)
        e.load = probe.stop()
    return items, result


def _round(e: Cell, trial: int, items: Any, m: Any, idle_w: float | None) -> Round:
    state = e.workload.metadata.get("_state") or {}
    return Round.from_measurement(m, index=trial, items=float(items or 1), iterations=e.last_runs,
                                  idle_power_w=idle_w, with_timeline=True, load=e.load[0], flags=e.load[1],
                                  workload={k: v for k, v in state.items() if isinstance(v, int | float)})


def run_trials(state: RunState, meter: Any, cfg: RunConfig, saver: RunSaver, stream: TextIO,
               log: Callable[[str], None]) -> None:
    """The interleaved trials: every open cell once per trial (A B C A B C ...), a look at the design's trial
    counts (``run.looks``: decided rows stop), top-up trials for rows a changing load left short of pairs, and
    the run file rewritten after every trial."""
    design = cfg.design()
    settings = state.run.environment.settings
    looks = Looks(design, state, cfg.min_change)
    if design.sequential:
        looks.prior = saved_trial_spreads(cfg.name, cfg.results_dir, state.run.machine,
                                          settings.thread_counts() if settings is not None else None)
    progress = Progress([e.label for e in state.entries], design.max_trials, stream,
                        False if is_nonzero_rank() else cfg.progress,  # under torchrun rank 0 alone prints
                        expected={e.label: max(e.warmup_s * e.repeats, e.want_s)
                                  for e in state.entries if e.warmup_s is not None})
    progress.tail_s = layer_pass_estimate(state, cfg, {})
    probe = Probe()
    saved_at = time.monotonic()
    try:
        for trial in range(design.max_trials):
            saved_at = _one_trial(state, looks, meter, cfg, saver, probe, progress, trial, saved_at, log)
            state.trials_done = trial + 1
            saver.save(state)  # every finished trial is on disk
            saved_at = time.monotonic()
            decided = looks.look(trial + 1)
            for cell, _ in decided:
                progress.drop(cell.label)
            for cell in [c for c in state.entries if c not in looks.open]:
                progress.drop(cell.label)
            looks.warn_set_aside(log)
            progress.expect(looks.forecast(trial + 1))
            progress.tail_s = layer_pass_estimate(state, cfg, likely_savers(looks))
            note = f", {len(decided)} row(s) decided" if decided else ""
            progress.milestone(f"trial {trial + 1}/{design.max_trials} done{note}")
            if not looks.open:
                break
        trial = design.max_trials
        while design.sequential and trial < TOP_UP_FACTOR * design.max_trials and (short := looks.short_of_pairs()):
            looks.top_up(short)
            saved_at = _one_trial(state, looks, meter, cfg, saver, probe, progress, trial, saved_at, log)
            trial += 1
            state.trials_done = trial
            saver.save(state)
            saved_at = time.monotonic()
            progress.milestone(f"top-up trial {trial} done: {len(short)} row(s) had fewer than {MIN_PAIRS} pairs "
                               "that stood (their sides saw different load)")
        looks.finish()
    finally:
        progress.close()
    if not state.entries and not state.stopped and not any(b.status == "failed" for b in state.unrun):
        raise ConfigError("nothing to run: no benchmark was applicable (see the notes above)")


def _one_trial(state: RunState, looks: Looks, meter: Any, cfg: RunConfig, saver: RunSaver, probe: Probe,
               progress: Progress, trial: int, saved_at: float, log: Callable[[str], None]) -> float:
    """One window of every open cell; a cell whose plugin raises stops with its status, the others go on.
    Returns when the file was last saved."""
    idle_w = state.run.idle.power_w if state.run.idle else None
    want_s = window_target_s(meter.samplers, MIN_TRIAL_S)
    for e in list(looks.open):  # interleaved: A B C A B C ...
        try:
            items, m = _run_once(e, cfg, meter=meter, trial=trial, probe=probe)
        except (PluginError, NotApplicable) as exc:  # this cell stops; its rounds and the other cells go on
            status = "not-applicable" if isinstance(exc, NotApplicable) else "failed"
            state.stop(e, status, f"{exc} (in trial {trial + 1} of {cfg.trial_count})", log)
            looks.drop(e)
            progress.drop(e.label)
            saver.save(state)
            continue
        e.rounds.append(_round(e, trial, items, m, idle_w))
        if time.monotonic() - saved_at >= SAVE_EVERY_S:
            saver.save(state)
            saved_at = time.monotonic()
        progress.step(e.label)
        if e.workload.can_repeat and 0 < m.duration_s < want_s:
            # ran faster than calibrated (less load now): lengthen the next windows. The duration is the
            # aggregated window's under torch.distributed, so every rank decides alike.
            e.repeats = min(MAX_ITERATIONS, math.ceil(e.repeats * want_s / m.duration_s * 1.1))
    return saved_at


def layer_pass_estimate(state: RunState, cfg: RunConfig, savers: Mapping[str, float]) -> float:
    """Seconds the per-layer pass after the trials will take: each benchmark's profiled runs plus the
    profiler's own set-up and post-processing (``LAYER_OVERHEAD_S`` each), for the progress line; with
    ``--quick``, the baselines and the method rows weighted by how likely each is to save energy
    (``savers``: benchmark key -> probability, ``looks.likely_savers``)."""
    if not cfg.layers:
        return 0.0
    total = 0.0
    for e in state.entries:
        weight = savers.get(e.bench.key, 0.0) if cfg.quick and e.bench.method != "baseline" else 1.0
        if weight <= 0:
            continue
        if e.workload.layers and e.rounds:
            typical, repeats = _layer_runs(e)
            total += weight * (typical * repeats + LAYER_OVERHEAD_S)
    return total


def _layer_runs(e: Cell) -> tuple[float, int]:
    """A benchmark's seconds per run in its trials (a window holds ``rounds[].iterations`` runs) and how many
    runs its profiled window holds: enough for ``LAYER_TARGET_S`` of work, at most ``LAYER_MAX_REPEATS``, one
    for a workload that cannot repeat."""
    per_run = [r.duration_s / max(r.iterations or 1, 1) for r in e.rounds if r.duration_s > 0]
    typical = statistics.median(per_run) if per_run else 0.0
    repeats = max(1, min(LAYER_MAX_REPEATS, math.ceil(LAYER_TARGET_S / typical))) if typical > 0 else 1
    return typical, repeats if e.workload.can_repeat else 1


def layer_pass(state: RunState, meter: Any, cfg: RunConfig, saver: RunSaver, log: Callable[[str], None]) -> None:
    """One profiled run of every benchmark, after the trials, its window's energy split by layer. A failure
    here costs that benchmark its per-layer figures (with a note), never the trials already saved."""
    import torch

    from energybench.measuring.layers import energy_by_layer

    todo = [e for e in state.entries if e.workload.layers and e.rounds]
    if cfg.quick:  # the layers of what changed: each baseline, and the rows that save energy against it
        from energybench.verdicts.baseline import run_verdicts

        saving = {k for k, vs in run_verdicts(state.snapshot()).items() if vs.outcome == "saves"}
        todo = [e for e in todo if e.bench.method == "baseline" or e.bench.key in saving]
    if todo:
        what = " (--quick: the baselines and the rows that save energy)" if cfg.quick else ""
        log(f"attributing energy to layers: one profiled run of each of {len(todo)} benchmarks{what} (not a trial)")
    saved_at = time.monotonic()
    for e in todo:
        torch.manual_seed(cfg.seed)
        repeats = _layer_runs(e)[1]
        try:
            profile = energy_by_layer(e.model.module, partial(plugin_call, e.label, e.workload.run), meter=meter,
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
