"""Does a pytest A/B session cry wolf on identical code, and does spreading it over process pairs fix that?

``bench_gate_accuracy.py`` measures A/B sessions inside one process, so both sides share the process and its
memory layout. ``energybench ab`` on a pytest suite runs each side in its own process, and a process carries an
effect of its own (where its arrays landed, ASLR) that every round inside it shares. This benchmark runs real
``energybench ab`` sessions on a small git repository with a numpy matmul test (one BLAS thread), alternating

* ``--processes 1`` (one pair of pytest processes, the rounds paired inside it) and
* ``--processes 10`` (the default: ten pairs, the process pair is the unit of the test),

each as an A/A session (identical code on both sides) and a +10% session (the candidate does 10% more work),
and counts how often the gate ``energy:+5%`` fails.

    python benchmarks/bench_ab_processes.py             # 6 sessions of each kind (~10 minutes)
    python benchmarks/bench_ab_processes.py --noise     # with bench_gate_accuracy's stepping neighbours
    python benchmarks/bench_ab_processes.py --sessions 2
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import neighbours  # noqa: E402

from energybench.measuring.noise import cpus_available  # noqa: E402

TEST = """
import numpy as np
from work import REPS

A = np.random.default_rng(0).standard_normal((96, 96))

def test_matmul(energy):
    energy(lambda: [A @ A for _ in range(REPS)])
"""
BASE_REPS = 40


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args], cwd=cwd, check=True,
                   capture_output=True)


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    (repo / "test_matmul.py").write_text(TEST)
    (repo / "work.py").write_text(f"REPS = {BASE_REPS}\n")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "baseline", cwd=repo)
    return repo


def session(repo: Path, results: Path, processes: int, reps: int) -> tuple[bool, str]:
    """One ``energybench ab main`` session with the working tree at ``reps``; (gate failed, change [CI])."""
    (repo / "work.py").write_text(f"REPS = {reps}\n")
    out = subprocess.run(
        [sys.executable, "-m", "energybench", "ab", "main", "--processes", str(processes), "--results", str(results),
         "--fail-on", "energy:+5%", "--", "pytest", "test_matmul.py", "-q", "-p", "no:randomly"],
        cwd=repo, capture_output=True, text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}, timeout=1800)
    if out.returncode not in (0, 1):
        raise SystemExit(f"energybench ab exited {out.returncode}: {out.stderr[-800:]}")
    text = " ".join(out.stdout.split())
    found = re.search(r"change ([+-][\d.]+%) \[95% CI ([+-][\d.]+%), ([+-][\d.]+%)\]", text)
    return out.returncode == 1, f"{found[1]} [{found[2]}, {found[3]}]" if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6, help="sessions of each kind and process count")
    parser.add_argument("--noise", action="store_true", help="run neighbours whose load steps on and off")
    args = parser.parse_args()
    kinds = {"A/A (same work)": BASE_REPS, "+10% work": round(BASE_REPS * 1.1)}
    counts = {(k, p): [] for k in kinds for p in (1, 10)}
    t0 = time.perf_counter()
    hogs = neighbours.start(cpus_available()) if args.noise else []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
            repo = make_repo(Path(tmp))
            for i in range(args.sessions):
                for kind, reps in kinds.items():
                    for processes in (1, 10):
                        results = Path(tmp) / f"results-{i}-{processes}-{reps}"
                        failed, change = session(repo, results, processes, reps)
                        counts[(kind, processes)].append(failed)
                        print(f"session {i + 1}: {kind:16} --processes {processes:<2}  {change:24} "
                              f"{'FAIL' if failed else 'pass'}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        neighbours.stop(hogs)
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs; noise: {'on' if args.noise else 'off'}; "
          f"gate energy:+5%; "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'comparison':16} {'--processes 1':>15} {'--processes 10':>15}")
    for kind in kinds:
        one, ten = counts[(kind, 1)], counts[(kind, 10)]
        print(f"{kind:16} {sum(one):>9}/{len(one):<5} {sum(ten):>9}/{len(ten):<5}")


if __name__ == "__main__":
    main()
