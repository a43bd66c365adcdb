"""Results as a pandas DataFrame: one row per round, with columns a user can group by without losing rows.

Kept apart from ``storage`` so that saving a run (done inside pytest, in CI) never imports pandas.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energybench.errors import ResultsError
from energybench.record import Run
from energybench.record.storage import list_runs, load_run

if TYPE_CHECKING:
    import pandas as pd

#: Every column, in order (``param:<name>`` and ``domain:<key>`` columns follow them, sorted).
COLUMNS = {
    "run": "run id (NNNN_name)",
    "created": "when the run started (ISO 8601, UTC)",
    "kind": "who made the run: suite (energybench run) or pytest",
    "benchmark": "the workload's full name (lm/inference-generate, or the pytest node id)",
    "family": "model family (lm, minilm) or, for pytest, the test file",
    "workload": "the workload alone (inference-generate), or the test name",
    "method": "full compression spec (prune-l1-0.5, int8-dynamic-perchannel), 'baseline' for the baseline",
    "method_name": "the registered technique the spec uses (prune-l1, int8-dynamic), 'baseline' for the baseline",
    "phase": "train, inference or other",
    "device": "where the model ran (cpu, cuda, tpu); empty in files from before devices were recorded",
    "round": "trial (runner) or round (pytest) number",
    "energy_j": "joules of the round's window (all its calls); NaN when nothing could be measured",
    "duration_s": "seconds of the round's window",
    "items": "items the round's window processed (tokens, 1k sentences, samples; one a call when not counted)",
    "iterations": "calls (pytest) or workload repeats (runner) in the window",
    "energy_per_call_j": "energy_j / iterations",
    "item_unit": "what an item is",
    "energy_per_item_j": "energy_j / items",
    "power_w": "energy_j / duration_s",
    "co2e_g": "grams CO2e of the round's window (NaN without a region or factor)",
    "source": "measured (hardware counters only) or estimated (a power model took part)",
    "partial": "True when the round's total misses a domain or is only a lower bound (left out of summaries)",
    "quality_metric": "the benchmark's quality figure (perplexity, cosine...), if any",
    "quality_value": "its value",
    "quality_higher_is_better": "whether a higher quality_value is better",
    "factor_kind": "kind of grid factor behind co2e_g: average or marginal (empty without CO2e)",
    "sci_g_per_item": "Software Carbon Intensity of the benchmark, (E x I + M) / R, gCO2e per item (repeated on "
                      "each of its rows; operational only when sci_embodied_g_per_item is NaN)",
    "sci_operational_g_per_item": "the E x I part of sci_g_per_item",
    "sci_embodied_g_per_item": "the M part (embodied emissions amortised over the rounds' time); NaN when no "
                               "--embodied device was given",
}
PARAM_PREFIX = "param:"
DOMAIN_PREFIX = "domain:"


def run_rows(run: Run) -> list[dict[str, Any]]:
    """Flatten one run into per-round rows: method parameters as ``param:<name>``, domain joules as
    ``domain:<key>``."""
    from energybench.record.sci_figures import run_sci

    sci = run_sci(run)
    sci_by_key = sci.by_key() if sci is not None else {}
    kind = run.carbon.factor_kind if run.carbon is not None else None
    rows = []
    for b in run.benchmarks:
        q = b.quality
        s = sci_by_key.get(b.key)
        sci_cells = {
            "factor_kind": kind, "sci_g_per_item": s.sci_g if s else math.nan,
            "sci_operational_g_per_item": s.operational_per_item_g if s else math.nan,
            "sci_embodied_g_per_item": s.embodied_per_item_g if s and s.embodied_per_item_g is not None else math.nan,
        }
        fixed = {
            "run": run.run_id, "created": run.created, "kind": run.kind, "benchmark": b.name,
            "family": b.family if b.family is not None else "", "workload": b.workload or b.name,
            "method": b.method, "method_name": b.method_name, "phase": b.phase, "device": b.device or "",
            "item_unit": b.item_unit,
            "quality_metric": q.metric if q else None, "quality_value": q.value if q else math.nan,
            "quality_higher_is_better": q.higher_is_better if q else None,
        }
        params = {f"{PARAM_PREFIX}{k}": _cell(v) for k, v in b.params.items()}
        for r in b.rounds:
            row = {
                **fixed, "round": r.index, "energy_j": r.energy_j, "duration_s": r.duration_s, "items": r.items,
                "iterations": r.calls, "energy_per_call_j": r.energy_per_call_j,
                "energy_per_item_j": r.energy_per_item_j, "power_w": r.power_w,
                "co2e_g": math.nan if r.co2e_g is None else r.co2e_g, "source": r.source, "partial": r.partial,
                **sci_cells, **params,
            }
            row.update({f"{DOMAIN_PREFIX}{k}": v for k, v in r.domains.items()})
            rows.append(row)
    return rows


def _cell(value: Any) -> Any:
    """Scalars stay as they are (so ``df["param:sparsity"] == 0.5`` works); lists and dicts become text."""
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _files(path_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(path_or_dir, str | os.PathLike):
        p = Path(path_or_dir)
        if p.is_dir():
            files = list_runs(p)
            if not files:
                raise ResultsError(f"no results files (NNNN_name.json) in {p}; run benchmarks with a save option first")
            return files
        return [p]
    return [Path(f) for f in path_or_dir]


def load_results(path_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Load one results file, every run in a directory, or a list of files: one row per round.

    Columns are ``COLUMNS`` (documented in docs/results-schema.md) then ``param:<name>`` per method or
    test parameter and ``domain:<key>`` per energy domain. ``family`` and ``method`` are never missing (the
    baseline's method is ``baseline``), so ``groupby(["benchmark", "method"])`` keeps every row. Raises
    ``ResultsError`` on a missing/corrupt file or an unknown schema version.
    """
    df = _frame(path_or_dir, run_rows, COLUMNS)
    params = sorted(c for c in df.columns if c.startswith(PARAM_PREFIX))
    domains = sorted(c for c in df.columns if c.startswith(DOMAIN_PREFIX))
    return df[[*COLUMNS, *params, *domains]]


#: The columns of ``load_layers``, in order.
LAYER_COLUMNS = {
    "run": "run id (NNNN_name)",
    "benchmark": "the workload's full name (lm/inference-generate)",
    "family": "model family (lm, minilm, cnn)",
    "workload": "the workload alone",
    "method": "full compression spec, 'baseline' for the baseline",
    "phase": "train, inference or other",
    "device": "where the model ran",
    "layer": "module path in the model (encoder.layers.0.linear1), <root> for the model's own code, or a part in "
             "parentheses: (outside the model), (optimizer step)",
    "energy_j": "joules of the profiled window attributed to this layer (exclusive: its children's are theirs)",
    "share": "energy_j / window_energy_j",
    "energy_per_item_j": "energy_j / items of the profiled run",
    "time_s": "seconds of the profiled window spent in this layer (exclusive)",
    "calls": "how often the layer ran in the profiled window (0 for the parts in parentheses)",
    "below_resolution": "its calls are shorter than the power figure's resolution: joules = share of time x power",
    "window_energy_j": "the profiled window's total, which energy_j adds up to per benchmark",
    "items": "items of the profiled run",
    "resolution_s": "the power figure's resolution in that window",
    "source": "measured or estimated, as for the trials",
}


def layer_rows(run: Run) -> list[dict[str, Any]]:
    """One row per layer of every benchmark that has a per-layer attribution (``Benchmark.layers``)."""
    rows = []
    for b in run.benchmarks:
        profile = b.layers
        if profile is None:
            continue
        for x in profile.layers:
            share = x.energy_j / profile.energy_j if profile.energy_j else math.nan
            rows.append({
                "run": run.run_id, "benchmark": b.name, "family": b.family or "", "workload": b.workload or b.name,
                "method": b.method, "phase": b.phase, "device": b.device or "", "layer": x.name,
                "energy_j": x.energy_j, "share": share, "energy_per_item_j": x.energy_j / profile.items,
                "time_s": x.time_s, "calls": x.calls, "below_resolution": x.below_resolution,
                "window_energy_j": profile.energy_j, "items": profile.items, "resolution_s": profile.resolution_s,
                "source": profile.source,
            })
    return rows


def load_layers(path_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Per-layer energy of saved runs (what ``energybench run`` attributes after the trials): one row per
    layer per benchmark, ``LAYER_COLUMNS``. ``groupby(["run", "benchmark", "method"])["energy_j"].sum()``
    gives back each profiled window's total. Accepts what ``load_results`` accepts; runs without per-layer
    figures add no rows."""
    return _frame(path_or_dir, layer_rows, LAYER_COLUMNS)[list(LAYER_COLUMNS)]


def _frame(path_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
           rows_of: Callable[[Run], list[dict[str, Any]]], columns: Iterable[str]) -> pd.DataFrame:
    """The rows of every run file as one DataFrame holding every documented column, even with no rows."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for f in _files(path_or_dir):
        rows.extend(rows_of(load_run(f)))
    df = pd.DataFrame(rows)
    for col in columns:
        if col not in df.columns:
            df[col] = pd.Series(dtype=object)
    return df
