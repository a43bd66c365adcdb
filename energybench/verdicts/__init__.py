"""Verdicts, data only: methods against a baseline, runs compared and gated, trends, layers and devices.

A method against its baseline (``baseline``), which trials pair (``pairing``), the machine's between-run
spread (``spread``), two runs compared and gated (``compare``, ``gate``, against the run ``reference`` names),
a benchmark over runs (``history``), and layers and devices compared.

``from energybench.verdicts import vs_baseline`` keeps working: the names of ``verdicts.baseline`` are here.
"""

from energybench.verdicts.baseline import (
    MIN_CHANGE,
    MIN_PAIRS,
    VERDICT_ALPHA,
    VERDICT_CORRECTION,
    BreakEven,
    VsBaseline,
    baseline_of,
    break_even,
    compare_to_baseline,
    judge_pairs,
    min_change_of,
    paired_values,
    run_verdicts,
    vs_baseline,
)

__all__ = ["MIN_CHANGE", "MIN_PAIRS", "VERDICT_ALPHA", "VERDICT_CORRECTION", "BreakEven", "VsBaseline", "baseline_of",
           "break_even", "compare_to_baseline", "judge_pairs", "min_change_of", "paired_values", "run_verdicts",
           "vs_baseline"]
