"""``energybench regions [QUERY] [--json]``: the grid regions known, with factor, year and source.

Reads codecarbon's data files directly (see ``energybench.carbon.regions``), so it starts in a fraction of
a second: no pandas, no ``import codecarbon``.
"""

from __future__ import annotations

import argparse
import json
import sys

from energybench.carbon import closest_names, list_regions
from energybench.carbon.regions import KINDS, RegionFactor, catalog
from energybench.errors import UnknownRegionError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "regions",
        help="list grid regions with gCO2e/kWh, year and source (for --region)",
        description=(
            "List the grid regions energybench knows (from codecarbon's shipped data) with their carbon "
            "intensity in gCO2e/kWh, the year it describes and its source. Names are matched "
            "case-insensitively: FRA (ISO3 country), USA/california or US-CA, CAN/quebec or CA-QC, "
            "CHN/beijing or CN-BJ, NOR/NO1 or NO1, gcp:europe-west1."
        ),
    )
    p.add_argument(
        "query",
        nargs="?",
        help=f"substring of a name, alias or place, or a kind ({', '.join(KINDS)})",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    regions = list_regions(args.query)
    if not regions:
        near = closest_names(args.query or "")
        hint = f" (closest: {', '.join(near)})" if near else ""
        raise UnknownRegionError(
            f"no region matches {args.query!r}{hint}: try a shorter query, or `energybench regions` for all"
        )
    if args.json:
        json.dump([r.to_dict() for r in regions], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(format_table(regions))
    for note in catalog().notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def format_table(regions: list[RegionFactor]) -> str:
    """A fixed-width table; long source strings become numbered footnotes so rows stay one line."""
    sources: list[str] = []
    rows = []
    for r in regions:
        if r.source not in sources:
            sources.append(r.source)
        rows.append(
            (
                r.name,
                ", ".join(r.aliases),
                r.kind,
                f"{r.intensity_g_per_kwh:.1f}",
                str(r.year) if r.year is not None else "-",
                r.label,
                f"[{sources.index(r.source) + 1}]",
            )
        )
    header = ("NAME", "ALIAS", "KIND", "gCO2e/kWh", "YEAR", "PLACE", "SOURCE")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    right = {3}  # numbers right-aligned

    def line(cells: tuple[str, ...]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    out = [line(header)] + [line(row) for row in rows]
    out.append("")
    out.extend(f"[{i}] {s}" for i, s in enumerate(sources, start=1))
    n = len(regions)
    out.append(
        f"{n} region{'s' if n != 1 else ''}; use a NAME or ALIAS with --region (any case). "
        "China's factors are CO2 only."
        if any(r.kind == "cn-province" for r in regions)
        else f"{n} region{'s' if n != 1 else ''}; use a NAME or ALIAS with --region (any case)."
    )
    return "\n".join(out) + "\n"
