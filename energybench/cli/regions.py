"""``energybench regions [QUERY] [--json]``: the grid regions known, with factor, year and source.

Reads codecarbon's data files directly (see ``energybench.carbon.regions``), so it starts in a fraction of
a second: no pandas, no ``import codecarbon``.
"""

from __future__ import annotations

import argparse
import json
import sys

from energybench.carbon import closest_names, list_regions
from energybench.carbon.regions import KINDS, catalog
from energybench.errors import UnknownRegionError
from energybench.render.regions import format_table


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
