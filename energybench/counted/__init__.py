"""Counted energy: a deterministic meter for CI gates on shared runners.

A meter that reads time or power inherits a shared runner's noise. This one counts instead: the work runs
under valgrind's callgrind (instructions and simulated cache misses, the same on every run), and the counts
are priced with a table of joules per event (``profile``). The figures are ``modeled``, a third provenance
beside ``measured`` and ``estimated``, and are only ever compared with each other.

The flow, one module each: ``valgrind`` (command line, determinism settings, dump parsing) -> ``clientreq``
(callgrind's toggles from Python) -> ``window`` (counted windows inside a process: ``count_calls``) and
``runner`` (processes under the simulator: whole commands, ``count_targets``), ``meter`` (a process's windows as
the pytest plugin's meter: ``--energy-meter counted``) -> ``result`` (counts + price,
``reprice``) with ``profile`` (per-event energies, defaults and file format); ``kernels``, ``fit`` and
``calibrate`` fit a machine's own profile against RAPL; ``command``, ``report`` and ``probe`` serve the CLI.
Nothing here imports numpy or torch at import time, so ``energybench sensors`` stays fast.
"""

from energybench.counted.errors import CountedError
from energybench.counted.profile import DEFAULT_PROFILE, Profile, load_profile, resolve_profile
from energybench.counted.result import CountedResult, reprice
from energybench.counted.runner import count_target, count_targets, session_invocation
from energybench.counted.window import CountedSession, count_calls

__all__ = [
    "DEFAULT_PROFILE",
    "CountedError",
    "CountedResult",
    "CountedSession",
    "Profile",
    "count_calls",
    "count_target",
    "count_targets",
    "load_profile",
    "reprice",
    "resolve_profile",
    "session_invocation",
]
