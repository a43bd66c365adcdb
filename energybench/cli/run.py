"""``energybench run benchmarks/``: baseline vs compressed subjects, measured as an experiment.

Heavy imports (torch, the runner) happen inside ``run`` so ``energybench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from energybench.options import (
    CARBON_OPTIONS,
    SAMPLER_OPTIONS,
    SCI_OPTIONS,
    add_to_argparse,
    from_namespace,
)

#: ``energybench run``'s flags, declared in ``energybench.options`` (``RUN_OPTIONS``, plus the shared ``threads``).
RUN_FLAGS = ("quick", "max_trials", "trials", "one_off_repeats", "warmup", "subjects", "phase", "name", "device",
             "threads", "seed", "idle", "cache_dir", "no_save", "no_layers", "json", "wide", "min_change",
             "between_run_spread")
ALL_FLAGS = (*RUN_FLAGS, "results", "quality_budget", *CARBON_OPTIONS, *SAMPLER_OPTIONS, *SCI_OPTIONS)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run benchmark suites: baseline vs pruned / quantized / distilled subjects, saved to results/",
        description="Run the suites declared in BENCHMARKS (modules assigning SUITES), with idle power first, "
        "warm-up, interleaved trials, a comparison table, and the run saved after every trial.",
    )
    p.add_argument("benchmarks", nargs="?", default="benchmarks", help="directory or file declaring SUITES")
    add_to_argparse(p, RUN_FLAGS)
    add_to_argparse(p, ["results", "quality_budget"])
    add_to_argparse(p, CARBON_OPTIONS, "carbon")
    add_to_argparse(p, SCI_OPTIONS, "software carbon intensity (SCI)")
    add_to_argparse(p, SAMPLER_OPTIONS, "samplers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.run.runner import RunConfig, RunNotSaved, load_suites, run_suites, select

    t0 = time.monotonic()
    values = from_namespace(args, ALL_FLAGS)
    suites = select(load_suites(args.benchmarks), values["subjects"])
    cfg = RunConfig.from_options(values)
    with _launched_process_group() as rank:
        try:
            record = run_suites(suites, cfg)
        except RunNotSaved as exc:  # every figure is in exc.run: print it, then the one line (exit 73)
            _print(exc.run, values)
            raise
    if rank:
        return 0  # every rank holds the job's aggregated figures; rank 0 prints and saves them
    _print(record, values)
    where = f"saved {record.run_id} as {record.path}" if record.path else "not saved (--no-save)"
    print(f"{where}; wall time {time.monotonic() - t0:.0f} s", file=sys.stderr)
    failed = [b for b in record.benchmarks if b.status == "failed"]
    if failed:  # the run went on and saved every other cell; the exit status still says a plugin failed
        from energybench.subjects.api import PluginError

        print(f"energybench: error: {len(failed)} cell(s) failed, e.g. {failed[0].key}: {failed[0].status_reason}; "
              f"the other cells were measured{' and saved' if record.path else ''}", file=sys.stderr)
        return PluginError.exit_code
    return 0


def _print(record: Any, values: dict[str, Any]) -> None:
    if values["json"]:
        print(record.to_json(), end="")
    else:
        from energybench.carbon.sci import run_sci
        from energybench.render.run_table import format_table
        from energybench.render.sci import format_sci
        from energybench.report import run_view

        print(format_table(run_view(record), wide=values["wide"]))
        print(headline_block(record, values["quality_budget"]), end="")
        sci = run_sci(record)
        if sci is not None:
            print(format_sci(sci))
    sys.stdout.flush()


def headline_block(record: Any, budget: float) -> str:
    """The headlines under the table: per workload the biggest significant saving within the quality budget."""
    from energybench.render.headlines import text_lines
    from energybench.render.report_lines import wrap
    from energybench.render.tables import terminal_width
    from energybench.report import build_report

    if not any(b.rounds and not b.is_baseline for b in record.benchmarks):
        return ""
    lines = text_lines(build_report([record], regions=(), quality_budget=budget))
    if not lines:
        return ""
    width = terminal_width()
    return "\n".join(["headlines:", *(part for line in lines for part in wrap(line, width, "  "))]) + "\n"


@contextmanager
def _launched_process_group() -> Iterator[int]:
    """Under torchrun (WORLD_SIZE > 1), join the job's process group so every window is measured on all
    ranks and aggregated (host devices counted once); yields this process's rank (0 when not distributed).

    Every rank runs the same suites with the same seeds, so they open and close the same windows in the same
    order, as collective windows require.
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        yield 0
        return
    import torch.distributed as dist

    if dist.is_initialized():
        yield dist.get_rank()
        return
    dist.init_process_group("gloo")
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()
