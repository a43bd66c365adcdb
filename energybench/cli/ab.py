"""``energybench ab``: baseline and candidate measured in one session, turn by turn, then compared pair by pair.

    energybench ab main -- pytest benchmarks/                    # the working tree against git ref "main"
    energybench ab v1.2 --new v1.3 -- pytest benchmarks/ -k mlp   # two refs
    energybench ab --command "python old.py" --command "python new.py" --rounds 10

Exit 0: pass, 1: a gate failed, 2: bad input or a side that could not be measured.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError
from energybench.options import CARBON_OPTIONS, add_to_argparse, carbon_kwargs, from_namespace
from energybench.run.ab import AB_PROCESSES, AB_ROUNDS

SHARED = ("results", "fail_on", "alpha", "allow_blind")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ab",
        help="measure a baseline and a candidate interleaved in one session (git refs or two commands)",
        description="Measure BASE (a git ref, checked out in a temporary worktree) and the candidate (the working "
        "tree, or --new REF) in one session: the two pytest runs take turns round by round, so drift of the "
        "machine hits both alike, and compare them pair by pair. With --command twice, measure two commands "
        "alternately instead. Exit 0: pass, 1: a gate failed, 2: bad input or a side that failed.",
    )
    p.add_argument("base", metavar="BASE", nargs="?", help="git ref of the baseline (branch, tag, commit)")
    p.add_argument("--new", metavar="REF", help="git ref of the candidate (default: the working tree as it is)")
    p.add_argument("--command", action="append", default=[], metavar="CMD",
                   help="a command to measure; give it twice (baseline, then candidate) instead of BASE")
    p.add_argument("--rounds", type=int, default=AB_ROUNDS, metavar="N",
                   help=f"rounds per side ({AB_ROUNDS}): one run of each command with --command; a pytest session "
                        "spreads them over its process pairs, at least 5 each, unless --energy-min-rounds or a "
                        "marker says otherwise")
    p.add_argument("--processes", type=int, default=AB_PROCESSES, metavar="P",
                   help=f"pairs of pytest processes to spread the rounds over ({AB_PROCESSES}): each process "
                        "carries an effect of its own (memory layout) that rounds inside it cannot average out, so "
                        "the process pair is the unit of the test; 1 for one pair (quicker, blind to that effect)")
    p.add_argument("--max-processes", type=int, metavar="M",
                   help="with gates, the most process pairs a still undecided benchmark gets (default 4 x "
                        "--processes): the session looks at its gates after 4 pairs and every 3 after, stops each "
                        "benchmark once its gates are decided and gives the rest more pairs; by default the whole "
                        "session takes at most twice the time of a fixed one, a given M is the only limit; "
                        "--max-processes equal to --processes keeps every benchmark at the same count")
    p.add_argument("--name", default="ab", help="prefix of the two saved runs' names (default ab)")
    add_to_argparse(p, SHARED)
    add_to_argparse(p, CARBON_OPTIONS, "carbon")
    # the pytest command line both sides run comes after "--" (see energybench.cli.main: TAIL)
    p.set_defaults(func=run, tail="pytest_args", pytest_args=[])


def run(args: argparse.Namespace) -> int:
    from energybench.record.storage import RunFile
    from energybench.render.comparison import format_table
    from energybench.verdicts.compare import compare_runs
    from energybench.verdicts.gate import parse_gates

    values = from_namespace(args, [*SHARED, *CARBON_OPTIONS])
    gates = parse_gates(values["fail_on"])
    if not 1 <= args.processes <= 1000:
        raise ConfigError(f"--processes must be between 1 and 1000, got {args.processes}")
    if not 2 <= args.rounds <= 100_000:
        raise ConfigError(f"--rounds must be between 2 and 100000, got {args.rounds}")
    if args.max_processes is not None and not args.processes <= args.max_processes <= 1000:
        raise ConfigError(f"--max-processes must be between --processes ({args.processes}) and 1000, got "
                          f"{args.max_processes}")
    if args.command:
        if args.base or args.new or args.pytest_args:
            raise ConfigError("give either --command twice or a git ref and a pytest command line, not both")
        from energybench.run.ab import measure_commands

        runs = measure_commands(args.command, args.rounds, region=carbon_kwargs(values))
        saved = [RunFile.create(r, values["results"], f"{args.name}-{side}")[1]
                 for r, side in zip(runs, ("base", "new"), strict=True)]
    else:
        per_process, looks = _pytest_session(args, values, gates)
        saved = [RunFile.create(_merged(runs, looks), values["results"], f"{args.name}-{side}")[1]
                 for runs, side in zip(per_process, ("base", "new"), strict=True)]
    cmp = compare_runs(saved[0], saved[1], gates, alpha=values["alpha"], allow_blind=values["allow_blind"])
    print(format_table(cmp))
    print(f"saved {saved[0].label} (baseline) and {saved[1].label} (candidate) in {values['results']}/",
          file=sys.stderr)
    return cmp.exit_code


def _merged(runs: list[Any], looks: Any) -> Any:
    """One side's process runs as one run; an adaptive session records its design and where each benchmark
    stopped (``Looks.stamp``)."""
    from energybench.run.ab import merge_processes

    run = merge_processes(runs)
    return run if looks is None else looks.stamp(run)


def _pytest_session(args: argparse.Namespace, values: dict[str, Any],
                    gates: Sequence[Any] = ()) -> tuple[list[list[Any]], Any]:
    """Both sides' runs, one per process pair (each pair a turn-taking session of two pytest processes), and
    the adaptive design's state (None for a fixed session): with gates, the session looks at them and
    deselects the benchmarks whose gates are decided (``verdicts.adaptive``)."""
    import secrets

    from energybench.run import ab
    from energybench.verdicts.adaptive import MAX_PAIRS_FACTOR, Looks, session_design

    command = list(args.pytest_args)
    if command and command[0] == "--":
        command = command[1:]
    if not args.base:
        raise ConfigError("no baseline: give a git ref (energybench ab main -- pytest ...) or --command twice")
    pytest_args = ab.pytest_arguments(command)
    if pytest_args is None:
        raise ConfigError("after --, give the pytest command both sides run, e.g. -- pytest benchmarks/ or "
                          "-- python -m pytest benchmarks/")
    repo = Path.cwd()
    tmp = Path(tempfile.mkdtemp(prefix="energybench-ab-trees-"))
    results = tmp / "results"  # each process's run; the caller saves the two merged runs
    trees: list[Path] = []
    try:
        base_tree = ab.checkout(args.base, repo, tmp / "base")
        trees.append(base_tree)
        new_tree = ab.checkout(args.new, repo, tmp / "new") if args.new else repo
        if args.new:
            trees.append(new_tree)
        pytest_argv = [sys.executable, "-m", "pytest", *pytest_args, "-p", "no:cacheprovider",
                       f"--energy-results={results}"]
        session = secrets.token_hex(8)
        threads = _common_threads()
        runs: list[list[Any]] = [[], []]
        budget = args.max_processes or MAX_PAIRS_FACTOR * args.processes
        looks = Looks(session_design(budget)) if gates and budget > args.processes and args.processes > 1 else None
        deselect: list[str] = []
        walls: list[float] = []  # each process pair's seconds: the session's budget is BUDGET_FACTOR fixed sessions
        for process in range(budget if looks else args.processes):
            if looks is not None and process in looks.design.looks:
                budget_rule = None if args.max_processes else _affordable(walls, args.processes)  # the user's cap rules
                deselect += _look(looks, runs, gates, values["alpha"], process, budget_rule)
                if len(looks.stopped) >= len({b.key for b in runs[1][-1].benchmarks}):
                    break
            sides = [ab.Side(name, [*pytest_argv, *deselect, f"--energy-save={args.name}-{name}"], tree,
                             {**ab.side_environment(tree), "ENERGYBENCH_AB_REF": ref or "working tree", **threads})
                     for name, tree, ref in (("base", base_tree, args.base), ("new", new_tree, args.new))]
            began = time.monotonic()
            by_name = ab.Orchestrator(sides, session=session, process=process,
                                      rounds=ab.rounds_per_process(args.rounds, args.processes)).run()
            walls.append(time.monotonic() - began)
            for i, name in enumerate(("base", "new")):
                runs[i].append(_saved_run(name, by_name[name]))
        if looks is not None:
            _look(looks, runs, gates, values["alpha"], len(runs[1]))
        return runs, looks
    finally:
        for tree in trees:
            ab.remove_checkout(tree, repo)
        shutil.rmtree(tmp, ignore_errors=True)


def _saved_run(name: str, side: Any) -> Any:
    """The run one side of a process pair saved; an ``ABError`` with the end of its output when it saved none."""
    from energybench.record.storage import load_run
    from energybench.run.ab import ABError

    code = side.proc.returncode if side.proc is not None else None
    if code not in (0, 1) or not side.saved:
        tail = side.log.read_text(errors="replace")[-1500:] if side.log and side.log.exists() else ""
        raise ABError(f"the {name} side (pytest) exited {code} without saving energy figures; the end of its "
                      f"output: {' '.join(tail.split())[-600:]}")
    return load_run(side.saved)


def _look(looks: Any, runs: list[list[Any]], gates: Sequence[Any], alpha: float, pairs: int,
          affordable: Callable[[int, int], bool] | None = None) -> list[str]:
    """Decide the gates after ``pairs`` process pairs; the ``--deselect`` arguments of the benchmarks that stop
    (pytest node ids)."""
    from energybench.run.ab import merge_processes
    from energybench.verdicts.compare import compare_runs

    cmp = compare_runs(merge_processes(runs[0]), merge_processes(runs[1]), gates, alpha=alpha)
    names = {b.key: str(b.name) for run in runs[1] for b in run.benchmarks}
    return [arg for key in looks.decide(cmp, pairs, affordable) for arg in ("--deselect", names.get(key, key))]


def _affordable(walls: Sequence[float], processes: int) -> Callable[[int, int], bool]:
    """Whether ``pairs`` more process pairs fit the session's budget: ``BUDGET_FACTOR`` times a fixed session
    (``processes`` pairs as long as the first ones, which ran every benchmark). The next pairs are priced at
    the last pair's time: benchmarks only leave, so it errs on the side of stopping."""
    from energybench.verdicts.adaptive import BUDGET_FACTOR, FIRST_LOOK

    def affordable(_rows: int, pairs: int) -> bool:
        if not walls:
            return True
        full = statistics.fmean(walls[:FIRST_LOOK])
        return sum(walls) + pairs * walls[-1] <= BUDGET_FACTOR * processes * full

    return affordable


def _common_threads() -> dict[str, str]:
    """Both sides' thread count, decided once (``ENERGYBENCH_THREADS``): the user's, or one that fits the CPUs
    other processes leave free, so the two sides of every pair run with the same pool."""
    import os
    import time

    from energybench.measuring.noise import Probe
    from energybench.measuring.threads import fitting

    if os.environ.get("ENERGYBENCH_THREADS"):
        return {}
    probe = Probe()
    probe.start()
    time.sleep(0.5)
    fits = fitting(int(probe.count), probe.count, probe.stop()[0].get("other_cpus", 0.0))
    return {"ENERGYBENCH_THREADS": str(fits)} if fits is not None else {}
