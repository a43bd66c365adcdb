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
    QUICK_TRIALS,
    SAMPLER_OPTIONS,
    SCI_OPTIONS,
    TRIALS,
    add_to_argparse,
    carbon_kwargs,
    for_argparse,
    from_namespace,
    idle_seconds,
    percentage,
    sampler_options,
    seed_value,
    spread_or_auto,
    thread_count,
    trials_count,
    warmup_count,
)
from energybench.verdicts.baseline import MIN_CHANGE
from energybench.verdicts.spread import DEFAULT_SD


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run benchmark suites: baseline vs pruned / quantized / distilled subjects, saved to results/",
        description="Run the suites declared in BENCHMARKS (modules assigning SUITES), with idle power first, "
        "warm-up, interleaved trials, a comparison table, and the run saved after every trial.",
    )
    p.add_argument("benchmarks", nargs="?", default="benchmarks", help="directory or file declaring SUITES")
    p.add_argument("--quick", action="store_true",
                   help=f"small configs and {QUICK_TRIALS} trials: all methods in a few minutes")
    p.add_argument("--trials", type=for_argparse(trials_count), metavar="N",
                   help=f"measured trials per benchmark (default {TRIALS}, quick {QUICK_TRIALS})")
    p.add_argument("--one-off-repeats", type=for_argparse(trials_count), default=3, metavar="N",
                   help="measure one-off costs (distillation, calibration) this many times, for an interval (3)")
    p.add_argument("--warmup", type=for_argparse(warmup_count), default=1, metavar="N",
                   help="unmeasured warm-up runs (default 1)")
    p.add_argument("--subjects", nargs="+", metavar="S",
                   help="only these: a family (lm), one subject (lm/int8-dynamic) or a method everywhere (bf16)")
    p.add_argument("--phase", choices=("train", "inference"), help="only this phase")
    add_to_argparse(p, ["results"])
    p.add_argument("--name", default="compression", help="run name in the file name (default compression)")
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda (the current CUDA device), cuda:N or tpu, or several comma-separated "
                   "(cpu,cuda): every subject on each device present, side by side; a missing one is noted with "
                   "the reason; only the run's own GPUs are measured (default cpu)")
    p.add_argument("--threads", type=for_argparse(thread_count), metavar="N",
                   help="torch intra-op threads to pin (default: torch's)")
    p.add_argument("--seed", type=for_argparse(seed_value), default=0, help="base seed (default 0)")
    p.add_argument("--idle", type=for_argparse(idle_seconds), metavar="S",
                   help="seconds of idle power before the trials (default 3, quick 2)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="trained baselines (default $ENERGYBENCH_CACHE or ~/.cache/energybench)")
    p.add_argument("--no-save", action="store_true", help="print the table without saving the run")
    p.add_argument("--no-layers", action="store_true",
                   help="skip the per-layer attribution (one profiled run per benchmark after the trials)")
    p.add_argument("--json", action="store_true", help="print the run record as JSON instead of the table")
    p.add_argument("--wide", action="store_true",
                   help="print every column on one line (default: fit the terminal, 100 columns when not one)")
    p.add_argument("--min-change", type=for_argparse(percentage), default=MIN_CHANGE, metavar="PCT",
                   help="the smallest saving or cost a verdict claims: 'saves' needs a saving significantly "
                        f"beyond it (default {MIN_CHANGE * 100:g}%%; 0 claims any significant change)")
    p.add_argument("--between-run-spread", type=for_argparse(spread_or_auto), default=None, metavar="PCT",
                   help="how much a ratio moves between runs on this machine, added to every verdict's "
                        f"interval: a percentage, or auto (default: from 3+ saved runs of this name on this "
                        f"machine, else {DEFAULT_SD * 100:g}%%)")
    add_to_argparse(p, ["quality_budget"])
    add_to_argparse(p, CARBON_OPTIONS, "carbon")
    add_to_argparse(p, SCI_OPTIONS, "software carbon intensity (SCI)")
    add_to_argparse(p, SAMPLER_OPTIONS, "samplers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.run.runner import RunConfig, RunNotSaved, load_suites, run_suites, select

    t0 = time.monotonic()
    trials = args.trials if args.trials is not None else (QUICK_TRIALS if args.quick else TRIALS)
    values = from_namespace(args, ["results", "quality_budget", *CARBON_OPTIONS, *SAMPLER_OPTIONS, *SCI_OPTIONS])
    suites = select(load_suites(args.benchmarks), args.subjects)
    cfg = RunConfig(
        trials=trials,
        warmup=args.warmup,
        quick=args.quick,
        phase=args.phase,
        subjects=args.subjects,
        carbon=carbon_kwargs(values),
        results_dir=values["results"],
        name=args.name,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        idle_s=args.idle if args.idle is not None else (2.0 if args.quick else 3.0),
        cache_dir=args.cache_dir,
        sampler_options=sampler_options(values),
        save=not args.no_save,
        one_off_repeats=args.one_off_repeats,
        embodied=values["embodied"],
        layers=not args.no_layers,
        min_change=args.min_change,
        between_run_sd=args.between_run_spread,
    )
    with _launched_process_group() as rank:
        try:
            record = run_suites(suites, cfg)
        except RunNotSaved as exc:  # every figure is in exc.run: print it, then the one line (exit 73)
            _print(exc.run, args, values["quality_budget"])
            raise
    if rank:
        return 0  # every rank holds the job's aggregated figures; rank 0 prints and saves them
    _print(record, args, values["quality_budget"])
    where = f"saved {record.run_id} as {record.path}" if record.path else "not saved (--no-save)"
    print(f"{where}; wall time {time.monotonic() - t0:.0f} s", file=sys.stderr)
    failed = [b for b in record.benchmarks if b.status == "failed"]
    if failed:  # the run went on and saved every other cell; the exit status still says a plugin failed
        from energybench.subjects.api import PluginError

        print(f"energybench: error: {len(failed)} cell(s) failed, e.g. {failed[0].key}: {failed[0].status_reason}; "
              f"the other cells were measured{' and saved' if record.path else ''}", file=sys.stderr)
        return PluginError.exit_code
    return 0


def _print(record: Any, args: argparse.Namespace, quality_budget: float) -> None:
    if args.json:
        print(record.to_json(), end="")
    else:
        from energybench.carbon.sci import run_sci
        from energybench.render.run_table import format_table
        from energybench.render.sci import format_sci

        print(format_table(record, wide=args.wide))
        print(headline_block(record, quality_budget), end="")
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
