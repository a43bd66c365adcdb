"""Energy per layer in words: a profile as a terminal table, and the report's per-layer comparison in HTML.

The figures come from ``energybench.measuring.layers`` (attribution) and ``report.model`` (the comparison across
methods); this module only lays them out.
"""

from __future__ import annotations

import math

from energybench import units
from energybench.record import LayerProfile
from energybench.render.plots import esc
from energybench.render.tables import text_table
from energybench.verdicts.layers import LayerRow, LayerTable

#: Appended to the report's stylesheet: green where a layer's energy went down, red where it went up.
CSS = """
td.down{color:var(--good)} td.up{color:var(--bad)} td.gone{color:var(--good);font-style:italic}
details.layers{margin:8px 0} details.layers summary{cursor:pointer;font-weight:600;overflow-wrap:anywhere}
"""
FAST = "\u2020"  # dagger: faster than the power figure's resolution


def format_layers(profile: LayerProfile, limit: int | None = None) -> str:
    """A profile as a terminal table, largest part first, with the window's total and how it was split."""
    rows = []
    for x in profile.layers[:limit]:
        share = x.energy_j / profile.energy_j if profile.energy_j and math.isfinite(x.energy_j) else math.nan
        rows.append([x.name + (f" {FAST}" if x.below_resolution else ""), units.joules(x.energy_j),
                     units.percent(share), units.seconds(x.time_s), str(x.calls) if x.calls else "-"])
    lines = text_table(["layer", "energy", "share", "time", "calls"], rows, right={1, 2, 3, 4})
    lines.append(f"total {units.joules(profile.energy_j)} ({profile.source}) over {units.seconds(profile.duration_s)}"
                 f", parts add up to {units.joules(profile.parts_j)}; {profile.method}")
    if any(x.below_resolution for x in profile.layers):
        lines.append(f"{FAST} calls shorter than the power figure's resolution ({units.seconds(profile.resolution_s)}):"
                     " the joules are the layer's share of time at the power around it")
    return "\n".join(lines)


def _cell(row: LayerRow, method: str) -> str:
    value = row.methods.get(method)
    if value is None:
        return '<td class="num gone">gone</td>' if row.baseline else '<td class="num">-</td>'
    if row.baseline is None or row.baseline == 0:
        return f'<td class="num up">+{esc(units.joules(value))}<br><small>new</small></td>'
    change = value / row.baseline - 1.0
    cls = "down" if change < -0.005 else "up" if change > 0.005 else ""
    return (f'<td class="num {cls}">{esc(units.change(change))}<br>'
            f"<small>{esc(units.joules(value - row.baseline))}</small></td>")


def layer_table_html(table: LayerTable, run: str | None = None, open_: bool = False) -> str:
    """One benchmark's layers: the baseline's energy per item, and each method's change per layer."""
    head = "".join(f"<th>{esc(m)}</th>" for m in table.methods)
    body = []
    for row in table.rows:
        name = esc(row.name) + (f" {FAST}" if row.fast else "")
        base = units.joules(row.baseline) if row.baseline is not None else "-"
        body.append(f"<tr><td class=name>{name}</td><td class=num>{esc(base)}</td>"
                    + "".join(_cell(row, m) for m in table.methods) + "</tr>")
    title = f"{table.benchmark} ({table.phase})" + (f" \u00b7 {run}" if run else "")
    return (f'<details class="layers"{" open" if open_ else ""}><summary>{esc(title)}</summary>'
            f'<div class="scroll"><table><thead><tr><th>layer (depth {table.depth})</th>'
            f"<th>baseline<br>per {esc(table.item_unit)}</th>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            "</table></div></details>")


def layers_section(tables: tuple[tuple[str, LayerTable], ...], multi_run: bool = False) -> str:
    """The report's "Energy by layer" section (empty when no run made an attribution pass)."""
    if not tables:
        return ""
    parts = "".join(layer_table_html(t, run if multi_run else None, open_=i == 0) for i, (run, t) in enumerate(tables))
    return (
        '<section><h2>Energy by layer</h2><p class="note">Where each method saved or spent energy, layer by layer: '
        "the change of each layer's energy per item against the baseline (green: down, red: up; <i>gone</i>: "
        "the method's model has no such layer). A layer's figure is its share of one profiled run "
        "(torch.profiler, after the trials, never a trial itself) times the trials' median energy per item; "
        "layers are matched by name, so a distilled or layer-dropped model's layer 1 is not the baseline's. "
        f"{FAST} marks layers whose calls are shorter than the power figure's resolution: their joules are "
        "their share of time at the power around them.</p>" + parts + "</section>"
    )
