"""Machine identity and commit info recorded with every run, and the check that two runs are comparable.

Why: an energy figure only means something next to the hardware that produced it. A comparison between a
laptop and a CI runner, or between two GPU power limits, must warn; clock frequency jitter and hostnames
must not (CI runners change names on every job).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from energybench.record import Machine
from energybench.samplers.base import Sampler


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # identity is nice to have; never fail a run for it
        return None


def _sampler_entry(sampler: Sampler) -> dict[str, Any]:
    try:
        domains = list(sampler.domains())
    except Exception:
        domains = []
    try:
        meta = dict(sampler.metadata())
    except Exception as exc:
        meta = {"error": f"metadata unavailable: {exc}"}
    sources = sorted({d.source for d in domains})
    return {
        "name": sampler.name,
        "kind": sampler.kind,
        "source": sources[0] if len(sources) == 1 else ",".join(sources) or None,
        "method": ",".join(sorted({d.method for d in domains})) or None,
        "domains": [d.key for d in domains],
        "resolution_s": getattr(sampler, "resolution_s", None),
        "metadata": meta,
    }


_GPU_KEYS = ("index", "name", "uuid", "driver", "power_limit_w", "mig")


def _gpus(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GPU identity as reported by samplers' metadata: a ``gpus`` list, or one GPU's keys at top level."""
    gpus: list[dict[str, Any]] = []
    for e in entries:
        meta = e["metadata"]
        if isinstance(meta.get("gpus"), list):
            gpus.extend({k: g.get(k) for k in _GPU_KEYS if k in g} for g in meta["gpus"] if isinstance(g, dict))
        elif any(k.startswith("gpu") for k in e["domains"]) and "name" in meta:
            gpus.append({k: meta.get(k) for k in _GPU_KEYS if k in meta})
    return gpus


def _torch_info() -> dict[str, Any]:
    """Torch version and threads, only if the user's code already imported torch (importing it costs ~1 s)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    info: dict[str, Any] = {"torch": getattr(torch, "__version__", None)}
    try:
        info["torch_threads"] = torch.get_num_threads()
    except Exception:
        pass
    return info


def machine_info(samplers: Sequence[Sampler] = ()) -> Machine:
    """The ``machine`` block of a results file: this host, its CPU, GPUs and the samplers that measured."""
    entries = [_sampler_entry(s) for s in samplers]
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "gpus": _gpus(entries),
        "samplers": entries,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    info.update(_torch_info())
    return Machine.from_dict(info)


def _git(args: list[str], cwd: str | os.PathLike[str] | None) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def commit_info(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Commit id, branch and dirty flag of the git checkout at ``cwd``; empty when not in a git repo."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return {}
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"id": commit, "branch": branch, "dirty": bool(status)}


def identity_mismatches(base: Machine, new: Machine) -> list[str]:
    """Differences that make energy figures incomparable (CPU/GPU model, GPU count, power limit, samplers).

    Hostname, clocks and memory do not count: CI runners differ in those without changing the energy per op.
    """
    out: list[str] = []
    if base.cpu_model and new.cpu_model and base.cpu_model != new.cpu_model:
        out.append(f"CPU model differs: {base.cpu_model!r} vs {new.cpu_model!r}")
    bg, ng = base.gpus, new.gpus
    if len(bg) != len(ng):
        out.append(f"GPU count differs: {len(bg)} vs {len(ng)}")
    for a, b in zip(bg, ng, strict=False):
        if a.get("name") != b.get("name"):
            out.append(f"GPU {a.get('index', '?')} model differs: {a.get('name')!r} vs {b.get('name')!r}")
        elif a.get("power_limit_w") != b.get("power_limit_w"):
            out.append(
                f"GPU {a.get('index', '?')} power limit differs: {a.get('power_limit_w')} W vs "
                f"{b.get('power_limit_w')} W"
            )
    bs = {(s.get("name"), s.get("source")) for s in base.samplers}
    ns = {(s.get("name"), s.get("source")) for s in new.samplers}
    if bs and ns and bs != ns:
        fmt = lambda ss: ", ".join(sorted(f"{n} ({s})" for n, s in ss))  # noqa: E731
        out.append(f"energy samplers differ: {fmt(bs)} vs {fmt(ns)}")
    return out
