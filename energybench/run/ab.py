"""A/B sessions: baseline and candidate measured in one session, turn by turn, so drift hits both alike.

Why: two runs measured minutes apart on a shared machine differ by several percent for reasons that have
nothing to do with the code (other jobs, thermal state, the host's clock). A gate comparing them cries wolf
or needs a threshold above the drift. Interleaving fixes it at the source: round 0 of the baseline, round 0
of the candidate, round 1 of the baseline, ... and the comparison is made pair by pair (``compare`` mode
``paired``), where shared drift cancels.

For pytest suites the two sides are pytest processes (the baseline's code checked out from a git ref in a
worktree), run as several pairs (``AB_PROCESSES``) because each process carries an effect of its own,
and coordinated so that only one of a pair runs at any moment: each runs until it is about to
measure a round, then hands the turn over (``Turns``), so one side's imports, set-up or teardown never
overlaps the other's measured rounds. The orchestrator (``Orchestrator``) relays the turn over a local
socket. For two plain commands the alternation happens in one process (``measure_commands``).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Client, Connection, Listener, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energybench.errors import ConfigError, EnergybenchError

if TYPE_CHECKING:
    from energybench.record import ABSide, Benchmark, Round, Run

ENV_ADDRESS = "ENERGYBENCH_AB_ADDRESS"
ENV_AUTHKEY = "ENERGYBENCH_AB_AUTHKEY"
ENV_SIDE = "ENERGYBENCH_AB_SIDE"
ENV_SESSION = "ENERGYBENCH_AB_SESSION"
ENV_REF = "ENERGYBENCH_AB_REF"
ENV_ROUNDS = "ENERGYBENCH_AB_ROUNDS"  # rounds per benchmark each process measures unless told otherwise
ENV_PROCESS = "ENERGYBENCH_AB_PROCESS"
#: A random-length value in each side's environment, new for every process: setup randomization (Mytkowicz et
#: al., "Producing wrong data without doing anything obviously wrong!", ASPLOS 2009). A process's memory layout
#: follows from its environment and paths (the working tree's path is not the worktree's), so without it one
#: side can sit on a worse layout in every process of a session, a bias no number of pairs removes
#: (docs/performance.md, "A/B sessions").
ENV_PAD = "ENERGYBENCH_AB_LAYOUT_PAD"
PAD_MAX = 4096
SIDES = ("base", "new")
#: Rounds per side of an A/B session unless the user says otherwise (``--rounds``; the ``energy`` fixture's
#: rounds in a pytest session). Twice a lone run's 10: with 10 pairs a gate at alpha 0.01 needs every pair to
#: agree, so one pair a neighbour's burst hit on one side hides a real change; the detection rates at 20 are
#: ``benchmarks/bench_gate_accuracy.py``'s (docs/performance.md, "Gates").
AB_ROUNDS = 20
#: A side that does not hand the turn back within this many seconds is taken to have hung.
TURN_TIMEOUT_S = 3600.0


def flagged_pairs(base: Sequence[Any], new: Sequence[Any]) -> int:
    """Pairs (same index on both sides) that a comparison sets aside because their sides saw different load
    (``measuring.noise.pair_flags`` on each round's load). A side of an older energybench sends a flag per
    round instead of its load: a flagged round then flags its pair."""
    from energybench.measuring.noise import pair_flags

    def apart(a: Any, b: Any) -> bool:
        if isinstance(a, bool) or isinstance(b, bool):
            return bool(a) or bool(b)
        return bool(pair_flags(a or {}, b or {}))

    return sum(apart(a, b) for a, b in zip(base, new, strict=False))


def rounds_to_measure(rounds: int, flagged: int) -> int:
    """Rounds per side an A/B session measures once ``flagged`` of its pairs are flagged: one more pair for each
    flagged one, at most twice ``rounds`` in all.

    Why: a comparison sets those pairs aside, so on a runner whose neighbours come and go a session would be
    tested on fewer pairs and miss changes it catches on a quiet one. Replacing them keeps the pairs the test
    sees near ``rounds``. Which pairs are replaced depends on the machine's load only, never on the figures, so
    the pairs that remain are not chosen for what they show; the cap bounds the session's time at twice the
    asked-for rounds on a machine whose load never settles."""
    return rounds + min(max(flagged, 0), rounds)


class ABError(EnergybenchError):
    """An A/B session could not run (a side crashed, a ref does not exist, git is missing)."""


# ------------------------------------------------------------------------------------------------ one side
class Turns:
    """One side's end of the turn-taking: wait for the turn, hand it over, say goodbye."""

    def __init__(self, conn: Connection, side: str, session: str, ref: str | None, rounds: int = AB_ROUNDS,
                 process: int = 0) -> None:
        self.conn = conn
        self.side = side
        self.session = session
        self.ref = ref
        self.rounds = rounds  # the fixture's rounds by default (``--energy-min-rounds`` or a marker override it)
        self.process = process  # which process pair of the session this is (``energybench ab --processes``)
        self.closed = False
        self._peer_loads: dict[str, list[Any]] = {}  # the other side's round loads per benchmark, as last sent

    @classmethod
    def from_environment(cls, environ: dict[str, str] | os._Environ[str] | None = None) -> Turns | None:
        env = os.environ if environ is None else environ
        if not env.get(ENV_ADDRESS):
            return None
        conn = Client(env[ENV_ADDRESS], authkey=bytes.fromhex(env[ENV_AUTHKEY]))
        return cls(conn, env.get(ENV_SIDE, "?"), env.get(ENV_SESSION, ""), env.get(ENV_REF) or None,
                   int(env.get(ENV_ROUNDS) or AB_ROUNDS), int(env.get(ENV_PROCESS) or 0))

    def ready(self) -> None:
        """Say this side has finished starting up (imports, collection) and wait for the first turn: nothing
        either side measures may overlap the other's start-up."""
        self.conn.send(("ready", self.side))
        self.wait()

    def describe(self) -> ABSide:
        """What the run record says about the session (``Run.environment.ab``)."""
        from energybench.record import ABSide

        return ABSide(session=self.session, side=self.side, ref=self.ref, process=self.process)

    def wait(self) -> None:
        """Block until it is this side's turn."""
        if self.closed:
            return
        message = self.conn.recv()
        if message != "go":
            raise ABError(f"A/B session: unexpected message {message!r} from the orchestrator")

    def hand_over(self) -> None:
        """Give the turn to the other side and wait for it to come back."""
        if self.closed:
            return
        self.conn.send(("yield", self.side))
        self.wait()

    def settle_rounds(self, key: str, rounds: int, loads: Sequence[Mapping[str, float]]) -> int:
        """After this side measured its ``len(loads)``-th round of benchmark ``key`` (each: that round's load),
        hand the turn over and say how many rounds both sides measure in all (``rounds_to_measure``). The
        caller holds the turn when this returns.

        Both sides reach the same answer without a referee: each sends its loads as it settles, and the other
        side's come back with the next turn. When this side settles after its round m, the other side has
        already settled after its own round m (the turns alternate), so both judge the same first m pairs. A
        side of an older energybench that never settles sends nothing: no pair is set aside, and neither side
        measures extra rounds."""
        if self.closed:
            return rounds
        self.conn.send(("yield", self.side, key, [dict(x) for x in loads]))
        self.wait()
        peer = self.conn.recv()
        theirs: list[Any] = []
        if isinstance(peer, tuple) and len(peer) == 3 and peer[0] == "peer" and peer[1] == key:
            theirs = list(peer[2])
        if theirs:
            self._peer_loads[key] = theirs
        theirs = self._peer_loads.get(key, [])
        mine = list(loads)
        n = min(len(mine), len(theirs))
        return rounds_to_measure(rounds, flagged_pairs(mine[:n], theirs[:n]))

    def finish(self, saved: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.conn.send(("exit", saved))
            self.conn.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------ orchestrator
@dataclass
class Side:
    name: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    conn: Connection | None = None
    saved: str | None = None
    done: bool = False
    log: Path | None = None
    flags: tuple[str, list[Any]] | None = None  # the benchmark and round loads it last settled with
    settling: bool = False  # its last message settled rounds: it waits for the other side's loads after "go"


@dataclass
class Orchestrator:
    """Starts both sides, relays the turn between them, and collects where each saved its run."""

    sides: list[Side]
    session: str = field(default_factory=lambda: secrets.token_hex(8))
    process: int = 0  # which process pair of the session this is
    rounds: int = AB_ROUNDS  # each side's rounds per benchmark by default
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="energybench-ab-")))

    def run(self) -> dict[str, Side]:
        address = str(self.workdir / "turns.sock")
        authkey = secrets.token_bytes(16)
        with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
            for side in self.sides:
                side.log = self.workdir / f"{side.name}.log"
                env = {**side.env, ENV_ADDRESS: address, ENV_AUTHKEY: authkey.hex(), ENV_SIDE: side.name,
                       ENV_SESSION: self.session, ENV_ROUNDS: str(self.rounds), ENV_PROCESS: str(self.process),
                       ENV_PAD: "x" * secrets.randbelow(PAD_MAX)}
                with open(side.log, "wb") as log:
                    side.proc = subprocess.Popen(side.cmd, cwd=side.cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
            by_name = {s.name: s for s in self.sides}
            for conn in self._accept_all(listener):
                kind, name = conn.recv()
                if kind != "ready" or name not in by_name:
                    raise ABError(f"A/B session: a side said {kind!r} {name!r} instead of ready")
                by_name[name].conn = conn
            self._relay()
        for side in self.sides:
            if side.proc is not None:
                side.proc.wait()
        return by_name

    def _accept_all(self, listener: Listener) -> list[Connection]:
        """Both sides' connections; a side that dies before connecting must not leave us waiting forever."""
        accepted: list[Connection] = []

        def accept() -> None:
            for _ in self.sides:
                accepted.append(listener.accept())

        thread = threading.Thread(target=accept, name="energybench-ab-accept", daemon=True)
        thread.start()
        deadline = time.monotonic() + 600
        while thread.is_alive():
            thread.join(0.5)
            for side in self.sides:
                if side.proc is not None and side.proc.poll() is not None and len(accepted) < len(self.sides):
                    raise ABError(f"A/B session: the {side.name} side exited (code {side.proc.returncode}) before "
                                  f"its tests started; see {side.log}")
            if time.monotonic() > deadline:
                raise ABError("A/B session: a side did not start its tests within 10 minutes")
        return accepted

    def _relay(self) -> None:
        """Hand the turn to one side at a time: base first, then whoever is waiting, until both have exited."""
        order = [s for s in self.sides]
        current = 0
        self._go(order[current])
        while not all(s.done for s in order):
            side = order[current]
            message = self._receive(side)
            if message is None or message[0] == "exit":
                side.done = True
                side.saved = message[1] if message else None
            elif len(message) == 4:  # ("yield", side, benchmark, loads): settle_rounds
                side.flags, side.settling = (message[2], list(message[3])), True
            else:
                side.settling = False
            other = order[1 - current]
            nxt = other if not other.done else side
            if nxt.done:
                continue
            current = order.index(nxt)
            self._go(nxt, peer=order[1 - current])

    def _go(self, side: Side, peer: Side | None = None) -> None:
        """Give ``side`` the turn; a side that is settling rounds also gets the other side's latest loads."""
        assert side.conn is not None
        try:
            side.conn.send("go")
            if side.settling:
                key, flags = peer.flags if peer is not None and peer.flags is not None else ("", [])
                side.conn.send(("peer", key, flags))
        except OSError:
            side.done = True

    def _receive(self, side: Side) -> tuple[str, Any] | None:
        assert side.conn is not None
        if not wait([side.conn], timeout=TURN_TIMEOUT_S):
            raise ABError(f"A/B session: the {side.name} side kept the turn for {TURN_TIMEOUT_S:.0f} s; see {side.log}")
        try:
            message: tuple[str, Any] = side.conn.recv()
            return message
        except (EOFError, OSError):
            return None


# ------------------------------------------------------------------------------------------------ processes
#: Process pairs per pytest A/B session unless ``--processes`` says otherwise. Why more than one: a process
#: carries an effect of its own that all its rounds share (where its arrays landed in memory, ASLR), which
#: pairing rounds cannot cancel: with one pair, identical code fails a tight gate by that effect alone
#: (``benchmarks/bench_ab_processes.py``). With several pairs the process pair is the unit of the test
#: (``compare._pairs``), as pyperf spreads its values over worker processes (docs/performance.md, "A/B sessions").
AB_PROCESSES = 10
#: Fewest rounds per benchmark a process measures when the session's rounds are spread over its processes.
MIN_ROUNDS_PER_PROCESS = 5


def rounds_per_process(rounds: int, processes: int) -> int:
    """Each process pair's share of a session's rounds (at least ``MIN_ROUNDS_PER_PROCESS``)."""
    return max(MIN_ROUNDS_PER_PROCESS, -(-rounds // processes)) if processes > 1 else rounds


def merge_processes(runs: Sequence[Run]) -> Run:
    """One side's runs of a multi-process session as one run: every round keeps its process number, so the
    comparison pairs ``(process, round)`` and tests the process pairs (``compare._pairs``)."""
    from dataclasses import replace

    first = runs[0]
    rounds: dict[str, list[Round]] = {}
    benches: dict[str, Benchmark] = {}
    for process, run in enumerate(runs):
        for bench in run.benchmarks:
            benches.setdefault(bench.key, bench)
            rounds.setdefault(bench.key, []).extend(replace(r, process=process) for r in bench.rounds)
    ab = first.environment.ab
    environment = replace(first.environment, ab=replace(ab, process=None, processes=len(runs)) if ab else None)
    return replace(first, environment=environment,
                   benchmarks=tuple(replace(b, rounds=tuple(rounds[key])) for key, b in benches.items()))


_PYTEST = re.compile(r"py\.?test(-3)?")
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")


def pytest_arguments(command: Sequence[str]) -> list[str] | None:
    """The arguments after the pytest of ``command`` (``pytest ARGS``, ``py.test ARGS`` or ``python -m pytest
    ARGS``, python under any path or version), or ``None`` when it is not a pytest run. Both sides run them
    as ``python -m pytest`` under this interpreter, each from its own tree."""
    if not command:
        return None
    first = Path(command[0]).name
    if _PYTEST.fullmatch(first):
        return list(command[1:])
    if (_PYTHON.fullmatch(first) or os.path.realpath(command[0]) == os.path.realpath(sys.executable)) and \
            len(command) >= 3 and command[1] == "-m" and command[2] in ("pytest", "py.test"):
        return list(command[3:])
    return None


# ------------------------------------------------------------------------------------------------ git
def _git(args: Sequence[str], cwd: Path) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ABError(f"git {' '.join(args)} failed: {exc}; is git installed?") from None
    if out.returncode != 0:
        why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        raise ABError(f"git {' '.join(args)} failed: {why}")
    return out.stdout.strip()


def checkout(ref: str, repo: Path, into: Path) -> Path:
    """A detached worktree of ``ref`` (the baseline's code); the caller removes it with ``remove_checkout``."""
    root = Path(_git(["rev-parse", "--show-toplevel"], repo))
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], root)
    except ABError:
        raise ConfigError(f"git ref {ref!r} does not exist in {root}: give a branch, tag or commit") from None
    _git(["worktree", "add", "--detach", "--force", str(into), ref], root)
    return into


def remove_checkout(path: Path, repo: Path) -> None:
    try:
        _git(["worktree", "remove", "--force", str(path)], repo)
    except ABError:
        pass


def side_environment(tree: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a side runs in: its tree (and its ``src/``) first on ``PYTHONPATH``, so the tests import
    that tree's code even when the project is installed in editable mode from the other one."""
    env = dict(os.environ if environ is None else environ)
    paths = [str(tree)] + ([str(tree / "src")] if (tree / "src").is_dir() else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


# ------------------------------------------------------------------------------------------------ commands
def measure_commands(commands: Sequence[str], rounds: int, *, region: dict[str, Any] | None = None,
                     cwd: Path | None = None) -> list[Any]:
    """Run two commands alternately (A B A B ...), one meter window each, and return two runs whose rounds pair up
    by index (one A/B session). A pair whose sides saw different load is replaced by one more
    (``rounds_to_measure``)."""
    from energybench.measuring.machine import commit_info, machine_info
    from energybench.measuring.meter import Meter
    from energybench.measuring.noise import Probe
    from energybench.record import ABSide, Benchmark, CarbonBasis, Environment, Round, Run
    from energybench.samplers import benchmark_options

    if len(commands) != 2:
        raise ConfigError(f"--command needs exactly two commands (the baseline, then the candidate), got "
                          f"{len(commands)}")
    argvs = [shlex.split(c) for c in commands]
    if any(not a for a in argvs):
        raise ConfigError("an empty --command: give the command line to measure, e.g. --command 'python a.py'")
    session = secrets.token_hex(8)
    meter = Meter(options=benchmark_options(), **(region or {}))
    rounds_by_side: list[list[Round]] = [[], []]
    try:
        trial = 0
        base, new = rounds_by_side
        while trial < rounds_to_measure(rounds, flagged_pairs([r.load for r in base], [r.load for r in new])):
            for side, argv in enumerate(argvs):
                probe = Probe()
                probe.start()
                meter.begin(f"ab:{side}:{trial}")
                try:
                    code = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, check=False).returncode
                except FileNotFoundError:
                    meter.end(f"ab:{side}:{trial}")
                    raise ConfigError(f"command not found: {argv[0]} (check the name and PATH)") from None
                m = meter.end(f"ab:{side}:{trial}")
                load, flags = probe.stop()
                if code != 0:
                    raise ABError(f"{commands[side]!r} exited {code} in round {trial}: an A/B comparison needs both "
                                  "commands to succeed")
                rounds_by_side[side].append(Round.from_measurement(m, index=trial, load=load, flags=flags))
            trial += 1
        carbon = CarbonBasis.from_provider(meter.provider) if meter.provider is not None else None
        machine = machine_info(meter.samplers)
    finally:
        meter.close()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return [
        Run(name=f"ab-{name}", created=created, kind="ab-command", machine=machine, commit=commit_info(),
            environment=Environment(ab=ABSide(session=session, side=name, command=commands[i])), carbon=carbon,
            benchmarks=(Benchmark(name="command", family="command", workload="command",
                                  rounds=tuple(rounds_by_side[i])),))
        for i, name in enumerate(SIDES)
    ]
