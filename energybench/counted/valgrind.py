"""Running a program under callgrind and reading what it counted.

Why callgrind and not cachegrind: valgrind 3.19 (Debian 12's) gives cachegrind no client requests (its
``CACHEGRIND_START/STOP_INSTRUMENTATION`` arrived in 3.22), so only callgrind can limit counting to a
window. Both simulate the same two cache levels and count the same events (``Ir Dr Dw I1mr D1mr D1mw ILmr
DLmr DLmw``) when callgrind runs with ``--cache-sim=yes``; the whole-command mode uses callgrind too, so the
two modes' counts are the same kind of figure.

What is pinned so that counts repeat (docs: "Counted energy", determinism):

* the simulated caches' geometry (``--I1/--D1/--LL``), else valgrind copies the host's and a runner with
  another CPU model counts other misses;
* address-space randomisation off (``setarch -R``): object addresses decide cache sets and dict orders;
* ``PYTHONHASHSEED=0``, one thread in every BLAS/OpenMP pool (valgrind serialises threads and spinning
  worker threads count instructions that depend on timing), and no ``.pyc`` written by the run itself;
* glibc's allocator: one arena, a fixed mmap threshold (large buffers always fresh pages), and no per-thread
  cache or fast bins (``GLIBC_TUNABLES``): both keep freed blocks unmerged in the order they were freed, so where
  a window's buffers landed followed small differences in what the process did long before (seen right after
  pytest-benchmark's start-up subprocesses). Eight sessions of a suite beside a CPU neighbour split into two
  layouts (a small convolution 9.6% apart); without the two caches seven of seven agreed within 0.001%. The
  price: glibc's allocation paths are those of a heap without them, a few more instructions per ``malloc``.
"""

from __future__ import annotations

import mmap
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from energybench.counted.errors import CountedError

VALGRIND_ENV = "ENERGYBENCH_VALGRIND"
#: Set by the runner for the program it starts: where callgrind writes (so an in-process window finds its dump).
OUT_DIR_ENV = "ENERGYBENCH_COUNTED_DIR"
#: ``whole`` (everything is counted) or ``windows`` (only client-request windows), for the program to check.
MODE_ENV = "ENERGYBENCH_COUNTED_MODE"
#: A folder where a counted pytest session keeps its callgrind dumps (one per window: they open in kcachegrind).
KEEP_ENV = "ENERGYBENCH_COUNTED_KEEP"
RAW_EVENTS = ("Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")
OUT_PREFIX = "callgrind.out"
#: Environment that removes run-to-run differences a simulator would otherwise count (see the module docstring).
DETERMINISM_ENV = {
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "1",
    # glibc raises its mmap threshold as large blocks are freed, so where a tensor's buffer comes from (fresh
    # pages, or a heap chunk of another size to split) would follow the process's history; fixed, it does not
    "MALLOC_MMAP_THRESHOLD_": "131072",
}
#: glibc tunables (merged into any the user set): no per-thread cache, no fast bins (module docstring).
MALLOC_TUNABLES = ("glibc.malloc.tcache_count=0", "glibc.malloc.mxfast=0")
#: Objects whose appearance in a dump means the workload drove a GPU, which the simulator cannot see.
GPU_OBJECTS = re.compile(r"lib(cuda|cudart|nvidia-|cublas|cudnn|amdhip64|hsa-runtime64|ze_loader|tpu)", re.I)
_CACHE_DESC = re.compile(rb"^desc: (?P<name>I1|D1|LL) cache:[ \t]+(?P<size>\d+) B, (?P<line>\d+) B, (?P<assoc>\d+)-way",
                         re.M)
#: The header lines a dump is read for, each found in the file as a whole (``parse_dump``).
_FIELDS = {name: re.compile(rb"^" + re.escape(name.encode()) + rb"([^\n]*)", re.M)
           for name in ("events:", "totals:", "pid:", "cmd:", "desc: Trigger:")}
_OBJECT = re.compile(rb"^ob=([^\n]*)", re.M)
INSTALL_HINT = "install valgrind (Debian/Ubuntu: sudo apt-get install valgrind) or set ENERGYBENCH_VALGRIND"


@dataclass(frozen=True)
class CacheGeometry:
    """The simulated caches, each ``(size bytes, associativity, line bytes)``; part of every count's meaning."""

    i1: tuple[int, int, int] = (32768, 8, 64)
    d1: tuple[int, int, int] = (32768, 8, 64)
    ll: tuple[int, int, int] = (8388608, 16, 64)

    def args(self) -> list[str]:
        return [f"--{name}={','.join(map(str, spec))}" for name, spec in (("I1", self.i1), ("D1", self.d1),
                                                                         ("LL", self.ll))]

    def to_dict(self) -> dict[str, list[int]]:
        return {"I1": list(self.i1), "D1": list(self.d1), "LL": list(self.ll)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[int]]) -> CacheGeometry:
        def spec(key: str) -> tuple[int, int, int]:
            size, assoc, line = (int(v) for v in data[key])
            return size, assoc, line

        return cls(i1=spec("I1"), d1=spec("D1"), ll=spec("LL"))


@dataclass(frozen=True)
class Dump:
    """One callgrind output file: a window (``trigger`` is the client request's label) or a whole process."""

    path: Path
    pid: int
    trigger: str
    events: dict[str, int]
    objects: tuple[str, ...] = ()
    command: str = ""
    cache: CacheGeometry | None = None  # the caches callgrind simulated, from the file's header

    @property
    def gpu_objects(self) -> list[str]:
        return [o for o in self.objects if GPU_OBJECTS.search(Path(o).name)]


@dataclass
class Invocation:
    """A command line and environment that runs a program under callgrind, writing into ``out_dir``."""

    argv: list[str]
    env: dict[str, str]
    out_dir: Path
    warnings: list[str] = field(default_factory=list)


def find_valgrind(environ: Mapping[str, str] | None = None) -> str | None:
    """``$ENERGYBENCH_VALGRIND`` when set, else ``valgrind`` on PATH."""
    env = os.environ if environ is None else environ
    given = env.get(VALGRIND_ENV)
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("valgrind", path=env.get("PATH"))


def valgrind_version(path: str) -> str:
    """``3.19.0`` from ``valgrind --version``; a valgrind that cannot even say its version cannot count."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise CountedError(f"cannot run {path} ({exc.strerror or exc}): {INSTALL_HINT}") from None
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", out.stdout)
    if out.returncode != 0 or match is None:
        raise CountedError(f"{path} --version failed ({out.stderr.strip()[:80]!r}): {INSTALL_HINT}")
    return match.group(1)


def require_valgrind(environ: Mapping[str, str] | None = None) -> str:
    """The valgrind to use, or one line saying how to get one (a Linux-only tool)."""
    if platform.system() != "Linux":
        raise CountedError(f"the counted meter needs valgrind on Linux (this is {platform.system()}): run it in a "
                           "Linux container or CI job, or use the measured meter")
    path = find_valgrind(environ)
    if path is None:
        raise CountedError(f"valgrind not found: {INSTALL_HINT}")
    return path


def invocation(
    argv: Sequence[str],
    out_dir: Path,
    *,
    geometry: CacheGeometry,
    whole_program: bool,
    valgrind: str,
    environ: Mapping[str, str] | None = None,
    trace_children: bool = True,
) -> Invocation:
    """The command that counts ``argv``: the whole program (``whole_program``) or only its client-request
    windows (instrumentation off until a window starts it, so start-up runs several times faster).
    ``trace_children=False`` lets the program's own subprocesses run natively (a pytest session's other tests):
    a window still refuses work that starts a process, from the process table rather than their dumps."""
    env = dict(os.environ if environ is None else environ)
    env.update(DETERMINISM_ENV)
    env["GLIBC_TUNABLES"] = tunables(env.get("GLIBC_TUNABLES", ""))
    env[OUT_DIR_ENV] = str(out_dir)
    env[MODE_ENV] = "whole" if whole_program else "windows"
    tool = [
        valgrind, "--tool=callgrind", "--cache-sim=yes", *geometry.args(),
        f"--instr-atstart={'yes' if whole_program else 'no'}", f"--trace-children={'yes' if trace_children else 'no'}",
        "--separate-threads=no",
        "--dump-instr=no", "--dump-line=no", "--compress-strings=no", "--compress-pos=no",
        f"--callgrind-out-file={out_dir / OUT_PREFIX}.%p", f"--log-file={out_dir / 'valgrind'}.%p.log",
    ]
    warnings: list[str] = []
    setarch = shutil.which("setarch", path=env.get("PATH"))
    if setarch is None:
        warnings.append("setarch not found (util-linux): address-space randomisation stays on, so counts may move "
                        "between runs")
        prefix: list[str] = []
    else:
        prefix = [setarch, platform.machine(), "-R"]  # outside valgrind: its own start-up is never counted
    return Invocation([*prefix, *tool, "--", *argv], env, out_dir, warnings)


def tunables(existing: str) -> str:
    """``existing`` glibc tunables with the counted meter's allocator settings in place of any it gives for them."""
    ours = {t.split("=")[0] for t in MALLOC_TUNABLES}
    kept = [t for t in existing.split(":") if t and t.split("=")[0] not in ours]
    return ":".join([*kept, *MALLOC_TUNABLES])


def parse_dump(path: Path) -> Dump:
    """Read the header and the ``totals:`` line of a callgrind output file (format docs: callgrind manual,
    "Callgrind Format Specification"). ``totals`` is the sum of the file's cost lines; ``summary`` is not
    used because callgrind computes it as a difference that wraps below zero after a zeroed window.

    The file is searched through a memory map for the few lines needed, not read line by line: in a process
    that goes on counting (a pytest session), reading allocates, and buffers whose sizes follow the file's would
    leave the allocator in another state from one run to the next, moving the next windows' counts."""
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _parse(path, data)
    except ValueError:  # an empty file cannot be mapped
        raise CountedError(f"{path} is not a callgrind output file (no events: line); was it cut short?") from None


def _parse(path: Path, data: mmap.mmap) -> Dump:
    def field(name: str) -> str:
        found = _FIELDS[name].search(data)
        return found.group(1).decode("utf-8", "replace").strip() if found else ""

    names = field("events:").split()
    if not names:
        raise CountedError(f"{path} is not a callgrind output file (no events: line); was it cut short?")
    values = [int(v) for v in field("totals:").split()]
    counts = dict(zip(names, values + [0] * (len(names) - len(values)), strict=True))
    missing = [e for e in RAW_EVENTS if e not in counts]
    if missing:
        raise CountedError(f"{path} has no {', '.join(missing)} counts: run callgrind with --cache-sim=yes")
    caches = {m["name"].decode(): (int(m["size"]), int(m["assoc"]), int(m["line"])) for m in _CACHE_DESC.finditer(data)}
    cache = CacheGeometry.from_dict(caches) if set(caches) == {"I1", "D1", "LL"} else None
    objects = dict.fromkeys(m.group(1).decode("utf-8", "replace").strip() for m in _OBJECT.finditer(data))
    pid = field("pid:")
    return Dump(path, int(pid) if pid.isdigit() else 0, field("desc: Trigger:"), {e: counts[e] for e in RAW_EVENTS},
                tuple(objects), field("cmd:"), cache)


def collect(out_dir: Path) -> list[Dump]:
    """Every dump callgrind wrote into ``out_dir``, whole-process files and window files alike."""
    return [parse_dump(p) for p in sorted(out_dir.glob(f"{OUT_PREFIX}.*")) if p.is_file()]


def window_label(trigger: str) -> str | None:
    """The energybench label of a window dump (``Client Request: <label>``), else ``None``."""
    prefix = "Client Request: "
    return trigger[len(prefix):] if trigger.startswith(prefix) else None


def valgrind_failure(out_dir: Path) -> str:
    """The first error valgrind logged (an option it refused, a program it could not start), for one line."""
    for log in sorted(out_dir.glob("valgrind.*.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            text = re.sub(r"^==\d+== ", "", line).strip()
            if text.startswith(("valgrind:", "Bad option", "FATAL", "Fatal")) or "cannot execute" in text:
                return text
    return ""
