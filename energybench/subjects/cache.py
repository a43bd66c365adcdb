"""Trained baselines on disk, shared by the subjects that train their own (the LM, the CNN, speech, recsys).

A baseline is keyed by everything that changes its weights: the hash of its training data, its config, the
seed and torch's version, so a cached model is never used for a run it was not trained for. Writing the cache
is atomic, and a full or read-only cache directory never costs the baseline just trained: the run goes on
and says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from energybench.subjects.api import Context

__all__ = ["baseline_cache", "cached_baseline", "default_cache_dir", "save_baseline"]


def default_cache_dir() -> str:
    """``$ENERGYBENCH_CACHE`` or ``~/.cache/energybench``: trained baselines keyed by data hash + config."""
    return os.environ.get("ENERGYBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "energybench"
    )


def baseline_cache(family: str, data: Mapping[str, str], cfg: Any, ctx: Context) -> Path:
    """``<cache dir>/<family>-<key>.pt``; ``data`` names the training data's hash (``{"corpus": sha}``)."""
    import torch

    key_src = json.dumps({**data, "config": asdict(cfg), "seed": ctx.seed, "torch": torch.__version__.split("+")[0]},
                         sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    return Path(ctx.cache_dir or default_cache_dir()) / f"{family}-{key}.pt"


def save_baseline(cache: Path, state: dict[str, Any], ctx: Context, family: str) -> bool:
    """Write ``state`` to ``cache`` atomically; ``False`` (with a note) when the directory cannot take it."""
    import torch

    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, cache)
        return True
    except OSError as exc:  # a full or read-only cache must not cost the baseline just trained
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        ctx.log(f"{family}: could not cache the trained baseline in {cache.parent}: {exc.strerror or exc}; the "
                "run goes on (the baseline will be trained again next time; --cache-dir DIR to change)")
        return False


def cached_baseline(family: str, data_sha: str, cfg: Any, ctx: Context, module: Any, steps: int,
                    train_now: Callable[[], None]) -> dict[str, Any]:
    """``module``'s trained weights from the cache (keyed by the data, config, seed and torch), or trained now
    by ``train_now`` and cached; the baseline's provenance for the subject's metadata."""
    import torch

    cache = baseline_cache(family, {"data": data_sha}, cfg, ctx)
    if cache.exists():
        module.load_state_dict(torch.load(cache, map_location=ctx.device, weights_only=True)["model"])
        ctx.log(f"{family}: baseline loaded from cache {cache}")
        cached = True
    else:
        ctx.log(f"{family}: training the baseline ({steps} steps; cached afterwards in {cache.parent})")
        train_now()
        save_baseline(cache, {"model": module.state_dict()}, ctx, family)
        cached = False
    module.eval()
    return {"cache": str(cache), "cached": cached, "train_steps": steps}
