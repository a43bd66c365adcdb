"""Calibration kernels: small programs whose event mixes differ enough to tell the four energies apart.

A least-squares fit can only separate events that vary independently across the kernels, so the kernels
lean on different events: an interpreter loop and a C loop over L1-resident data (instructions), a strided
walk over a buffer that fits the simulated last level but not L1 (one L1 miss served by LL per few
instructions), the same walk over a buffer far larger than the last level (one DRAM line per few
instructions), and two mixes (a sort, a sum over a million objects) that the fit must also reproduce: with
six kernels for three energies, the residual is a real check.

Data accesses per instruction hardly vary across real code (0.45-0.7 in these kernels), so a fit cannot
separate their energy from the instructions'; calibration fits instructions, LL hits and DRAM lines by
default and folds L1 data accesses into the per-instruction energy.

Each kernel is a *factory* (``runner.count_targets`` targets): buffers are allocated outside the counted
window, and every call does the same work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Kernel:
    """A calibration kernel: its name, the ``module:factory`` target, and what it leans on."""

    name: str
    target: str
    leans_on: str


def python_loop() -> Callable[[], int]:
    """Integer arithmetic in the interpreter: instructions, with the interpreter's own few data accesses."""

    def run() -> int:
        total = 0
        for i in range(20_000):
            total = (total + i * i) & 0xFFFF
        return total

    return run


def hex_l1() -> Callable[[], None]:
    """Hex-encoding a 4 KiB buffer 200 times: a C loop over L1-resident data and a lookup table.

    (Not a ``memcpy``: glibc copies large blocks with ``rep movsb``, which valgrind counts as one instruction
    and two accesses per byte while the CPU moves 32 bytes per cycle, a kernel no energy table can fit.)"""
    data = bytes(range(256)) * 16

    def run() -> None:
        for _ in range(200):
            data.hex()

    return run


def _strided(size: int, passes: int) -> Callable[[], None]:
    buf = bytearray(size)
    for i in range(0, size, 4096):  # touch every page now, so page faults stay out of the window
        buf[i] = 1

    def run() -> None:
        for _ in range(passes):
            bytes(buf[::64])  # one byte per 64-byte line: every access is a new line

    return run


def ll_stride() -> Callable[[], None]:
    """A 2 MiB buffer walked line by line 16 times: misses L1 (32 KiB), hits the 8 MiB last level."""
    return _strided(2 * MIB, 16)


def dram_stride() -> Callable[[], None]:
    """A 64 MiB buffer walked line by line once: eight times the last level, so every line comes from DRAM."""
    return _strided(64 * MIB, 1)


def sort_floats() -> Callable[[], list[float]]:
    """Sorting 50,000 boxed floats: interpreter and C comparisons over objects spread across ~2 MiB."""
    values = [((i * 7919) % 50_021) / 7.0 for i in range(50_000)]

    def run() -> list[float]:
        return sorted(values)

    return run


def sum_objects() -> Callable[[], int]:
    """Summing 1,000,000 int objects (~40 MiB with the list): a mix of instructions and DRAM lines."""
    values = [i * 3 + 1_000_000 for i in range(1_000_000)]

    def run() -> int:
        return sum(values)

    return run


KERNELS = (
    Kernel("python-loop", f"{__name__}:python_loop", "instructions"),
    Kernel("hex-l1", f"{__name__}:hex_l1", "instructions over L1-resident data"),
    Kernel("ll-stride", f"{__name__}:ll_stride", "ll_hits"),
    Kernel("dram-stride", f"{__name__}:dram_stride", "dram_lines"),
    Kernel("sort-floats", f"{__name__}:sort_floats", "a mix (check kernel)"),
    Kernel("sum-objects", f"{__name__}:sum_objects", "a mix (check kernel)"),
)
