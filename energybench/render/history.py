"""``energybench history``: each benchmark's level run by run, its change points marked."""

from __future__ import annotations

from collections.abc import Sequence

from energybench import units
from energybench.render.tables import text_table
from energybench.verdicts.history import Trend

HEADERS = ["run", "created", "commit", "median [95% CI]", "n", "vs previous", "level"]


def _figure(value: float, figure: str) -> str:
    if figure.endswith("_j"):
        return units.joules(value)
    if figure.endswith("_g"):
        return units.grams(value)
    if figure.endswith("_s"):
        return units.seconds(value)
    if figure.endswith("_w"):
        return units.watts(value)
    return units.count(value)


def format_trends(trends: Sequence[Trend]) -> str:
    out: list[str] = []
    for t in trends:
        out += ["", f"{t.key} ({t.figure})"]
        rows = []
        for i, p in enumerate(t.points):
            previous = t.points[i - 1].median if i else None
            change = units.change(p.median / previous - 1.0) if previous else ""
            level = f"<- change point: {units.change(t.step(i))}" if i in t.change_points else ""
            interval = units.interval(p.ci_low, p.ci_high, lambda v, f=t.figure: _figure(v, f))
            rows.append([p.run, p.created[:19], (p.commit or "")[:10], f"{_figure(p.median, t.figure)} {interval}",
                         str(p.n), change, level])
        out += ["  " + line for line in text_table(HEADERS, rows, right={3, 4, 5})]
        if t.change_points:
            out.append(f"  {len(t.change_points)} change point(s) (PELT on log run medians, BIC penalty)")
        elif len(t.points) >= 4:
            out.append("  no change point: one level over these runs")
        else:
            out.append("  too few runs to look for change points (4 or more)")
    return "\n".join(out).lstrip("\n") + "\n"
