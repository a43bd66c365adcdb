"""Older run files, brought up to the current schema on load (version by version)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from energybench.record.parse import MAX_FIGURE
from energybench.record.parts import BASELINE


def _split_name(name: str) -> tuple[str | None, str]:
    """``lm/inference-generate`` -> (``lm``, ``inference-generate``); a pytest node id splits at ``::``."""
    if "::" in name:
        family, _, workload = name.partition("::")
        return family, workload
    if "/" in name:
        family, _, workload = name.partition("/")
        return family, workload
    return None, name


#: The methods that existed when version-1 files were written: a v1 spec names one of them (the registry of
#: today may have renamed or added some; a migration reads the past as it was).
V1_METHODS = ("prune-l1", "prune-structured", "layer-drop", "int8-dynamic", "bf16", "fp16", "distill-soft",
              "distill-hard")


def _technique(spec: str) -> str:
    """The registered method a v1 spec came from (``int8-dynamic-perchannel`` -> ``int8-dynamic``)."""
    if spec == BASELINE:
        return BASELINE
    for name in sorted(V1_METHODS, key=len, reverse=True):
        if spec == name or spec.startswith(name + "-"):
            return name
    return spec


def _migrate_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (before the typed record): ``subject`` held the method spec, ``method`` its first word;
    ``extra`` held notes, one-off costs and the runner's verdicts (now derived, so dropped)."""
    out = dict(data)
    launcher = ((data.get("environment") or {}).get("launcher") or {}) if isinstance(data.get("environment"),
                                                                                       dict) else {}
    out["kind"] = "pytest" if isinstance(launcher, dict) and launcher.get("tool") == "pytest" else "suite"
    benches = []
    listed = data.get("benchmarks")
    for b in listed if isinstance(listed, list) else []:
        if not isinstance(b, dict):
            benches.append(b)
            continue
        nb = dict(b)
        subject = b.get("subject")
        spec = subject if isinstance(subject, str) and subject and subject != BASELINE else BASELINE
        nb["method"] = spec
        nb["method_name"] = _technique(spec)
        if isinstance(b.get("name"), str):
            nb["family"], nb["workload"] = _split_name(b["name"])
        extra = dict(b.get("extra") or {}) if isinstance(b.get("extra"), dict) else {}
        nb["notes"] = extra.pop("notes", [])
        nb["one_off"] = extra.pop("one_off", None)
        if isinstance(nb["one_off"], dict) and "energy_j" not in nb["one_off"]:
            nb["one_off"] = None  # a method that measured nothing once (no meter) had no cost to report
        for derived in ("vs_baseline", "break_even_items"):
            extra.pop(derived, None)
        nb.pop("subject", None)
        nb["extra"] = extra
        benches.append(nb)
    out["benchmarks"] = benches
    out["version"] = 2
    return out


#: Kinds of run whose version-2 rounds held figures per call (window / iterations): only the pytest fixture's.
#: ``energybench run`` trials and ``energybench ab --command`` rounds always held their window's figures.
V2_PER_CALL_KINDS = ("pytest",)
#: The figures of a version-2 per-call round that become the window's when multiplied by its calls (``timeline``
#: holds watts and ``load`` the machine's busy share: neither is per call).
_PER_CALL_FIGURES = ("energy_j", "duration_s", "items", "co2e_g", "energy_above_idle_j")


def _times(value: Any, k: int) -> Any:
    """``value`` x ``k`` for a JSON number; anything else as it was, for the parser to name the bad field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        return float(value) * k
    except OverflowError:  # an integer literal beyond any float: the parser says so
        return value


def _window_round(r: Any) -> Any:
    """A version-2 per-call round as its window: every per-call figure x ``iterations`` (absent: 1 call)."""
    if not isinstance(r, dict):
        return r
    k = r.get("iterations")
    if k is None:
        return r
    if isinstance(k, bool) or not isinstance(k, int | float) or not 1 <= k <= MAX_FIGURE:
        return r  # the parser names the bad count; nothing to scale by
    k = int(k)
    out = {key: _times(v, k) if key in _PER_CALL_FIGURES else v for key, v in r.items()}
    if r.get("items") is None:  # absent: one item a call
        out["items"] = k
    if isinstance(r.get("domains"), dict):
        out["domains"] = {name: _times(v, k) for name, v in r["domains"].items()}
    return out


def _migrate_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 stored pytest rounds per call (the window over ``iterations``) and runner rounds as windows, so
    a total over rounds mixed the two; version 3 stores every round's window (``Round``: one energy per round)."""
    out = dict(data, version=3)
    if data.get("kind") not in V2_PER_CALL_KINDS or not isinstance(data.get("benchmarks"), list):
        return out
    benches = []
    for b in data["benchmarks"]:
        if isinstance(b, dict) and isinstance(b.get("rounds"), list):
            b = {**b, "rounds": [_window_round(r) for r in b["rounds"]]}
        benches.append(b)
    out["benchmarks"] = benches
    return out


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _migrate_1_to_2, 2: _migrate_2_to_3}
