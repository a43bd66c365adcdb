"""Neighbours for the benchmarks: busy loops outside the benchmark's process tree, as a CI runner's other jobs.

A shell that exits at once leaves each one to init, so the process-scope CPU estimate (which counts the
benchmark's children as its own work) does not bill them to the benchmark. ``steady`` keeps one CPU busy;
``stepping`` is busy 1-4 s then idle 1-4 s on a seeded schedule (the load changes between the two sides of a
trial pair, the hard case for interleaving). Each leaves when its owner process is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

STEPPING = """
import os, random, sys, time
rng, owner = random.Random(int(sys.argv[1])), int(sys.argv[2])
while True:
    try:
        os.kill(owner, 0)
    except OSError:
        break
    end = time.monotonic() + rng.uniform(1, 4)
    while time.monotonic() < end:
        pass
    time.sleep(rng.uniform(1, 4))
"""

STEADY = """
import os, sys, time
owner, last = int(sys.argv[2]), time.monotonic()
while True:
    if time.monotonic() - last > 1:
        try:
            os.kill(owner, 0)
        except OSError:
            break
        last = time.monotonic()
"""


def start(count: int, kind: str = "stepping") -> list[int]:
    """Start ``count`` neighbours of ``kind`` (``stepping`` or ``steady``); returns their PIDs."""
    code = STEPPING if kind == "stepping" else STEADY
    pids = []
    for seed in range(count):
        done = subprocess.run(["sh", "-c", '"$0" -c "$1" "$2" "$3" >/dev/null 2>&1 & echo $!', sys.executable,
                               code, str(seed), str(os.getpid())], capture_output=True, text=True, check=True)
        pids.append(int(done.stdout.strip()))
    return pids


def stop(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
