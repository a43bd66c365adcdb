"""The ``energy`` pytest fixture object: calibrated, warmed-up, repeated measurement windows around a callable.

Why calibration: an energy counter only changes every ``resolution_s`` (CPU-time ticks: 10 ms; NVML: ~0.1 s),
so a window around one fast call reads 0 J or one tick. The fixture repeats the call ``iterations`` times
inside each window so that every window lasts at least ``max(min_time, WINDOW_RESOLUTIONS x resolution)``
of the slowest active sampler (``energybench.run.calibration``, shared with ``energybench run``). Each round
records its window's figures and its call count (``Round.iterations``); tables and gates divide (per call),
totals add. Rounds are separate windows, so the gate has several independent values to test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from energybench.errors import ConfigError, EnergybenchError
from energybench.measurement import Measurement
from energybench.measuring.noise import Probe
from energybench.record import BASELINE, PHASES, Benchmark, Quality, Round
from energybench.record.parse import MAX_FIGURE
from energybench.run.calibration import WINDOW_RESOLUTIONS, calibrate

#: Minimum round window in seconds even for exact counters: shorter windows are dominated by edge reads.
DEFAULT_MIN_TIME_S = 0.1
DEFAULT_ROUNDS = 10
DEFAULT_WARMUP_ROUNDS = 1
MAX_ITERATIONS = 10_000_000
MAX_ROUNDS = 100_000
MAX_MIN_TIME_S = 3600.0
MAX_ITEMS = MAX_FIGURE  # a run file refuses larger figures; a round holds items x iterations (_check_window_items)
NO_REGION_NOTE = "no CO2e: no region given"


@dataclass(frozen=True)
class EnergyOptions:
    """The knobs of one benchmark; the marker ``@pytest.mark.energy(...)`` takes exactly these keywords."""

    rounds: int | None = None
    warmup_rounds: int = DEFAULT_WARMUP_ROUNDS
    iterations: int | None = None  # None: calibrate
    min_time: float = DEFAULT_MIN_TIME_S
    items: float = 1
    item_unit: str | None = None
    phase: str = "other"
    method: str = BASELINE
    family: str | None = None
    subject: str | None = None  # today's spelling of ``method``, kept as an alias
    name: str | None = None

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def updated(self, values: Mapping[str, Any], where: str) -> EnergyOptions:
        unknown = sorted(set(values) - set(self.keys()))
        if unknown:
            raise ConfigError(
                f"{where}: unknown keyword(s) {', '.join(unknown)}; allowed: {', '.join(self.keys())}"
            )
        new = replace(self, **dict(values))
        new.check(where)
        return new

    def check(self, where: str) -> None:
        """Every knob by type and range, so a typo in a marker is one line naming it, and every record the
        fixture writes can be read back (counts and items stay within what a run file accepts)."""
        def positive_int(name: str, value: Any, high: int, allow_zero: bool = False) -> None:
            low = 0 if allow_zero else 1
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not low <= value <= high):
                raise ConfigError(f"{where}: {name} must be an integer from {low} to {high}, got {_show(value)}")

        positive_int("rounds", self.rounds, MAX_ROUNDS)
        positive_int("iterations", self.iterations, MAX_ITERATIONS)
        positive_int("warmup_rounds", self.warmup_rounds, MAX_ROUNDS, allow_zero=True)
        if (not isinstance(self.min_time, int | float) or isinstance(self.min_time, bool)
                or not 0 <= self.min_time <= MAX_MIN_TIME_S):
            raise ConfigError(f"{where}: min_time must be seconds from 0 to {MAX_MIN_TIME_S:g}, got "
                              f"{_show(self.min_time)}")
        _check_items(self.items, where)
        if self.phase not in PHASES:
            raise ConfigError(f"{where}: phase must be one of {', '.join(PHASES)}, got {_show(self.phase)}")
        for name in ("item_unit", "method", "family", "subject", "name"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: {name} must be text, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_items(items: Any, where: str) -> None:
    if (not isinstance(items, int | float) or isinstance(items, bool) or not 0 < items <= MAX_ITEMS):
        raise ConfigError(f"{where}: items must be a positive number up to {MAX_ITEMS:g} (items processed per "
                          f"call), got {_show(items)}")


def _check_window_items(items: float, iterations: int, where: str) -> None:
    """A round records its window's items (per call x calls), which a run file must be able to hold."""
    if items * iterations > MAX_FIGURE:
        raise ConfigError(f"{where}: {items:g} items per call x {iterations} calls in a round is beyond what a run "
                          f"file holds ({MAX_FIGURE:g}); count items in larger units (item_unit='1M tokens')")


@dataclass
class _Round:
    measurement: Measurement
    iterations: int
    load: dict[str, float]
    flags: tuple[str, ...]


@dataclass
class EnergyFixture:
    """What a test receives as ``energy``: call it like pytest-benchmark's ``benchmark``.

    ``energy(fn, *args, **kwargs)`` returns ``fn``'s result; ``energy.pedantic(...)`` gives full control;
    ``energy.items = N`` (per call) turns on energy per item; ``energy.extra_info`` is saved with the result.
    """

    nodeid: str
    meter_factory: Callable[[], Any]  # -> energybench.measuring.meter.Meter, created once per session
    resolution_s: Callable[[], float]
    before_round: Callable[[], None] | None = None  # an A/B session hands the turn over here
    #: an A/B session's ``Turns.settle_rounds``: after the asked-for rounds, how many both sides measure in all
    #: once the pairs the noise guard flagged are replaced (``energy(fn)`` only: ``pedantic`` is exact)
    settle_rounds: Callable[[str, int, list[dict[str, float]]], int] | None = None
    options: EnergyOptions = field(default_factory=EnergyOptions)
    params: dict[str, Any] | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] | None = None
    has_error: bool = False
    #: an unexpected exception from energybench's own code (the meter), not the test's: the session ends with
    #: pytest's internal-error code instead of looking like a failed test
    internal_error: BaseException | None = None
    disabled: bool = False  # --energy-disable: run the function once, unmeasured, and record nothing
    _rounds: list[_Round] = field(default_factory=list)
    _mode: str | None = None

    # -- knobs users set in the test ------------------------------------------------------------------

    @property
    def items(self) -> float:
        return self.options.items

    @items.setter
    def items(self, value: float) -> None:
        _check_items(value, "energy.items")
        if self._rounds:  # set after the rounds ran: they are recorded with it
            _check_window_items(value, max(r.iterations for r in self._rounds), "energy.items")
        self.options = replace(self.options, items=value)

    @property
    def phase(self) -> str:
        return self.options.phase

    @phase.setter
    def phase(self, value: str) -> None:
        self.options = self.options.updated({"phase": value}, "energy.phase")

    @property
    def method(self) -> str:
        """The compression method this test measures (``baseline`` unless the test says otherwise)."""
        return self.options.subject or self.options.method

    @method.setter
    def method(self, value: str) -> None:
        self.options = replace(self.options, method=str(value), subject=None)

    subject = method  # today's spelling

    # -- running ----------------------------------------------------------------------------------------

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calibrate, warm up and measure ``fn(*args, **kwargs)``; return its result."""
        self._claim("energy(...)")
        if self.disabled:
            return fn(*args, **kwargs)

        def target() -> Any:
            return fn(*args, **kwargs)

        try:
            iterations = self.options.iterations or self._calibrate(target)
            return self._run(lambda: (target, None), self._rounds_wanted(), self.options.warmup_rounds, iterations,
                             settle=self.settle_rounds)
        except BaseException:
            self.has_error = True
            raise

    def pedantic(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        setup: Callable[[], Any] | None = None,
        teardown: Callable[..., Any] | None = None,
        rounds: int | None = None,
        warmup_rounds: int | None = None,
        iterations: int = 1,
    ) -> Any:
        """Exactly ``rounds`` windows of ``iterations`` calls each (no calibration), like pytest-benchmark.

        ``setup()`` runs outside the window before each round and may return ``(args, kwargs)``; it needs
        ``iterations=1`` because each call would need fresh arguments.
        """
        self._claim("energy.pedantic(...)")
        opts = self.options.updated(
            {k: v for k, v in {"rounds": rounds, "warmup_rounds": warmup_rounds, "iterations": iterations}.items()
             if v is not None},
            "energy.pedantic",
        )
        if setup is not None and iterations > 1:
            raise ConfigError("energy.pedantic: setup needs iterations=1 (each call gets fresh arguments)")

        def make_call() -> tuple[Callable[[], Any], Callable[[], Any] | None]:
            a, kw = args, dict(kwargs or {})
            if setup is not None:
                got = setup()
                if got is not None:
                    if args or kwargs:
                        raise ConfigError("energy.pedantic: setup returned arguments and args/kwargs were given")
                    a, kw = got
            done = (lambda: teardown(*a, **kw)) if teardown is not None else None
            return (lambda: target(*a, **kw)), done

        if self.disabled:  # once, with its set-up and tear-down, and no window
            call, done = make_call()
            result = call()
            if done is not None:
                done()
            return result
        try:
            return self._run(make_call, opts.rounds or self._rounds_wanted(), opts.warmup_rounds, opts.iterations or 1)
        except BaseException:
            self.has_error = True
            raise

    def _claim(self, mode: str) -> None:
        if self._mode:
            self.has_error = True
            raise ConfigError(f"the energy fixture can be used once per test; it was already used as {self._mode}")
        self._mode = mode

    def _rounds_wanted(self) -> int:
        return self.options.rounds or DEFAULT_ROUNDS

    def window_target_s(self) -> float:
        """How long each round's window must last on the active samplers."""
        return max(float(self.options.min_time), WINDOW_RESOLUTIONS * self._ours(self.resolution_s))

    def _ours(self, fn: Callable[[], Any]) -> Any:
        """Call energybench's own code (not the test's), noting an unexpected exception as internal."""
        try:
            return fn()
        except EnergybenchError:
            raise
        except Exception as exc:
            self.internal_error = exc
            raise

    def _calibrate(self, target: Callable[[], Any]) -> int:
        """Iterations per window so that a window lasts at least ``window_target_s`` (see
        ``energybench.run.calibration.calibrate``, which agrees across ranks under torch.distributed)."""
        return calibrate(target, self.window_target_s())

    def _run(
        self,
        make_call: Callable[[], tuple[Callable[[], Any], Callable[[], Any] | None]],
        rounds: int,
        warmup_rounds: int,
        iterations: int,
        settle: Callable[[str, int, list[dict[str, float]]], int] | None = None,
    ) -> Any:
        """Warm-up rounds (unmeasured), then one meter window per round around ``iterations`` calls. With
        ``settle`` (an A/B session), the rounds both sides measure are settled after the asked-for ones."""
        _check_window_items(self.options.items, iterations, self.nodeid)
        meter = self._ours(self.meter_factory)
        window = f"energy:{self.nodeid}"
        result = None
        planned = warmup_rounds + rounds
        holding_turn = False  # settling hands the turn over and returns holding it
        i = 0
        while i < planned:
            call, done = make_call()
            if i < warmup_rounds:
                for _ in range(iterations):
                    result = call()
            else:
                if self.before_round is not None and not holding_turn:
                    self.before_round()
                holding_turn = False
                probe = Probe()
                probe.start()
                self._ours(lambda: meter.begin(window))
                try:
                    for _ in range(iterations):
                        result = call()
                finally:
                    m = self._ours(lambda: meter.end(window))
                    load, flags = probe.stop()
                self._rounds.append(_Round(m, iterations, load, flags))
            if done is not None:
                done()
            i += 1
            if settle is not None and i == planned and i > warmup_rounds:
                planned = warmup_rounds + settle(self.nodeid, rounds, [r.load for r in self._rounds])
                holding_turn = True
        return result

    # -- the record saved in the results file -----------------------------------------------------------

    @property
    def used(self) -> bool:
        return bool(self._rounds)

    def record(self) -> Benchmark:
        """This test's benchmark for the results file: each round is its window (all ``iterations`` calls and
        their items), so totals over rounds are what was measured; per-call figures are derived."""
        o = self.options
        rounds = []
        warnings: list[str] = []
        for i, r in enumerate(self._rounds):
            m = r.measurement
            rounds.append(replace(Round.from_measurement(m, index=i, items=float(o.items) * r.iterations,
                                                         iterations=r.iterations, load=r.load, flags=r.flags),
                                  warnings=()))
            for w in m.warnings:
                if not w.startswith(NO_REGION_NOTE) and w not in warnings:
                    warnings.append(w)
        family, _, workload = (o.name or self.nodeid).partition("::")
        partial = Benchmark(name="", rounds=tuple(rounds)).partial_warning
        if partial:
            warnings.insert(0, partial)
        return Benchmark(
            name=o.name or self.nodeid, method=self.method, method_name=self.method, family=o.family or family,
            workload=workload or family, phase=o.phase, item_unit=o.item_unit, params=self.params or {},
            quality=_quality(self.quality), rounds=tuple(rounds), warnings=tuple(warnings),
            extra={"iterations": self._rounds[0].iterations if self._rounds else None,
                   "warmup_rounds": o.warmup_rounds, "mode": self._mode, **self.extra_info},
        )


def _quality(q: Mapping[str, Any] | None) -> Quality | None:
    """A test's ``energy.quality = {"metric": ..., "value": ..., "higher_is_better": ...}``, if it set one."""
    if not q or q.get("value") is None:
        return None
    extra = {k: v for k, v in q.items() if k not in ("metric", "value", "higher_is_better", "baseline")}
    return Quality(str(q.get("metric", "quality")), float(q["value"]), bool(q.get("higher_is_better", True)),
                   q.get("baseline"), extra)
