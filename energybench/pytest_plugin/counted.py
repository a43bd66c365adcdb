"""``--energy-meter counted``: the pytest session runs again under callgrind, each benchmark's calls counted.

Why a second process: callgrind must be there from the interpreter's first instruction, so the pytest a user
starts (the *parent*) cannot count itself. Before collecting anything (``pytest_cmdline_main``) it starts the
same command line again, ``python -m pytest ARGS``, under valgrind with instrumentation off
(``energybench.counted.session_invocation``), waits, and exits with its status; the user sees the child's
output. In the child, start-up, imports, collection, fixtures and every other test run uninstrumented (several
times slower than plain, never counted), and other tests' subprocesses run natively. Only the ``energy``
fixture's rounds are counted, each between two client requests (``energybench.counted.meter``), so each
benchmark's figure is its calls alone.

Rounds are ``modeled`` and keep their window's per-event counts (``round["counted"]``) next to the joules,
and the benchmark keeps the whole profile (``extra["counted"]``): a run can be re-priced without running it
again. Counts repeat, so a benchmark needs two rounds (``COUNTED_ROUNDS``) and a call count set by counting
(``CountedMeter.calibrate``); a marker's ``rounds=``/``iterations=`` still decide when given. With ``--energy``,
pytest-benchmark's own rounds are counted as one window, its timing loop included (``CountedBenchmarkTap``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import pytest

from energybench.counted.errors import CountedError
from energybench.counted.meter import CountedMeter, round_record
from energybench.counted.profile import Profile, resolve_profile
from energybench.counted.result import CountedResult
from energybench.counted.runner import dump_dir, session_invocation
from energybench.counted.valgrind import KEEP_ENV, MODE_ENV, OUT_DIR_ENV, OUT_PREFIX, valgrind_failure
from energybench.pytest_plugin.benchmark_bridge import BenchmarkEnergyTap
from energybench.pytest_plugin.fixture import EnergyFixture, _Round
from energybench.record import Benchmark

METERS = ("sampled", "counted")
#: The options that take a value (``check_rootdir`` must know them).
VALUE_FLAGS = ("--energy-meter", "--energy-profile")
#: Rounds per benchmark unless asked for: counted rounds repeat, so two are enough for a separate-run gate
#: (whose test needs two values a side; the spread it allows for is the counted runs', ``verdicts.drift``).
COUNTED_ROUNDS = 2
#: Options that run no test, or none of the energy benchmarks: no reason to start valgrind.
_NOTHING_TO_COUNT = ("help", "version", "collectonly", "showfixtures", "show_fixtures_per_test", "markers",
                     "energy_disable", "energy_skip")


def add_options(group: Any) -> None:
    group.addoption("--energy-meter", choices=METERS, default="sampled",
                    help="sampled (default): read the energy samplers; counted: run the session under valgrind "
                         "(callgrind) and model each benchmark's energy from its counted instructions and cache "
                         "misses: the same on every run, 100-2,000x slower (docs: Counted energy)")
    group.addoption("--energy-profile", metavar="FILE", default=None,
                    help="with --energy-meter counted: per-event energies from `energybench calibrate` (default "
                         "$ENERGYBENCH_COUNTED_PROFILE, else the built-in horowitz-45nm table)")


def wanted(config: pytest.Config) -> bool:
    return config.getoption("energy_meter", "sampled") == "counted"


def in_counted_child(environ: Any = None) -> bool:
    """Whether this process is the session the parent started under the counted runner."""
    env = os.environ if environ is None else environ
    return bool(env.get(OUT_DIR_ENV)) and env.get(MODE_ENV) == "windows"


def rerun_under_valgrind(config: pytest.Config) -> int | None:
    """``pytest_cmdline_main`` of the parent: run this session again under callgrind and return its exit
    status; ``None`` (pytest goes on as usual) in the child, or when nothing would be counted."""
    if not wanted(config) or in_counted_child() or any(getattr(config.option, o, False) for o in _NOTHING_TO_COUNT):
        return None
    try:
        profile = resolve_profile(config.getoption("energy_profile"))  # a bad profile fails before valgrind starts
        keep = os.environ.get(KEEP_ENV)
        with dump_dir(Path(keep) if keep else None) as out_dir:
            return _run_child(config, profile, out_dir)
    except CountedError as exc:
        raise pytest.UsageError(f"energybench: {exc}") from None


def _run_child(config: pytest.Config, profile: Profile, out_dir: Path) -> int:
    argv = [sys.executable, "-m", "pytest", *map(str, config.invocation_params.args)]
    inv = session_invocation(argv, out_dir, geometry=profile.cache, trace_children=False)
    print("energybench: --energy-meter counted: running this session again under valgrind (callgrind); only the "
          "energy benchmarks' calls are counted", file=sys.stderr, flush=True)
    for warning in inv.warnings:
        print(f"energybench: warning: {warning}", file=sys.stderr)
    child = subprocess.Popen(inv.argv, env=inv.env, cwd=config.invocation_params.dir)
    code = _wait(child)
    if code != 0 and not any(out_dir.glob(f"{OUT_PREFIX}.*")):
        why = valgrind_failure(out_dir)
        if why:
            raise CountedError(f"valgrind could not run the session ({why}): check that `valgrind --tool=callgrind "
                               f"{sys.executable} -c pass` runs here")
    return code if code >= 0 else 128 - code


def _wait(child: subprocess.Popen[Any]) -> int:
    """Wait for the child session. Ctrl-C reaches it as it reaches us (one process group); a SIGTERM sent to us
    alone (a CI timeout) is passed on. Either way the child finishes its session (saving what finished) and its
    exit status becomes ours."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: child.send_signal(signum)) if main else None
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def use_counted_meter(es: Any) -> None:
    """``pytest_configure``: give the session ``es`` the counted meter when asked for (checked before any test)."""
    config = es.config
    if not wanted(config):
        if config.getoption("energy_profile", None):
            raise CountedError("--energy-profile prices counted events: use it with --energy-meter counted")
        return
    if es.turns is not None:
        raise CountedError("--energy-meter counted needs no A/B session (counts repeat across separate runs): "
                           "save two counted runs and compare them")
    es.meter = CountedSessionMeter(resolve_profile(config.getoption("energy_profile")), es.provider)
    # progress lines come when the clock says: what they allocate would move the allocator's state, and with it
    # the instructions of the next windows' allocations, between one run and the next
    es.progress.every_s = math.inf


class CountedSessionMeter:
    """What ``EnergySession.meter`` is under ``--energy-meter counted``: the counted meter, attached on first use
    (an unattached session, e.g. one not started by the parent, fails the benchmark with how to start it)."""

    def __init__(self, profile: Profile, provider: Any) -> None:
        self.profile = profile
        self.provider = provider
        self.meter: CountedMeter | None = None
        self.thread_state: dict[str, Any] = {}
        self.notes: list[str] = []

    def get(self) -> CountedMeter:
        if self.meter is None:
            from energybench.measuring import threads

            try:
                self.meter = CountedMeter.attach(self.profile, self.provider)
            except CountedError as exc:
                pytest.fail(f"energybench: {exc}", pytrace=False)
            self.thread_state = threads.current()
        return self.meter

    @staticmethod
    def resolution_s() -> float:
        return 0.0  # counts have no resolution in time


def is_counted(es: Any) -> bool:
    return isinstance(es.meter, CountedSessionMeter)


@dataclass
class CountedEnergyFixture(EnergyFixture):
    """The ``energy`` fixture under ``--energy-meter counted``: the same API, rounds counted instead of sampled.

    Each round runs its calls inside the counted meter's window (one uncounted warm-up call first, with fresh
    arguments when ``pedantic`` has a ``setup``); warm-up rounds run as usual, uncounted. No A/B turns (refused
    at configure) and no load probe: nothing else may run while a window counts.
    """

    counted: list[CountedResult] = field(default_factory=list)
    last_value: Any = None  # what the last counted call returned

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """As ``EnergyFixture.__call__``, with ``fn`` itself counted when it takes no arguments, else a
        ``functools.partial`` (a closure around ``fn(*args, **kwargs)`` costs ~800 instructions a call)."""
        self._claim("energy(...)")
        if self.disabled:
            return fn(*args, **kwargs)
        target = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        try:
            iterations = self.options.iterations or self._calibrate(target)
            return self._run(lambda: (target, None), self._rounds_wanted(), self.options.warmup_rounds, iterations)
        except BaseException:
            self.has_error = True
            raise

    def _rounds_wanted(self) -> int:
        return self.options.rounds or COUNTED_ROUNDS

    def _calibrate(self, target: Callable[[], Any]) -> int:
        """Calls per round, by counting one call (``CountedMeter.calibrate``). That window is not a round: it
        comes before the warm-up, and a function's first calls can cost more (1.3% more instructions in the
        second call of a plain loop than in its fifth, in this project's tests)."""
        meter: CountedMeter = self._ours(self.meter_factory)
        with _one_line():
            return meter.calibrate(target, f"energy:{self.nodeid}")

    def _keep(self, counted: CountedResult, measurement: Any, value: Any) -> None:
        self.counted.append(counted)
        self._rounds.append(_Round(measurement, counted.iterations, {}, ()))
        self.last_value = value

    def _run(self, make_call: Callable[[], tuple[Callable[[], Any], Callable[[], Any] | None]], rounds: int,
             warmup_rounds: int, iterations: int, settle: Any = None) -> Any:
        meter: CountedMeter = self._ours(self.meter_factory)
        result = self.last_value
        for _ in range(warmup_rounds):
            call, done = make_call()
            for _ in range(iterations):
                result = call()
            if done is not None:
                done()
        for _ in range(rounds):
            warm, warm_done = make_call()
            call, done = make_call()
            with _one_line():
                self._keep(*meter.count_round(call, iterations, f"energy:{self.nodeid}",
                                              warm=None if warm is call else _then(warm, warm_done)))
            result = self.last_value
            if done is not None:
                done()
        return result

    def record(self) -> Benchmark:
        """The sampled fixture's record, each round with its per-event counts, the benchmark with the profile."""
        bench = super().record()
        rounds = tuple(replace(r, extra={**r.extra, "counted": round_record(c)})
                       for r, c in zip(bench.rounds, self.counted, strict=True))
        meter = self.meter_factory()
        return replace(bench, rounds=rounds, extra={**bench.extra, "counted": meter.describe()})


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """A rule of the counted meter the test broke (it forked, it used a GPU) fails it with the one line that
    names the fix, not a traceback through energybench."""
    try:
        yield
    except CountedError as exc:
        pytest.fail(f"energybench: {exc}", pytrace=False)


def _then(call: Callable[[], Any], done: Callable[[], Any] | None) -> Callable[[], Any]:
    """``call`` followed by its tear-down."""
    if done is None:
        return call

    def both() -> Any:
        value = call()
        done()
        return value

    return both


def fixture_class(es: Any) -> type[EnergyFixture]:
    return CountedEnergyFixture if is_counted(es) else EnergyFixture


class CountedBenchmarkTap(BenchmarkEnergyTap):
    """``--energy`` under the counted meter: pytest-benchmark's measured rounds are one counted window, its
    own timing loop included (nothing is subtracted), priced per call over its rounds x iterations. Its rounds
    are chosen by time, so these figures repeat less well than the ``energy`` fixture's."""

    def finish(self) -> None:
        if not self.started:
            return
        stats = self.bm.stats
        calls = max(1, int(stats.stats.rounds) * int(stats.iterations))
        meter = cast(CountedMeter, self.session.meter.get())
        result = meter.end(self.window, calls)
        carbon = meter.measurement(result).co2e_g
        self.bm.extra_info.update({
            "energy_j": result.energy_j, "energy_window_s": result.wall_s,
            "energy_per_call_j": result.energy_per_call_j, "energy_power_w": None, "energy_source": result.source,
            "energy_method": f"per call: {result.method}, over pytest-benchmark's {calls} measured calls, its "
                             "timing loop included",
            "energy_counts": dict(result.counts), "energy_calls": calls,
        })
        if carbon is not None:
            self.bm.extra_info["energy_co2e_g"] = carbon
            self.bm.extra_info["energy_co2e_per_call_g"] = carbon / calls
        self.session.tapped.append((self.bm.fullname, dict(self.bm.extra_info)))


def tap_class(es: Any) -> type[BenchmarkEnergyTap]:
    return CountedBenchmarkTap if is_counted(es) else BenchmarkEnergyTap
