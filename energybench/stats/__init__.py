"""Pure statistics for per-round figures: summaries, intervals, significance tests, corrections, change points.

Everything here is deterministic (bootstraps use a fixed seed) so a decision can be reproduced from the saved
file, works for any n (exact where cheap, a stated approximation beyond) at bounded cost, and needs no scipy.
"""

from __future__ import annotations

from energybench.stats.changepoints import change_points
from energybench.stats.correction import adjust
from energybench.stats.significance import (
    RankTest,
    RatioTest,
    mann_whitney_greater,
    min_p_value,
    paired_ratio,
    prediction_ratio,
    welch_ratio,
)
from energybench.stats.summary import (
    UNSTABLE_SPREAD,
    Summary,
    bootstrap_ci,
    change_ci,
    clean,
    median,
    per_item,
    quantile,
    spread,
    stability_warning,
    summarize,
)

__all__ = ["UNSTABLE_SPREAD", "RankTest", "RatioTest", "Summary", "adjust", "bootstrap_ci", "change_ci",
           "change_points", "clean", "mann_whitney_greater", "median", "min_p_value", "paired_ratio", "per_item",
           "prediction_ratio", "quantile", "spread", "stability_warning", "summarize", "welch_ratio"]
