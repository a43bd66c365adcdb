"""Data-parallel training energy: DistributedDataParallel on 2 ranks vs 1, per sample and as scaling efficiency.

Strong scaling: the same global batch, the same number of samples per trial, split across ranks (gloo on CPU,
or NCCL with ``--backend nccl`` on GPUs). Each trial is one collective energybench window, so the energy is
the job's (shared CPU packages and DRAM counted once per host, see ``energybench.distributed``).

Two ways to run it:

* ``python benchmarks/ddp_scaling.py`` launches ``torchrun --standalone`` itself with 1 and then 2 ranks and
  prints the comparison: time and energy per sample, speed-up, scaling efficiency
  (throughput_N / (N x throughput_1)) and energy scaling (J/sample_1 / J/sample_N; 1.0 means no energy cost
  for going parallel).
* ``torchrun --nproc_per_node=2 benchmarks/ddp_scaling.py`` runs one configuration and prints its figures.

The data is synthetic (a fixed random linear teacher), so nothing is downloaded. Figures measured on a shared
machine are noisy; with no RAPL counter the energy is the CPU model's estimate (``source`` says which), for
these processes only by default (``ENERGYBENCH_CPU_SCOPE=machine`` for the whole machine), with the
machine's idle floor counted once per host.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IN_FEATURES, HIDDEN, CLASSES = 128, 256, 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", default="1,2", help="world sizes to compare when launching (default 1,2)")
    p.add_argument("--samples", type=int, default=65536, help="samples per trial, all ranks together")
    p.add_argument("--batch", type=int, default=128, help="global batch size (split across ranks)")
    p.add_argument("--trials", type=int, default=3, help="measured trials per configuration (median reported)")
    p.add_argument("--warmup-steps", type=int, default=10)
    p.add_argument("--backend", default="gloo", help="gloo (CPU) or nccl (one GPU per rank)")
    p.add_argument("--region", default=None, help="grid region for CO2e, e.g. FRA")
    p.add_argument("--samplers", default=None, help="comma-separated sampler names (default: detect)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank (default 1: same per rank)")
    p.add_argument("--out", default=None, help="worker mode: rank 0 writes its JSON summary here")
    p.add_argument("--json", action="store_true", help="launcher mode: print the comparison as JSON")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------- worker
def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration under torchrun: DDP training, one energybench window per trial."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from energybench.distributed.launcher import launcher_environment
    from energybench.measuring.meter import Meter
    from energybench.samplers import benchmark_options

    torch.set_num_threads(args.threads)
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} must divide evenly across {world} ranks")
    device = torch.device("cpu")
    if args.backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)

    torch.manual_seed(0)  # the same model and data on every rank and in every configuration
    teacher = torch.randn(IN_FEATURES, CLASSES)
    n_data = max(args.samples, args.batch * 4)
    x_all = torch.randn(n_data, IN_FEATURES)
    y_all = (x_all @ teacher).argmax(dim=1)
    model = torch.nn.Sequential(
        torch.nn.Linear(IN_FEATURES, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES),
    ).to(device)
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    local_batch = args.batch // world
    steps = max(1, args.samples // args.batch)

    def step(i: int) -> float:
        start = (i * args.batch + rank * local_batch) % (n_data - local_batch)  # this rank's shard of batch i
        xb = x_all[start : start + local_batch].to(device, non_blocking=True)
        yb = y_all[start : start + local_batch].to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(ddp(xb), yb)
        loss.backward()  # DDP all-reduces gradients here
        opt.step()
        return float(loss)

    for i in range(args.warmup_steps):
        step(i)
    # benchmark_options: the CPU estimate counts these processes only (set ENERGYBENCH_CPU_SCOPE=machine for
    # the whole machine), so neighbours' load on a shared box does not leak into the comparison
    options = benchmark_options({"samplers": args.samplers.split(",")} if args.samplers else {})
    meter = Meter(region=args.region, options=options)
    trials = []
    loss = float("nan")
    for trial in range(args.trials):
        dist.barrier()  # windows are collective: every rank begins together
        t0 = time.perf_counter()
        with meter.window(f"ddp-train-{world}") as w:
            for i in range(steps):
                loss = step(trial * steps + i)
            if args.backend == "nccl":
                torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        m = w.result
        assert m is not None
        dist_meta = m.metadata.get("distributed", {})
        trials.append(
            {
                "energy_j": m.energy_j,
                "duration_s": m.duration_s,
                "rank_time_s": elapsed,
                "co2e_g": m.co2e_g,
                "source": m.source,
                "hosts": {h: v["energy_j"] for h, v in dist_meta.get("hosts", {}).items()},
                "ranks": {r["rank"]: r["energy_j"] for r in dist_meta.get("ranks", [])},
                "duplicates_dropped": len(dist_meta.get("duplicates", [])),
                "domains": {d.key: d.energy_j for d in m.domains if d.counted},
                "warnings": list(m.warnings),
            }
        )
    meter.close()
    with torch.no_grad():  # quality next to energy: the same held-out set for every configuration
        x_test = torch.randn(4096, IN_FEATURES, generator=torch.Generator().manual_seed(1))
        logits = model(x_test.to(device))
        accuracy = float((logits.argmax(dim=1).cpu() == (x_test @ teacher).argmax(dim=1)).float().mean())
    samples = steps * args.batch
    summary = {
        "world_size": world,
        "backend": args.backend,
        "samples_per_trial": samples,
        "global_batch": args.batch,
        "threads_per_rank": args.threads,
        "final_loss_rank0": loss,
        "test_accuracy": accuracy,
        "trials": trials,
        "energy_j": statistics.median(t["energy_j"] for t in trials),
        "duration_s": statistics.median(t["duration_s"] for t in trials),
        "source": trials[0]["source"],
        "co2e_g": statistics.median(t["co2e_g"] for t in trials) if trials[0]["co2e_g"] is not None else None,
        "launcher": launcher_environment(),
    }
    summary["energy_per_sample_j"] = summary["energy_j"] / samples
    summary["samples_per_s"] = samples / summary["duration_s"]
    if rank == 0:
        if args.out:
            Path(args.out).write_text(json.dumps(summary, default=str))
        else:
            print(format_one(summary))
    dist.destroy_process_group()
    return summary


def format_one(s: dict[str, Any]) -> str:
    spread = [t["energy_j"] for t in s["trials"]]
    return (
        f"{s['world_size']} rank(s): {s['samples_per_trial']} samples in {s['duration_s']:.3g} s "
        f"({s['samples_per_s']:.4g} samples/s), {s['energy_j']:.4g} J ({s['source']}), "
        f"{s['energy_per_sample_j'] * 1e3:.4g} mJ/sample"
        + (f", {s['co2e_g'] * 1e3:.3g} mg CO2e" if s.get("co2e_g") is not None else "")
        + f"; trials {', '.join(f'{e:.3g}' for e in spread)} J; "
        f"test accuracy {s['test_accuracy']:.1%}"
    )


# ---------------------------------------------------------------------------------------------- launcher
def launch(args: argparse.Namespace) -> int:
    """Run each world size under ``torchrun --standalone`` and compare them with the first."""
    sizes = [int(n) for n in args.ranks.split(",")]
    passthrough = worker_argv(args)
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ddp_scaling_") as tmp:
        for n in sizes:
            out = Path(tmp) / f"world{n}.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]
            cmd += [str(Path(__file__).resolve()), *passthrough, "--out", str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not out.exists():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
                print(f"ddp_scaling: {n} rank(s) failed (exit {proc.returncode}): {' | '.join(tail)}", file=sys.stderr)
                return 1
            results[n] = json.loads(out.read_text())
    comparison = compare(results)
    if args.json:
        print(json.dumps({"configs": results, "comparison": comparison}, default=str, indent=1))
    else:
        for n in sizes:
            print(format_one(results[n]))
        for row in comparison:
            print(
                f"{row['world_size']} vs {row['baseline']} rank(s): speed-up {row['speedup']:.3g}x, "
                f"scaling efficiency {row['scaling_efficiency']:.0%}, energy per sample "
                f"{row['energy_per_sample_ratio']:.3g}x the baseline's (energy scaling {row['energy_scaling']:.0%})"
            )
    return 0


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The workload options, as the launcher hands them to each torchrun worker."""
    out = [f"--samples={args.samples}", f"--batch={args.batch}", f"--trials={args.trials}"]
    out += [f"--warmup-steps={args.warmup_steps}", f"--backend={args.backend}", f"--threads={args.threads}"]
    out += [f"--region={args.region}"] if args.region else []
    out += [f"--samplers={args.samplers}"] if args.samplers else []
    return out


def compare(results: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each world size against the first: speed-up, scaling efficiency and energy per sample."""
    sizes = list(results)
    base_n, base = sizes[0], results[sizes[0]]
    rows = []
    for n in sizes[1:]:
        r = results[n]
        speedup = r["samples_per_s"] / base["samples_per_s"]
        ratio = r["energy_per_sample_j"] / base["energy_per_sample_j"] if base["energy_per_sample_j"] else float("nan")
        rows.append(
            {
                "world_size": n,
                "baseline": base_n,
                "speedup": speedup,
                "scaling_efficiency": speedup / (n / base_n),
                "energy_per_sample_ratio": ratio,
                "energy_scaling": 1 / ratio if ratio else float("nan"),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ):
        worker(args)
        return 0
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())
