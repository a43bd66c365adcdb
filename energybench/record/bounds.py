"""Physical bounds on energy figures: one check for the meter, for the writer of a run file and for its reader.

Why one module: a sampler plugin's counter once read 1e300 J. The meter printed "2.79e+278 EJ" as measured,
the run was saved, and the loader then refused the file (beyond its own limit), after which no report of the
directory worked. Each step had its own idea of a plausible figure. Here the limits are stated once, and all
three ask the same functions with the same numbers:

* the meter (``measuring.window``) never integrates a counter step or a power reading beyond a domain's
  ``power_limit_w``, and gives a window figure that is still beyond the bounds no value: n/a, the domain
  missing (so the round is partial) with the reason in the warnings;
* the writer (``Run.to_dict``) turns any figure a record holds beyond them into n/a with the reason before
  the file is written, whoever built the record;
* the reader (``Run.from_dict``) refuses a file that holds one (something else wrote it), naming the field,
  so a bad figure never reaches a sum, a ratio or an export.

So whatever is written is read back. The limits are loose on purpose: they catch figures no hardware could
produce, not unusual ones. Samplers hold tighter bounds of their own (``Domain.max_power_w``).
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from energybench.errors import ResultsError
from energybench.record.parse import MAX_FIGURE, one_line

if TYPE_CHECKING:
    from energybench.record.benchmark import Benchmark
    from energybench.record.parts import Idle, Round

#: The most one domain of a device kind can draw, in watts, with headroom over the largest parts sold: a CPU
#: domain may be a whole 8-socket server's estimate (8 x 500 W), an accelerator domain one board (the largest
#: draw about 2.7 kW, a GB200 superchip).
POWER_LIMIT_W: Mapping[str, float] = {"cpu": 10_000.0, "gpu": 5_000.0, "tpu": 5_000.0, "ane": 5_000.0}
#: Any other device a plugin names (a node, a PDU, a rack): a whole rack.
OTHER_POWER_LIMIT_W = 100_000.0
#: A total whose domains are unknown (the idle power): ten racks.
TOTAL_POWER_LIMIT_W = 1_000_000.0
#: Energy a window may hold beyond its duration at the limit: a counter's update, a read's latency.
SLACK_S = 1.0
#: The longest a window can last: 31 years.
MAX_DURATION_S = 1e9
#: How far the wall clock and the monotonic clock may drift apart over one window (NTP slews at most 0.05 %):
#: beyond this one of them jumped (a suspended VM, an NTP step), and the window's duration is unknown.
CLOCK_TOLERANCE_S = 1.0
CLOCK_TOLERANCE_FRACTION = 0.01


def device_kind(key: str) -> str:
    """``cpu`` of ``cpu:package-0``; ``gpu`` of ``node1/rank0/gpu:0`` (an aggregated domain keeps its kind)."""
    return key.rsplit("/", 1)[-1].split(":", 1)[0].lower()


def power_limit_w(key: str, declared: float | None = None) -> float:
    """The most domain ``key`` can draw: its device kind's limit, or the sampler's own tighter bound."""
    limit = _kind_limit_w(key)
    return min(limit, declared) if declared is not None and declared > 0 else limit


@functools.lru_cache(maxsize=4096)
def _kind_limit_w(key: str) -> float:
    return POWER_LIMIT_W.get(device_kind(key), OTHER_POWER_LIMIT_W)


def energy_problem(joules: float, seconds: float, limit_w: float) -> str | None:
    """Why ``joules`` over ``seconds`` cannot be a figure (``None`` when it can; NaN is n/a, not a problem)."""
    if math.isnan(joules):
        return None
    if math.isinf(joules) or joules < 0:
        return f"{joules:.6g} J is impossible (negative or infinite)"
    allowed = limit_w * (max(seconds, 0.0) + SLACK_S)
    if joules > allowed * (1 + 1e-9):
        return f"{joules:.3g} J in {seconds:.3g} s is more than {limit_w:g} W could draw"
    return None


def domain_problem(key: str, joules: float, seconds: float) -> str | None:
    """Why domain ``key``'s ``joules`` over a ``seconds`` window cannot be a figure, or ``None``."""
    return energy_problem(joules, seconds, power_limit_w(key))


def total_problem(joules: float, seconds: float, keys: Iterable[str]) -> str | None:
    """Why a total over domains ``keys`` cannot be a figure: beyond all of them at their limits."""
    limit = math.fsum(power_limit_w(k) for k in keys) or TOTAL_POWER_LIMIT_W
    why = energy_problem(joules, seconds, limit)
    return f"the total: {why}" if why else None


def duration_problem(seconds: float) -> str | None:
    if not math.isfinite(seconds) or seconds < 0:
        return f"a duration of {seconds:g} s is impossible"
    if seconds > MAX_DURATION_S:
        return f"a duration of {seconds:.3g} s is more than {MAX_DURATION_S:g} s"
    return None


def clock_problem(monotonic_s: float, wall_s: float) -> str | None:
    """Why a window whose two clocks advanced by these amounts has no known duration, or ``None``."""
    if abs(wall_s - monotonic_s) <= CLOCK_TOLERANCE_S + CLOCK_TOLERANCE_FRACTION * max(monotonic_s, 0.0):
        return None
    return (f"the clocks disagree: {monotonic_s:.4g} s by the monotonic clock, {wall_s:.4g} s by the wall clock "
            "(a suspended machine or a clock step): the window's duration is unknown")


def _number_problem(what: str, value: float | None) -> str | None:
    """A figure that is no energy itself (grams, joules above idle): finite, not negative, within reason."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value) or value < 0 or value > MAX_FIGURE:
        return f"{what} {value:g} is impossible"
    return None


def round_problems(r: Round, *, timeline: bool = True) -> list[tuple[str, str]]:
    """(field, why) for every figure of ``r`` beyond the bounds; empty for a sound round. ``timeline=False``
    skips the power timeline, for a round the parser read (it already refused such watts)."""
    if _sound(r) and not (timeline and r.timeline):
        return []
    out: list[tuple[str, str]] = []
    bad_duration = duration_problem(r.duration_s)
    if bad_duration:
        out.append(("duration_s", bad_duration))
    seconds = 0.0 if bad_duration else r.duration_s
    out += [(f"domains.{key}", why) for key, j in r.domains.items() if (why := domain_problem(key, j, seconds))]
    if why := total_problem(r.energy_j, seconds, r.domains):
        out.append(("energy_j", why))
    for name in ("co2e_g", "energy_above_idle_j"):
        if why := _number_problem(name, getattr(r, name)):
            out.append((name, why))
    if timeline and any(not _plottable(w) for _, watts in r.timeline for w in watts.values()):
        out.append(("timeline", "watts beyond any plausible figure"))
    return out


def _sound(r: Round) -> bool:
    """The quick yes of ``round_problems`` (a file may hold 100,000 rounds): every test it makes, inlined; a
    NaN is n/a, and fails none of them."""
    seconds = r.duration_s
    if not 0.0 <= seconds <= MAX_DURATION_S:
        return False
    span, total = (seconds + SLACK_S) * (1 + 1e-9), 0.0
    for key, j in r.domains.items():
        limit = power_limit_w(key)
        total += limit
        if not (j != j or 0.0 <= j <= limit * span):
            return False
    e = r.energy_j
    if not (e != e or 0.0 <= e <= (total or TOTAL_POWER_LIMIT_W) * span):
        return False
    return all(v is None or v != v or 0.0 <= v <= MAX_FIGURE for v in (r.co2e_g, r.energy_above_idle_j))


def _plottable(watts: float) -> bool:
    return math.isnan(watts) or (math.isfinite(watts) and abs(watts) <= MAX_FIGURE)


def idle_problem(idle: Idle) -> str | None:
    """Why the idle power cannot be a figure: the machine's total, its domains unknown."""
    if why := duration_problem(idle.duration_s):
        return why
    joules = idle.power_w * idle.duration_s if idle.duration_s > 0 else idle.power_w
    if why := energy_problem(joules, idle.duration_s, TOTAL_POWER_LIMIT_W):
        return f"idle power {idle.power_w:.3g} W: {why}"
    return _number_problem("idle energy", idle.energy_j)


# -- the reader: refuse -------------------------------------------------------------------------------------
def check(benchmarks: Sequence[Benchmark], idle: Idle | None, where: str) -> None:
    """Refuse a run whose figures are beyond the bounds: one ``ResultsError`` naming the field (the writer
    never writes one, so another program or a hand wrote it)."""
    for i, b in enumerate(benchmarks):
        for j, r in enumerate(b.rounds):
            found = round_problems(r, timeline=False)
            if found:
                field, problem = found[0]
                raise ResultsError(f"{where}: malformed results file: benchmarks[{i}].rounds[{j}].{one_line(field)}: "
                                   f"{problem}; delete or re-run")
    if idle is not None and (why := idle_problem(idle)):
        raise ResultsError(f"{where}: malformed results file: idle: {why}; delete or re-run")


# -- the writer: n/a with the reason ------------------------------------------------------------------------
#: id -> (the benchmark, its settled dict): a run is rewritten after every trial and most of its benchmarks have
#: not changed since the last time (``run.state.Cell.snapshot``), so each is checked once, not once per save
_SETTLED: dict[int, tuple[weakref.ref[Benchmark], dict[str, Any]]] = {}


def settled(bench: Benchmark) -> dict[str, Any]:
    """``bench.to_dict()``, with every round figure beyond the bounds written as n/a (NaN, the domain in
    ``missing``, the reason in the round's warnings); the benchmark's own dict when nothing is (it is shared:
    never changed here)."""
    key = id(bench)
    hit = _SETTLED.get(key)
    if hit is not None and hit[0]() is bench:
        return hit[1]
    d = _settled(bench)
    _SETTLED[key] = (weakref.ref(bench, lambda _ref: _SETTLED.pop(key, None)), d)
    return d


def _settled(bench: Benchmark) -> dict[str, Any]:
    d = bench.to_dict()
    patched = None
    for j, r in enumerate(bench.rounds):
        found = round_problems(r)
        if found:
            patched = patched or list(d["rounds"])
            patched[j] = _settle_round(d["rounds"][j], found)
    return d if patched is None else {**d, "rounds": patched}


def _settle_round(d: Mapping[str, Any], found: list[tuple[str, str]]) -> dict[str, Any]:
    out = dict(d)
    fields = {field for field, _ in found}
    domains = {k: float(v) for k, v in (d.get("domains") or {}).items()}
    missing = list(d.get("missing") or [])
    if "duration_s" in fields:
        out["duration_s"] = 0.0
        bad = list(domains)
    else:
        bad = [f.removeprefix("domains.") for f in fields if f.startswith("domains.")]
    for key in bad:
        domains[key] = math.nan
        missing.append(key)
    out["domains"] = domains
    out["missing"] = list(dict.fromkeys(missing))
    if bad or "energy_j" in fields:  # the total holds the bad figure: neither it nor its grams stand
        out["energy_j"], out["co2e_g"] = math.nan, math.nan
        out.pop("energy_above_idle_j", None)
    if "co2e_g" in fields:
        out["co2e_g"] = math.nan
    if "energy_above_idle_j" in fields:
        out.pop("energy_above_idle_j", None)
    if "timeline" in fields:
        out["timeline"] = [[t, {k: (w if _plottable(w) else math.nan) for k, w in watts.items()}]
                           for t, watts in d.get("timeline") or []]
    out["warnings"] = [*(d.get("warnings") or []), *(f"{field}: {why}: n/a" for field, why in found)]
    return out


def settled_idle(idle: Idle | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The idle block to write and, when its power was beyond the bounds (written as n/a), the warning."""
    if idle is None:
        return None, []
    why = idle_problem(idle)
    if why is None:
        return idle.to_dict(), []
    duration = idle.duration_s if duration_problem(idle.duration_s) is None else 0.0
    return ({"power_w": math.nan, "duration_s": duration, "energy_j": math.nan, "source": "none"},
            [f"idle: {why}: n/a"])
