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

from energybench.errors import ConfigError
from energybench.options import (
    CARBON_OPTIONS,
    SAMPLER_OPTIONS,
    add_to_argparse,
    carbon_kwargs,
    from_namespace,
    sampler_options,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run benchmark suites: baseline vs pruned / quantized / distilled subjects, saved to results/",
        description="Run the suites declared in BENCHMARKS (modules assigning SUITES), with idle power first, "
        "warm-up, interleaved trials, a comparison table, and the run saved after every trial.",
    )
    p.add_argument("benchmarks", nargs="?", default="benchmarks", help="directory or file declaring SUITES")
    p.add_argument("--quick", action="store_true", help="small configs and 3 trials: all methods in a few minutes")
    p.add_argument("--trials", type=int, metavar="N", help="measured trials per subject (default 5, quick 3)")
    p.add_argument("--warmup", type=int, default=1, metavar="N", help="unmeasured warm-up runs (default 1)")
    p.add_argument("--subjects", nargs="+", metavar="S",
                   help="only these: a family (lm), one subject (lm/int8-dynamic) or a method everywhere (bf16)")
    p.add_argument("--phase", choices=("train", "inference"), help="only this phase")
    add_to_argparse(p, ["results"])
    p.add_argument("--name", default="compression", help="run name in the file name (default compression)")
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda or tpu, or several comma-separated (cpu,cuda): every subject on each device "
                   "present, side by side; a missing one is noted with the reason (default cpu)")
    p.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads to pin (default: torch's)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--idle", type=float, metavar="S",
                   help="seconds of idle power before the trials (default 3, quick 2)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="trained baselines (default $ENERGYBENCH_CACHE or ~/.cache/energybench)")
    p.add_argument("--no-save", action="store_true", help="print the table without saving the run")
    p.add_argument("--no-layers", action="store_true",
                   help="skip the per-layer attribution (one profiled run per benchmark after the trials)")
    p.add_argument("--json", action="store_true", help="print the run record as JSON instead of the table")
    add_to_argparse(p, CARBON_OPTIONS, "carbon")
    add_to_argparse(p, SAMPLER_OPTIONS, "samplers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.render.run_table import format_table
    from energybench.runner import RunConfig, load_suites, run_suites, select

    t0 = time.monotonic()
    trials = args.trials if args.trials is not None else (3 if args.quick else 5)
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    if args.warmup < 0:
        raise ConfigError(f"--warmup must be 0 or more, got {args.warmup}")
    values = from_namespace(args, ["results", *CARBON_OPTIONS, *SAMPLER_OPTIONS])
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
        layers=not args.no_layers,
    )
    with _launched_process_group() as rank:
        record = run_suites(suites, cfg)
    if rank:
        return 0  # every rank holds the job's aggregated figures; rank 0 prints and saves them
    if args.json:
        print(record.to_json(), end="")
    else:
        print(format_table(record))
    where = f"saved {record.run_id} in {values['results']}/" if record.run_id else "not saved (--no-save)"
    print(f"{where}; wall time {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


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
