"""What a run is asked to do besides its suites: ``RunConfig``, with the defaults of ``energybench run``'s
flags (declared once, in ``energybench.options``), so ``RunConfig(quick=True)`` from Python runs what
``energybench run --quick`` runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from energybench.errors import ConfigError
from energybench.options import QUICK_TRIALS, RUN_OPTIONS, TRIALS, carbon_kwargs, sampler_options
from energybench.verdicts.sequential import Design, design, fixed

__all__ = ["QUICK_IDLE_S", "RunConfig"]

#: One-off costs (distillation, calibration) are measured this many times for an interval; ``--quick`` once.
ONE_OFF_REPEATS = 3
QUICK_ONE_OFF_REPEATS = 1
#: Idle power is measured this long before the trials (``--idle``), shorter with ``--quick``.
IDLE_S = 3.0
QUICK_IDLE_S = 2.0


def _default(name: str) -> Any:
    return RUN_OPTIONS[name].default


@dataclass
class RunConfig:
    """Everything a run needs besides the suites. ``trials`` and ``idle_s`` left as ``None`` take
    ``--quick``'s defaults when ``quick`` is set (``trial_count``, ``idle_seconds``)."""

    quick: bool = False
    trials: int | None = None  # a fixed count: every row gets exactly this many trials
    max_trials: int | None = None  # sequential: the most trials a row gets (default TRIALS, quick QUICK_TRIALS)
    warmup: int = _default("warmup")
    phase: str | None = None
    subjects: Sequence[str] | None = None
    region: str | None = None
    carbon: dict[str, Any] | None = None  # Meter carbon keywords (region, intensity, intensity_csv, pue)
    results_dir: str = "results"
    name: str = _default("name")
    device: str = _default("device")  # one device or several, comma-separated: "cpu,cuda"
    threads: int | None = None
    seed: int = _default("seed")
    idle_s: float | None = None
    cache_dir: str | None = None
    samplers: Sequence[Any] | None = None
    sampler_options: dict[str, Any] | None = None
    save: bool = True
    one_off_repeats: int | None = None  # one-off costs (distillation, calibration), this often (quick: once)
    progress: bool | None = None  # None: only when stderr is a terminal
    stream: TextIO | None = None  # where notes and the progress bar go (stderr)
    embodied: Sequence[Any] = ()  # record.Embodied per device, for the run's SCI (carbon.sci)
    layers: bool = True  # the per-layer attribution pass after the trials
    min_change: float = _default("min_change")  # the smallest change a verdict claims
    between_run_sd: float | None = None  # between-run spread of the verdicts; None: saved runs, else the default
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trial_count(self) -> int:
        """The most trials a row gets."""
        if self.trials is not None:
            return self.trials
        return self.max_trials if self.max_trials is not None else (QUICK_TRIALS if self.quick else TRIALS)

    def design(self) -> Design:
        """When rows are looked at: a fixed count with ``trials``, else a sequential design up to
        ``trial_count`` (``verdicts.sequential``)."""
        return fixed(self.trials) if self.trials is not None else design(self.trial_count)

    @property
    def one_off_count(self) -> int:
        """How many times a method's one-off work is measured: ``one_off_repeats``, else 3 (quick: once)."""
        if self.one_off_repeats is not None:
            return self.one_off_repeats
        return QUICK_ONE_OFF_REPEATS if self.quick else ONE_OFF_REPEATS

    @property
    def idle_seconds(self) -> float:
        return self.idle_s if self.idle_s is not None else (QUICK_IDLE_S if self.quick else IDLE_S)

    @classmethod
    def from_options(cls, values: Mapping[str, Any], **more: Any) -> RunConfig:
        """From resolved option values (``options.from_namespace``), as ``energybench run`` builds it."""
        return cls(quick=values["quick"], trials=values["trials"], max_trials=values["max_trials"],
                   warmup=values["warmup"], phase=values["phase"],
                   subjects=list(values["subjects"]) or None, carbon=carbon_kwargs(values),
                   results_dir=values["results"], name=values["name"], device=values["device"],
                   threads=values["threads"], seed=values["seed"], idle_s=values["idle"],
                   cache_dir=values["cache_dir"], sampler_options=sampler_options(values),
                   save=not values["no_save"], one_off_repeats=values["one_off_repeats"],
                   embodied=values["embodied"], layers=not values["no_layers"], min_change=values["min_change"],
                   between_run_sd=values["between_run_spread"], **more)

    def check(self) -> None:
        """The numeric settings by the command line's rules: NaN, inf, a negative or absurd count is one
        ``ConfigError`` naming the option, never a traceback from torch or ``time.sleep``."""
        values = {"trials": self.trials, "max_trials": self.max_trials, "warmup": self.warmup, "seed": self.seed,
                  "idle": self.idle_s, "one_off_repeats": self.one_off_repeats, "phase": self.phase}
        if self.threads is not None:
            from energybench.options import OPTIONS

            try:
                OPTIONS["threads"].parse(self.threads)
            except ValueError as exc:
                raise ConfigError(f"--threads {exc}") from None
        for name, value in values.items():
            if value is None:
                continue
            opt = RUN_OPTIONS[name]
            try:
                opt.parse(value)
            except ValueError as exc:
                raise ConfigError(f"{opt.cli_flag} {exc}") from None
        if self.trials is not None and self.max_trials is not None:
            raise ConfigError("--trials (a fixed count) and --max-trials (the most a row gets when it stops as soon "
                              "as it is decided) contradict each other: pass one")
