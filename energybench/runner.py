"""Runs benchmark suites as experiments: baseline vs compressed subjects, trials interleaved, saved as we go.

Why it is shaped like this:
* everything that changes the figures is pinned *and recorded* first: thread count, the MHA fast path (off
  for every subject, because ``quantize_dynamic`` and pruning hooks silently change its decision, pytorch
  issue 109987), compile (off), seeds, device, and each subject's dtype;
* idle power is measured before any work, so energy above idle can be reported as a second, labelled figure
  (gross energy stays the headline: the machine draws idle power whether or not you count it);
* all bad input (unknown subject or method, bad knob values) is resolved before the first joule is spent;
* trials run A B C A B C ..., so slow drifts (thermal, other load) hit every subject alike;
* one measurement window per trial; after each trial the whole run is rewritten atomically, so Ctrl-C or a
  crashing plugin never loses a finished trial.

A benchmarks directory declares what to run with modules that define ``SUITES``: a list of ``Suite``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from energybench.distributed.launcher import is_nonzero_rank, launcher_environment
from energybench.errors import ConfigError, EnergybenchError, SamplerError
from energybench.samplers import benchmark_options
from energybench.stats import compare_to_baseline
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


@dataclass
class Suite:
    """One subject family and the compression specs to compare against its baseline.

    ``methods=None`` means the subject's own ``default_methods``; ``options`` are passed to the subject
    (e.g. ``{"lm": {"d_model": 32}}`` to shrink the LM).
    """

    subject: str
    methods: Sequence[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)


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
    device: str = "cpu"
    threads: int | None = None
    seed: int = 0
    idle_s: float = 3.0
    cache_dir: str | None = None
    samplers: Sequence[Any] | None = None
    sampler_options: dict[str, Any] | None = None
    save: bool = True
    progress: bool | None = None  # None: only when stderr is a terminal
    stream: TextIO | None = None  # where notes and the progress bar go (stderr)


# --------------------------------------------------------------------------------------------------------
# Loading and selecting suites

# counters read this often inside a trial give reports a power-over-time curve; a read costs ~10-20 us
# (benchmarks/bench_overhead.py)
TIMELINE_INTERVAL_S = 0.1


def load_suites(path: str | Path) -> list[Suite]:
    """``SUITES`` from every ``*.py`` in a directory (sorted, ``_*`` skipped) or from one file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"benchmarks path {str(p)!r} does not exist; pass a directory like benchmarks/")
    files = sorted(f for f in p.glob("*.py") if not f.name.startswith("_")) if p.is_dir() else [p]
    suites: list[Suite] = []
    for f in files:
        if p.is_dir() and not _declares_suites(f):
            continue  # other benchmark scripts (pytest-benchmark files, tools) are not executed
        spec = importlib.util.spec_from_file_location(f"energybench_suites_{f.stem}", f)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except EnergybenchError:
            raise
        except Exception as exc:
            raise ConfigError(f"cannot load benchmarks file {f}: {type(exc).__name__}: {exc}") from None
        for s in getattr(module, "SUITES", []):
            suites.append(s if isinstance(s, Suite) else Suite(**s))
    if not suites:
        raise ConfigError(f"no SUITES found in {p} (define SUITES = [Suite('lm'), ...] in a benchmarks/*.py)")
    return suites


def _declares_suites(path: Path) -> bool:
    """Whether a file assigns ``SUITES`` at top level (checked with ``ast``, without running it)."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "SUITES" for t in targets):
            return True
    return False


def select(suites: list[Suite], wanted: Sequence[str] | None) -> list[Suite]:
    """Apply ``--subjects``: ``lm`` (whole family), ``lm/int8-dynamic`` (one spec) or ``int8-dynamic`` (that
    spec in every family). A registered family that no suite mentions is run with its defaults."""
    if not wanted:
        return suites
    by_name = {s.subject: s for s in suites}
    chosen: dict[str, Suite] = {}
    known_subjects = subjects()
    known_methods = methods()
    for item in wanted:
        fam, _, spec = item.partition("/")
        if fam in known_subjects or fam in by_name:
            base = by_name.get(fam) or Suite(fam)
            cur = chosen.setdefault(fam, Suite(fam, [] if spec else base.methods, base.options))
            if spec:
                if cur.methods is not None:
                    cur.methods = [*cur.methods, spec] if spec != "baseline" else list(cur.methods)
            continue
        if not spec:
            try:
                resolve_method(fam, known_methods)
            except ConfigError:
                known = ", ".join(sorted(known_subjects))
                raise ConfigError(
                    f"unknown subject or method {item!r} (subjects: {known}); run 'energybench subjects'"
                ) from None
            for s in suites:
                cur = chosen.setdefault(s.subject, Suite(s.subject, [], s.options))
                cur.methods = [*(cur.methods or []), fam]
            continue
        get_subject(fam, known_subjects)  # raises the one-line unknown-subject error
    return list(chosen.values())


# --------------------------------------------------------------------------------------------------------
# Progress


class Progress:
    """A one-line progress bar on stderr (no dependency); plain lines per trial when not a terminal."""

    def __init__(self, total: int, stream: TextIO, enabled: bool | None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream
        self.tty = enabled if enabled is not None else stream.isatty()
        self.t0 = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.tty:
            return
        width = 28
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {elapsed:4.0f}s eta {eta:3.0f}s {label[:40]:<40}")
        self.stream.flush()

    def trial_done(self, trial: int, trials: int) -> None:
        if not self.tty:
            self.stream.write(f"energybench: trial {trial + 1}/{trials} done ({self.done}/{self.total} windows)\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self.done:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------------------
# The run


@dataclass
class _Entry:
    subject: Subject
    model: Model
    workload: Workload
    record: dict[str, Any]


def pin_settings(cfg: RunConfig) -> dict[str, Any]:
    """Pin threads, MHA fast path and seeds; return what was set, for the results file."""
    import torch

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
    }


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; use --device cpu or --device cuda")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda but no CUDA GPU is visible to torch here; use --device cpu")


def run_suites(suites: list[Suite], cfg: RunConfig) -> dict[str, Any]:
    """Run the suites and return the run record (also saved under ``cfg.results_dir`` as it grows)."""
    from energybench.meter import Meter

    stream = cfg.stream or sys.stderr

    def log(msg: str) -> None:
        stream.write(f"energybench: {msg}\n")
        stream.flush()

    if cfg.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {cfg.trials}")
    if cfg.phase is not None and cfg.phase not in PHASES:
        raise ConfigError(f"unknown phase {cfg.phase!r}; use --phase train or --phase inference")
    check_device(cfg.device)
    plan = _resolve(suites)  # every name and knob checked before any work
    settings = pin_settings(cfg)
    meter = Meter(
        samplers=cfg.samplers,
        options=benchmark_options(cfg.sampler_options),
        counter_interval=TIMELINE_INTERVAL_S,
        **(cfg.carbon or {"region": cfg.region}),
    )
    if not meter.samplers:
        meter.close()
        raise SamplerError("no energy sampler can read on this machine; `energybench sensors` says why")
    saver = _Saver(cfg, log)
    try:
        run = _new_run(meter, settings)
        saver.run = run
        run["idle"] = _measure_idle(meter, cfg, log)
        ctx = Context(device=cfg.device, seed=cfg.seed, quick=cfg.quick, cache_dir=cfg.cache_dir, meter=meter,
                      log=log)
        entries = _prepare(plan, ctx, cfg, run, log)
        saver.save()
        _warm_up(entries, cfg, run, log)
        _trials(entries, meter, cfg, run, saver, stream)
        finalize(run)
        saver.save()
        return run
    except BaseException:
        if saver.run is not None and any(b["rounds"] for b in saver.run.get("benchmarks", [])):
            finalize(saver.run)
            path = saver.save()
            n = sum(len(b["rounds"]) for b in saver.run["benchmarks"])
            log(f"kept {n} finished trial(s) in {path}")
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


def _new_run(meter: Any, settings: dict[str, Any]) -> dict[str, Any]:
    from energybench.machine import commit_info, machine_info

    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(meter.samplers),
        "commit": commit_info(),
        "environment": {"settings": settings, "launcher": launcher_environment()},
        "carbon": None,
        "idle": None,
        "subjects": {},
        "notes": [],
        "benchmarks": [],
    }


def _measure_idle(meter: Any, cfg: RunConfig, log: Callable[[str], None]) -> dict[str, Any] | None:
    if cfg.idle_s <= 0:
        return None
    log(f"measuring idle power for {cfg.idle_s:g} s (keep the machine quiet)")
    with meter.window("idle") as w:
        time.sleep(cfg.idle_s)
    m = w.result
    return {"power_w": m.mean_power_w, "duration_s": m.duration_s, "energy_j": m.energy_j, "source": m.source}


def _plugin_call(what: str, fn: Callable[[], Any]) -> Any:
    """Run plugin code; anything but our own errors becomes one clear line naming the plugin."""
    try:
        return fn()
    except (EnergybenchError, NotApplicable, KeyboardInterrupt):
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise PluginError(f"{what} raised {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")) from exc


def _prepare(plan: Any, ctx: Context, cfg: RunConfig, run: dict[str, Any], log: Callable[[str], None]) -> list[_Entry]:
    entries: list[_Entry] = []
    for subject, suite, resolved in plan:
        reason = subject.unavailable_reason()
        if reason:
            log(reason)
            run["notes"].append(reason)
            continue
        ctx.options = suite.options
        baseline: Model = _plugin_call(f"subject {subject.name!r} (baseline)", lambda s=subject: s.baseline(ctx))
        models: list[Model] = [baseline]
        for spec, method, params in resolved:
            log(f"{subject.name}: applying {spec}")
            try:
                model = _plugin_call(f"method {spec!r} on {subject.name!r}",
                                     lambda m=method, p=params, s=subject, b=baseline: m.apply(b, s, p, ctx))
            except NotApplicable as why:
                note = f"{subject.name}/{spec}: not applicable: {why}"
                log(note)
                run["notes"].append(note)
                continue
            model.method = spec
            model.params = {**params, **model.params}
            models.append(model)
        run["subjects"][subject.name] = {"description": subject.description, **_safe(subject.metadata)}
        for model in models:
            quality = _plugin_call(f"quality of {subject.name!r}/{model.method or 'baseline'}",
                                   lambda m=model, s=subject, b=baseline: s.quality(m, b, ctx))
            size = model_size(model.module)
            workloads = _plugin_call(f"workloads of {subject.name!r}", lambda m=model, s=subject: s.workloads(m, ctx))
            for wl in workloads:
                if cfg.phase and wl.phase != cfg.phase:
                    continue
                record = {
                    "name": f"{subject.name}/{wl.name}",
                    "subject": model.method or "baseline",
                    "method": model.method.split("-")[0] if model.method else None,
                    "phase": wl.phase,
                    "item_unit": wl.item_unit,
                    "params": {**model.params, "dtype": model.dtype},
                    "quality": quality.to_dict(),
                    "size": size,
                    "rounds": [],
                    "stats": {},
                    "warnings": [],
                    "extra": {"notes": list(model.notes),
                              "workload": {k: v for k, v in wl.metadata.items() if not k.startswith("_")}},
                }
                if model.one_off_energy_j is not None or model.one_off:
                    record["extra"]["one_off"] = model.one_off
                entries.append(_Entry(subject, model, wl, record))
                run["benchmarks"].append(record)
    if not entries:
        raise ConfigError("nothing to run: every subject was skipped or filtered out (see the notes above)")
    return entries


def _safe(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return dict(fn())
    except Exception as exc:  # identity is nice to have, it must not cost the run
        return {"metadata_error": str(exc)}


def _warm_up(entries: list[_Entry], cfg: RunConfig, run: dict[str, Any], log: Callable[[str], None]) -> None:
    for e in list(entries):
        try:
            for _ in range(cfg.warmup):
                _run_once(e, cfg, warm=True)
        except NotApplicable as why:
            note = f"{e.record['name']} [{e.record['subject']}]: not applicable: {why}"
            log(note)
            run["notes"].append(note)
            entries.remove(e)
            run["benchmarks"].remove(e.record)


def _run_once(e: _Entry, cfg: RunConfig, warm: bool = False, meter: Any = None, trial: int = 0) -> Any:
    import torch

    what = f"{e.record['name']} [{e.record['subject']}]"
    if e.workload.setup is not None:
        _plugin_call(what, e.workload.setup)
    torch.manual_seed(cfg.seed + trial)
    if meter is None:
        return _plugin_call(what, e.workload.run), None
    if cfg.device == "cuda":
        torch.cuda.synchronize()
    window = f"trial{trial}:{what}"
    meter.begin(window)
    try:
        items = _plugin_call(what, e.workload.run)
        if cfg.device == "cuda":
            torch.cuda.synchronize()
    finally:
        result = meter.end(window)
    return items, result


def _trials(entries: list[_Entry], meter: Any, cfg: RunConfig, run: dict[str, Any], saver: _Saver,
            stream: TextIO) -> None:
    progress = Progress(len(entries) * cfg.trials, stream, cfg.progress)
    idle_w = (run.get("idle") or {}).get("power_w")
    try:
        for trial in range(cfg.trials):
            for e in entries:  # interleaved: A B C A B C ...
                items, m = _run_once(e, cfg, meter=meter, trial=trial)
                items = items or 1  # may be fractional: MiniLM counts in thousands of sentences
                rnd: dict[str, Any] = {
                    "round": trial,
                    "energy_j": m.energy_j,
                    "duration_s": m.duration_s,
                    "items": items,
                    "co2e_g": m.co2e_g,
                    "source": m.source,
                    "domains": m.energy_by_domain(),
                }
                if idle_w is not None:
                    rnd["energy_above_idle_j"] = max(0.0, m.energy_j - idle_w * m.duration_s)
                state = e.workload.metadata.get("_state")
                if state:
                    rnd["workload"] = {k: v for k, v in state.items() if isinstance(v, int | float)}
                if m.warnings:
                    rnd["warnings"] = list(m.warnings)
                if m.timeline:  # power over time, for the report's plot
                    rnd["timeline"] = [[round(t, 4), {k: round(w, 4) for k, w in watts.items()}]
                                       for t, watts in m.timeline]
                if run["carbon"] is None and m.carbon is not None:
                    c = m.carbon
                    run["carbon"] = {"region": c.region, "intensity_g_per_kwh": c.intensity_g_per_kwh,
                                     "year": c.year, "source": c.source, "pue": c.pue, "method": c.method}
                e.record["rounds"].append(rnd)
                saver.save()
                progress.step(f"{e.record['name']} [{e.record['subject']}]")
            progress.trial_done(trial, cfg.trials)
    finally:
        progress.close()


class _Saver:
    """First save claims ``NNNN_<name>.json``; later saves atomically rewrite that same file."""

    def __init__(self, cfg: RunConfig, log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.log = log
        self.path: Path | None = None
        self.run: dict[str, Any] | None = None

    def save(self) -> Path | None:
        if not self.cfg.save or self.run is None or is_nonzero_rank():
            return None  # under torch.distributed every rank holds the aggregated figures; rank 0 writes
        from energybench import storage

        if self.path is None:
            self.path = storage.save_run(self.run, self.cfg.results_dir, self.cfg.name)
            self.run["run_id"] = self.path.stem
            self.run["name"] = storage.slug(self.cfg.name)
            self.run["schema"], self.run["version"] = storage.SCHEMA, storage.VERSION
        else:
            storage.validate_run(self.run, where="run to save")
            storage.write_json_atomic(self.path, self.run)
        return self.path


# --------------------------------------------------------------------------------------------------------
# Statistics and the verdict


def finalize(run: dict[str, Any]) -> None:
    """Fill ``stats``, ratios to the baseline with CIs, verdicts and break-even points."""
    from energybench import stats

    base_by_name: dict[str, dict[str, Any]] = {}
    for b in run["benchmarks"]:
        if b["subject"] == "baseline":
            base_by_name[b["name"]] = b
    for b in run["benchmarks"]:
        rounds = b["rounds"]
        if not rounds:
            continue
        per_item = [stats.per_item(r["energy_j"], r["items"]) for r in rounds]
        b["stats"] = stats.round_stats(rounds)
        b["stats"]["throughput_items_per_s"] = stats.median(
            [r["items"] / r["duration_s"] for r in rounds if r["duration_s"]])
        if all("energy_above_idle_j" in r for r in rounds):
            b["stats"]["energy_above_idle_per_item_j"] = stats.summarize(
                [stats.per_item(r["energy_above_idle_j"], r["items"]) for r in rounds])
        warning = stats.stability_warning(per_item)
        # finalize runs after every trial: drop the previous stability verdict (stats words it "spread ...")
        b["warnings"] = [w for w in b["warnings"] if not w.startswith("spread ")] + ([warning] if warning else [])
        base = base_by_name.get(b["name"])
        if base is None or base is b or not base["rounds"]:
            continue
        base_items = [stats.per_item(r["energy_j"], r["items"]) for r in base["rounds"]]
        b["extra"]["vs_baseline"] = compare_to_baseline(base_items, per_item)
        one_off = b["extra"].get("one_off") or {}
        if one_off.get("energy_j") is not None and b["phase"] == "inference":
            saving = stats.median(base_items) - stats.median(per_item)
            b["extra"]["break_even_items"] = one_off["energy_j"] / saving if saving > 0 else None
