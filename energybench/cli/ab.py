"""``energybench ab``: baseline and candidate measured in one session, turn by turn, then compared pair by pair.

    energybench ab main -- pytest benchmarks/                    # the working tree against git ref "main"
    energybench ab v1.2 --new v1.3 -- pytest benchmarks/ -k mlp   # two refs
    energybench ab --command "python old.py" --command "python new.py" --rounds 10

Exit 0: pass, 1: a gate failed, 2: bad input or a side that could not be measured.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError
from energybench.options import CARBON_OPTIONS, add_to_argparse, carbon_kwargs, from_namespace
from energybench.run.ab import AB_PROCESSES, AB_ROUNDS

SHARED = ("results", "fail_on", "alpha")


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
    if args.command:
        if args.base or args.new or args.pytest_args:
            raise ConfigError("give either --command twice or a git ref and a pytest command line, not both")
        from energybench.run.ab import measure_commands

        runs = measure_commands(args.command, args.rounds, region=carbon_kwargs(values))
        saved = [RunFile.create(r, values["results"], f"{args.name}-{side}")[1]
                 for r, side in zip(runs, ("base", "new"), strict=True)]
    else:
        from energybench.run.ab import merge_processes

        per_process = _pytest_session(args, values)
        saved = [RunFile.create(merge_processes(runs), values["results"], f"{args.name}-{side}")[1]
                 for runs, side in zip(per_process, ("base", "new"), strict=True)]
    cmp = compare_runs(saved[0], saved[1], gates, alpha=values["alpha"])
    print(format_table(cmp))
    print(f"saved {saved[0].label} (baseline) and {saved[1].label} (candidate) in {values['results']}/",
          file=sys.stderr)
    return cmp.exit_code


def _pytest_session(args: argparse.Namespace, values: dict[str, Any]) -> list[list[Any]]:
    """Both sides' runs, one per process pair (each pair a turn-taking session of two pytest processes)."""
    import secrets

    from energybench.record.storage import load_run
    from energybench.run import ab

    command = list(args.pytest_args)
    if command and command[0] == "--":
        command = command[1:]
    if not args.base:
        raise ConfigError("no baseline: give a git ref (energybench ab main -- pytest ...) or --command twice")
    if not command or Path(command[0]).name not in ("pytest", "py.test"):
        raise ConfigError("after --, give the pytest command both sides run, e.g. -- pytest benchmarks/")
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
        pytest_argv = [sys.executable, "-m", "pytest", *command[1:], "-p", "no:cacheprovider",
                       f"--energy-results={results}"]
        session = secrets.token_hex(8)
        threads = _common_threads()
        runs: list[list[Any]] = [[], []]
        for process in range(args.processes):
            sides = [
                ab.Side(name, [*pytest_argv, f"--energy-save={args.name}-{name}"], tree,
                        {**ab.side_environment(tree), "ENERGYBENCH_AB_REF": ref or "working tree", **threads})
                for name, tree, ref in (("base", base_tree, args.base), ("new", new_tree, args.new))
            ]
            by_name = ab.Orchestrator(sides, session=session, process=process,
                                      rounds=ab.rounds_per_process(args.rounds, args.processes)).run()
            for i, name in enumerate(("base", "new")):
                side = by_name[name]
                code = side.proc.returncode if side.proc is not None else None
                if code not in (0, 1) or not side.saved:
                    tail = side.log.read_text(errors="replace")[-1500:] if side.log and side.log.exists() else ""
                    raise ab.ABError(f"the {name} side (pytest) exited {code} without saving energy figures; the "
                                     f"end of its output: {' '.join(tail.split())[-600:]}")
                runs[i].append(load_run(side.saved))
        return runs
    finally:
        for tree in trees:
            ab.remove_checkout(tree, repo)
        shutil.rmtree(tmp, ignore_errors=True)


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
