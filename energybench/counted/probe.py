"""Whether the counted meter can run here, and why not: ``energybench sensors`` prints it as its own row.

The counted meter is not a sampler (it reads no power or energy), so it is probed apart from the sampler
registry; like a sampler probe, it never raises: every failure becomes the stated reason.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from energybench.counted.clientreq import supported_machine
from energybench.counted.errors import CountedError
from energybench.counted.valgrind import INSTALL_HINT, find_valgrind, valgrind_version

NAME = "counted"


@dataclass(frozen=True)
class CountedAvailability:
    available: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    name: str = NAME
    source: str = "modeled"


def probe(environ: Mapping[str, str] | None = None) -> CountedAvailability:
    """Valgrind present and runnable on Linux; windows (``count_calls``) also need x86-64 client requests."""
    system = platform.system()
    if system != "Linux":
        return CountedAvailability(False, f"valgrind runs on Linux only (this is {system})")
    path = find_valgrind(environ)
    if path is None:
        return CountedAvailability(False, f"valgrind not found: {INSTALL_HINT}")
    try:
        version = valgrind_version(path)
    except CountedError as exc:
        return CountedAvailability(False, str(exc))
    windows = supported_machine()
    scope = ("whole commands and windows" if windows else
             f"whole commands only (windows need x86-64 client requests; this is {platform.machine()})")
    return CountedAvailability(True, f"valgrind {version} (callgrind): {scope}",
                               {"valgrind": path, "version": version, "windows": windows})
