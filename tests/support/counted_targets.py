"""Workloads for counted-meter tests: factories (``runner.count_targets`` targets) returning what to count.

Named by file path in tests (``counted_targets.py:sort_list``), so the process under valgrind imports them
without the tests directory on its path.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve()


def target(factory: str) -> str:
    """The ``file.py:factory`` spec of one of these workloads."""
    return f"{HERE}:{factory}"


def sort_list() -> Callable[[], list[int]]:
    """A pure-Python workload: sorting 5,000 ints with a key function."""
    data = [(i * 7919) % 5003 for i in range(5000)]

    def run() -> list[int]:
        return sorted(data, key=lambda x: -x)

    return run


def empty() -> Callable[[], None]:
    """Nothing at all: what is left is the harness's own cost."""

    def run() -> None:
        return None

    return run


def forker() -> Callable[[], None]:
    """Starts a process: work callgrind cannot count in this one."""

    def run() -> None:
        subprocess.run(["/bin/true"], check=True)

    return run
