"""Valgrind client requests from Python, without a compiler: callgrind's start/stop/zero/dump toggles.

Why not the C macros of ``valgrind.h``: they need a compiler and the headers at first use (and a writable
cache for the built shim, shared safely between parallel test workers), and pytest-codspeed's compiled
module needs ``CODSPEED_ENV``, registers a whole pytest plugin and calls a request (``ADD_OBJ_SKIP``) that only
CodSpeed's patched valgrind knows. A client request is just a magic instruction sequence that valgrind's JIT
recognises and a real CPU executes as a no-op, so this module writes that sequence (29 bytes, transcribed
from ``valgrind.h``'s amd64 ``VALGRIND_DO_CLIENT_REQUEST_EXPR``) into an executable page and calls it with
ctypes. On a CPU without valgrind the call returns its default argument, exactly as the macro does.

The sequence is x86-64 only: on other machines ``ClientRequests()`` raises ``CountedError`` naming the
alternative (whole-command counting needs no client request).
"""

from __future__ import annotations

import ctypes
import mmap
import platform

from energybench.counted.errors import CountedError

#: ``mov rax, rdi; mov rdx, rsi`` (args array, default result), the special preamble ``rol rdi, 3/13/61/51``
#: (a no-op: 128 bits of rotation), ``xchg rbx, rbx`` (the request itself: RDX = request(RAX)), then
#: ``mov rax, rdx; ret``. valgrind.h, amd64 section: __SPECIAL_INSTRUCTION_PREAMBLE and
#: VALGRIND_DO_CLIENT_REQUEST_EXPR.
_AMD64_REQUEST = bytes.fromhex(
    "4889f8" "4889f2" "48c1c703" "48c1c70d" "48c1c73d" "48c1c733" "4887db" "4889d0" "c3"
)
_MACHINES = ("x86_64", "amd64")

RUNNING_ON_VALGRIND = 0x1001
#: VG_USERREQ_TOOL_BASE('C', 'T'): callgrind.h numbers its requests from here in this order.
_CALLGRIND_BASE = (ord("C") << 24) | (ord("T") << 16)
DUMP_STATS = _CALLGRIND_BASE
ZERO_STATS = _CALLGRIND_BASE + 1
TOGGLE_COLLECT = _CALLGRIND_BASE + 2
DUMP_STATS_AT = _CALLGRIND_BASE + 3
START_INSTRUMENTATION = _CALLGRIND_BASE + 4
STOP_INSTRUMENTATION = _CALLGRIND_BASE + 5

_Args = ctypes.c_uint64 * 6


def supported_machine(machine: str | None = None) -> bool:
    """Whether client requests can be issued on this CPU architecture."""
    return (machine or platform.machine()).lower() in _MACHINES


class ClientRequests:
    """The callgrind requests the counted window needs, each one ctypes call into the magic sequence.

    The argument arrays are built once, so a toggle costs the same few hundred instructions every time:
    the window's fixed overhead stays constant and is subtracted exactly (``window.CountedSession``).
    """

    def __init__(self) -> None:
        if not supported_machine():
            raise CountedError(
                f"counted windows need valgrind client requests, implemented here for x86-64 only (this is "
                f"{platform.machine()}): count the whole command instead (`energybench measure --meter counted -- "
                "CMD`)"
            )
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._page.write(_AMD64_REQUEST)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        if libc.mprotect(ctypes.c_void_p(address), mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            errno = ctypes.get_errno()
            raise CountedError(
                f"cannot make a page executable for valgrind client requests (mprotect errno {errno}): the "
                "system forbids executable memory (SELinux execmem?); count the whole command instead"
            )
        self._call = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64)(address)
        self._fixed = {code: _Args(code, 0, 0, 0, 0, 0) for code in
                       (RUNNING_ON_VALGRIND, ZERO_STATS, START_INSTRUMENTATION, STOP_INSTRUMENTATION)}
        self._labels: dict[int, ctypes.Array[ctypes.c_char]] = {}

    def request(self, code: int, arg1: int = 0, default: int = 0) -> int:
        """Issue one client request; returns valgrind's answer, or ``default`` on a real CPU."""
        args = self._fixed.get(code) if arg1 == 0 else None
        if args is None:
            args = _Args(code, arg1, 0, 0, 0, 0)
        return int(self._call(ctypes.addressof(args), default))

    def running_on_valgrind(self) -> int:
        """0 on a real CPU, else the number of valgrind layers this process runs under."""
        return self.request(RUNNING_ON_VALGRIND)

    def start_instrumentation(self) -> None:
        """Turn callgrind's instrumentation on; callgrind also clears its simulated caches here, so every
        window starts from the same (cold) cache state whatever ran before it."""
        self.request(START_INSTRUMENTATION)

    def stop_instrumentation(self) -> None:
        self.request(STOP_INSTRUMENTATION)

    def zero_stats(self) -> None:
        self.request(ZERO_STATS)

    def dump_request(self, label: bytes) -> ctypes.Array[ctypes.c_uint64]:
        """The prepared arguments of a DUMP_STATS_AT request for ``label``: built before a window opens, so
        the window's closing request costs the same whatever the label's length."""
        buffer = ctypes.create_string_buffer(label)
        args = _Args(DUMP_STATS_AT, ctypes.addressof(buffer), 0, 0, 0, 0)
        self._labels[ctypes.addressof(args)] = buffer  # the label must outlive the request
        return args

    def dump_stats_at(self, prepared: ctypes.Array[ctypes.c_uint64]) -> None:
        """Write the counts since the last zero/dump to a new file whose ``desc: Trigger:`` names the label."""
        self._call(ctypes.addressof(prepared), 0)
        self._labels.pop(ctypes.addressof(prepared), None)
