"""Real faults for tests/test_fault_injection.py: file-system failures, a tiny plugin, process helpers.

Tests run as root here, so a chmod'ed directory stops nothing. What really fails for root is used instead:
``RLIMIT_FSIZE`` (every write past N bytes fails with EFBIG; Python ignores SIGXFSZ), a path under a regular
file (ENOTDIR), a name over NAME_MAX (ENAMETOOLONG), and, where the machine allows mounting, a tiny full
tmpfs (ENOSPC) and a read-only tmpfs (EROFS).
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

PLUGIN = '''
"""A tiny energybench plugin for fault-injection tests: one subject whose work takes a set time."""
import time

from energybench.subjects.api import Context, Model, NotApplicable, Quality, Subject, Workload


class FaultSubject(Subject):
    name = "fault"
    description = "a tiny linear layer that works for a set time (fault-injection tests)"

    def baseline(self, ctx: Context) -> Model:
        import torch

        self.opts = ctx.options.get("fault", {})
        self.x = torch.randn(16, 8)
        return Model(torch.nn.Linear(8, 8))

    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        import torch

        work_s = float(self.opts.get("work_s", 0.02))

        def run() -> int:
            end = time.perf_counter() + work_s
            with torch.inference_mode():
                while time.perf_counter() < end:
                    model.module(self.x)
            return 16

        def not_here() -> None:
            raise NotApplicable("this workload needs hardware that is not here")

        loads = [Workload("work", "inference", "row", run)]
        if self.opts.get("with_na"):
            loads.append(Workload("needs-hw", "inference", "row", run, setup=not_here))
        return loads

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        return Quality("mse", 0.0, higher_is_better=False)
'''


def install_plugin(target: Path) -> Path:
    """The plugin as pip would install it with ``--target``: a module and a ``.dist-info`` whose entry point
    registers the ``fault`` subject (found through ``importlib.metadata`` on ``PYTHONPATH``)."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "eb_fault_plugin.py").write_text(PLUGIN)
    info = target / "eb_fault_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eb-fault-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[energybench.subjects]\nfault = eb_fault_plugin:FaultSubject\n")
    return target


def write_suite(directory: Path, work_s: float = 0.02, with_na: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "suite.py").write_text(
        "from energybench import Suite\n"
        f"SUITES = [Suite('fault', methods=[], options={{'fault': {{'work_s': {work_s}, 'with_na': {with_na}}}}})]\n"
    )
    return directory


def env_with(*paths: Path | str, **extra: str) -> dict[str, str]:
    """The environment with ``paths`` in front of ``PYTHONPATH`` (the worktree's own stays in)."""
    old = os.environ.get("PYTHONPATH", "")
    joined = os.pathsep.join([*map(str, paths), *([old] if old else [])])
    return {**os.environ, "PYTHONPATH": joined, **extra}


def size_limit(n_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn``: every file the child writes stops at ``n_bytes`` (EFBIG), even for root."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))

    return limit


def energybench(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                preexec_fn: Callable[[], None] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "energybench", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), cwd=cwd, preexec_fn=preexec_fn, timeout=timeout)


def clock_samplers() -> list:
    """A 10 W clock counter with no update interval, so energy benchmarks need no long windows (the faults
    under test are in files and signals, not in sampling)."""
    from sampler_doubles import ClockCounter

    return [ClockCounter(watts=10.0)]


def pytest_run(cwd: Path, *args: str, preexec_fn: Callable[[], None] | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess:
    """A real pytest session in ``cwd`` measuring with ``clock_samplers``."""
    env = env_with(TESTS, ENERGYBENCH_PYTEST_SAMPLERS="faults:clock_samplers")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, preexec_fn=preexec_fn, timeout=timeout)


ENERGY_TESTS = textwrap.dedent('''
    import pytest

    @pytest.mark.parametrize("n", [1, 2, 3])
    @pytest.mark.energy(rounds=3, warmup_rounds=0, min_time=0.005)
    def test_sum(energy, n):
        energy(sum, range(2000 * n))
''')


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "energybench: error:" in line]


@contextlib.contextmanager
def tmpfs(where: Path, size: str, *, read_only: bool = False, fill: bool = False) -> Iterator[Path]:
    """A real tmpfs of ``size`` at ``where`` (full if ``fill``, read-only if asked); skips the test where
    mounting is not allowed (no root, no CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        if fill:
            with open(where / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 4096)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def no_debris(directory: Path) -> list[str]:
    """Temp files and claim markers left in a results directory (there should be none)."""
    return [p.name for p in directory.iterdir() if p.name.startswith(".")] if directory.is_dir() else []
