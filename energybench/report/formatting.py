"""Number formatting shared by every report format, so a figure reads the same in a terminal, a PR and HTML."""

from __future__ import annotations

import math

from energybench.measurement import format_grams, format_joules
from energybench.report.model import Entry, Estimate

__all__ = ["format_grams", "format_joules", "per_item", "ratio", "change", "verdict", "quality", "ci"]


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def ci(est: Estimate, fmt=format_joules) -> str:  # noqa: ANN001 - a formatter callable
    """``[low, high]`` in the same unit as the value, or empty when there is no interval."""
    if not (_finite(est.low) and _finite(est.high)):
        return ""
    return f"[{fmt(est.low)}, {fmt(est.high)}]"


def per_item(e: Entry, with_ci: bool = True) -> str:
    text = f"{format_joules(e.per_item.value)}/{e.item_unit}"
    if with_ci and (interval := ci(e.per_item)):
        text += f" {interval}"
    return text


def ratio(e: Entry, with_ci: bool = True) -> str:
    """``0.62x [0.58, 0.66]`` relative to the baseline; ``baseline`` for the baseline itself."""
    if e.is_baseline:
        return "baseline"
    r = e.ratio
    if r is None or not _finite(r.value):
        return "n/a"
    text = f"{r.value:.2f}x"
    if with_ci and _finite(r.low) and _finite(r.high):
        text += f" [{r.low:.2f}, {r.high:.2f}]"
    return text


def change(e: Entry) -> str:
    """The saving or cost in words-friendly form: ``-38%`` (less energy) or ``+12%``."""
    if e.is_baseline or e.ratio is None or not _finite(e.ratio.value):
        return ""
    pct = (e.ratio.value - 1.0) * 100
    return f"{pct:+.0f}%"


def verdict(e: Entry) -> str:
    """The runner's verdict on the saving (significance included), or the bare change when there is none."""
    if e.is_baseline:
        return ""
    return e.verdict or change(e)


def quality(e: Entry) -> str:
    if e.quality is None:
        return ""
    arrow = "\u2191" if e.quality.higher_is_better else "\u2193"
    return f"{e.quality.metric} {e.quality.value:.4g} {arrow}"
