"""Per-event energies: the table that turns counted events into modeled joules, and its file format.

The simulator counts raw events (``Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw``); a profile prices four events
derived from them, each a distinct physical cost:

=================  =================================  ==================================================
event              from the raw counts                what it stands for
=================  =================================  ==================================================
``instructions``   Ir                                 fetch, decode, register file, execute, control
``data_accesses``  Dr + Dw                            one L1 data cache access (a 64-bit word)
``ll_hits``        I1mr+D1mr+D1mw - (ILmr+DLmr+DLmw)  an L1 miss served by the last-level cache (a line)
``dram_lines``     ILmr + DLmr + DLmw                 a last-level miss served by DRAM (a 64-byte line)
=================  =================================  ==================================================

The default table (``horowitz-45nm``) takes M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014, pp. 10-14, for a 45 nm process at 0.9 V: about 70 pJ per instruction of a simple core
(the "instruction energy breakdown": fetch, register file and control dwarf the 0.1 pJ of a 32-bit add),
20 pJ per 64-bit read of a 32 KB cache, 100 pJ per 64-bit read of a 1 MB cache, and 1.3-2.6 nJ per 64-bit
DRAM access (the midpoint, 1.95 nJ, is used). Valgrind counts whole 64-byte lines for misses, so the two
line events are 8 x the per-word figure. The paper gives no factor to carry 45 nm figures to a newer node
(energy per operation has scaled slowly since Dennard scaling ended), so none is applied: the defaults are
an order of magnitude, stable across runs, and ``energybench calibrate`` fits a machine's own table.

A profile also names the cache geometry its energies were fitted with: miss counts depend on it, so the
meter simulates the profile's caches, and re-pricing counts made with other caches says so.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energybench.counted.errors import CountedError
from energybench.counted.valgrind import RAW_EVENTS, CacheGeometry

FORMAT = "energybench.counted-profile"
VERSION = 1
PROFILE_ENV = "ENERGYBENCH_COUNTED_PROFILE"
EVENTS = ("instructions", "data_accesses", "ll_hits", "dram_lines")
_WORDS_PER_LINE = 8  # a 64-byte line moved = 8 64-bit accesses of Horowitz's table

HOROWITZ_SOURCE = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014: 45 nm, "
                   "0.9 V; ~70 pJ/instruction, 20 pJ per 64-bit 32 KB-cache read, 100 pJ per 64-bit 1 MB-cache read, "
                   "1.3-2.6 nJ per 64-bit DRAM access (midpoint); line events = 8 words; not scaled to a newer node")


@dataclass(frozen=True)
class Profile:
    """Joules per derived event, the simulated caches they belong to, and where the figures came from."""

    name: str
    energies_j: Mapping[str, float]
    source: str
    cache: CacheGeometry = field(default_factory=CacheGeometry)
    fit: Mapping[str, Any] | None = None

    @property
    def method(self) -> str:
        """The provenance phrase every modeled figure carries."""
        return f"counted events x per-event energies, profile {self.name}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name, "source": self.source,
                                "energies_j": dict(self.energies_j), "cache": self.cache.to_dict()}
        if self.fit is not None:
            data["fit"] = dict(self.fit)
        return data


DEFAULT_PROFILE = Profile(
    name="horowitz-45nm",
    energies_j={
        "instructions": 70e-12,
        "data_accesses": 20e-12,
        "ll_hits": _WORDS_PER_LINE * 100e-12,
        "dram_lines": _WORDS_PER_LINE * 1.95e-9,
    },
    source=HOROWITZ_SOURCE,
)


def derive(raw: Mapping[str, int]) -> dict[str, int]:
    """The four priced events from callgrind's raw counts (see the module table)."""
    c = {e: int(raw.get(e, 0)) for e in RAW_EVENTS}
    dram = c["ILmr"] + c["DLmr"] + c["DLmw"]
    return {
        "instructions": c["Ir"],
        "data_accesses": c["Dr"] + c["Dw"],
        # never below zero: a window's counts minus its no-op twin's can leave a few misses either way
        "ll_hits": max(0, c["I1mr"] + c["D1mr"] + c["D1mw"] - dram),
        "dram_lines": dram,
    }


def price(raw: Mapping[str, int], profile: Profile) -> dict[str, float]:
    """Joules per derived event for these raw counts; events the profile leaves out cost nothing."""
    events = derive(raw)
    return {name: events[name] * float(profile.energies_j.get(name, 0.0)) for name in EVENTS}


def resolve_profile(given: str | os.PathLike[str] | None = None,
                    environ: Mapping[str, str] | None = None) -> Profile:
    """The profile a run uses: the path given, else ``$ENERGYBENCH_COUNTED_PROFILE``, else the default."""
    env = os.environ if environ is None else environ
    path = given or env.get(PROFILE_ENV)
    return load_profile(path) if path else DEFAULT_PROFILE


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile file; anything wrong is one line naming the file and the fix."""
    where = Path(path)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _bad(where, f"cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(where, f"is not JSON ({exc})") from None
    return profile_from_dict(data, where)


def profile_from_dict(data: Any, where: Path | str = "profile") -> Profile:
    """Check and build a profile from its JSON form (``Profile.to_dict``)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(where, f"is not an energybench counted profile (no \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise _bad(where, f"has version {data.get('version')!r}; this energybench reads version {VERSION}")
    unknown = sorted(set(data) - {"format", "version", "name", "source", "energies_j", "cache", "fit"})
    if unknown:
        raise _bad(where, f"has unknown key(s) {', '.join(unknown)}")
    name, source = data.get("name"), data.get("source", "")
    if not isinstance(name, str) or not name.strip() or not isinstance(source, str):
        raise _bad(where, "needs a \"name\" (text) and, if given, a \"source\" (text)")
    fit = data.get("fit")
    if fit is not None and not isinstance(fit, dict):
        raise _bad(where, "has a \"fit\" that is not an object")
    return Profile(name.strip(), _energies(data.get("energies_j"), where), source,
                   _cache(data.get("cache"), where), fit)


def _energies(value: Any, where: Path | str) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise _bad(where, f"needs \"energies_j\": joules per event for some of {', '.join(EVENTS)}")
    unknown = sorted(set(value) - set(EVENTS))
    if unknown:
        raise _bad(where, f"prices unknown event(s) {', '.join(unknown)} (known: {', '.join(EVENTS)})")
    energies = {}
    for event, joules in value.items():
        if isinstance(joules, bool) or not isinstance(joules, int | float) or not math.isfinite(joules) or joules < 0:
            raise _bad(where, f"energies_j.{event} = {joules!r} must be joules >= 0 (e.g. 7e-11)")
        energies[event] = float(joules)
    return energies


def _cache(value: Any, where: Path | str) -> CacheGeometry:
    if value is None:
        return CacheGeometry()
    if not isinstance(value, dict) or set(value) != {"I1", "D1", "LL"}:
        raise _bad(where, "needs \"cache\" as {\"I1\": [size, assoc, line], \"D1\": [...], \"LL\": [...]} or none")
    for key, spec in value.items():
        ok = isinstance(spec, list) and len(spec) == 3 and all(type(v) is int and v > 0 for v in spec)
        if not ok or spec[2] & (spec[2] - 1) or spec[0] % (spec[1] * spec[2]):
            raise _bad(where, f"cache.{key} = {spec!r} must be [size bytes, associativity, line bytes] with a "
                              "power-of-two line and size a multiple of associativity x line")
    return CacheGeometry.from_dict(value)


def save_profile(profile: Profile, path: str | os.PathLike[str]) -> Path:
    """Write a profile atomically (a crash never leaves half a profile for the next run to trip on)."""
    from energybench.atomic import write_text_atomic

    return write_text_atomic(path, json.dumps(profile.to_dict(), indent=2) + "\n")


def _bad(where: Path | str, problem: str) -> CountedError:
    return CountedError(f"profile {where} {problem}: fix the file (see the manual's 'Counted energy' page for the "
                        "format) or write one with `energybench calibrate --out FILE`")
