"""Results as a pandas DataFrame: one row per round, ready for groupby/plots.

Kept apart from ``storage`` so that saving a run (done inside pytest, in CI) never imports pandas.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energybench.errors import ResultsError
from energybench.stats import per_item
from energybench.storage import list_runs, load_run

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "run", "created", "benchmark", "subject", "method", "phase", "round", "energy_j", "duration_s", "items",
    "item_unit", "energy_per_item_j", "power_w", "co2e_g", "source", "quality_metric", "quality_value",
]  # fmt: skip


def run_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten one loaded run into per-round rows (domain joules as ``domain:<key>`` columns)."""
    rows = []
    for bench in run.get("benchmarks", []):
        quality = bench.get("quality") or {}
        for i, r in enumerate(bench.get("rounds", [])):
            energy = float(r["energy_j"])
            duration = float(r["duration_s"])
            items = r.get("items") or 1
            row = {
                "run": run.get("run_id"),
                "created": run.get("created"),
                "benchmark": bench["name"],
                "subject": bench.get("subject") or "baseline",
                "method": bench.get("method"),
                "phase": bench.get("phase") or "other",
                "round": r.get("round", i),
                "energy_j": energy,
                "duration_s": duration,
                "items": items,
                "item_unit": bench.get("item_unit"),
                "energy_per_item_j": per_item(energy, items),
                "power_w": energy / duration if duration > 0 else float("nan"),
                "co2e_g": r.get("co2e_g"),
                "source": r.get("source"),
                "quality_metric": quality.get("metric"),
                "quality_value": quality.get("value"),
            }
            for key, joules in (r.get("domains") or {}).items():
                row[f"domain:{key}"] = joules
            rows.append(row)
    return rows


def load_results(path_or_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Load one results file, or every run in a directory, as a DataFrame with one row per round.

    Columns: ``run, created, benchmark, subject, method, phase, round, energy_j, duration_s, items,
    item_unit, energy_per_item_j, power_w, co2e_g, source, quality_metric, quality_value`` and one
    ``domain:<key>`` column per energy domain. Raises ``ResultsError`` on a missing/corrupt file or an
    unknown schema version.
    """
    import pandas as pd

    p = Path(path_or_dir)
    if p.is_dir():
        files = list_runs(p)
        if not files:
            raise ResultsError(f"no results files (NNNN_name.json) in {p}; run benchmarks with a save option first")
    else:
        files = [p]
    rows: list[dict[str, Any]] = []
    for f in files:
        rows.extend(run_rows(load_run(f)))
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = pd.Series(dtype=object)
    rest = sorted(c for c in df.columns if c not in COLUMNS)
    return df[COLUMNS + rest]
