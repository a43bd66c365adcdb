"""``energybench carbon RUN``: a saved run's Software Carbon Intensity and what moving or shifting it would save.

* SCI per functional unit, operational vs embodied, with every assumption (``--embodied`` replaces the
  devices the run recorded, so a run can be re-assessed with better embodied figures);
* counterfactuals: the same joules on other grids (``--regions``) and, with ``--shift-csv``, at the cleanest
  start a given intensity series allows;
* ``--providers`` lists the intensity sources (plugins too) for ``--intensity-provider``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from energybench.errors import ConfigError
from energybench.options import SCI_OPTIONS, add_to_argparse, from_namespace
from energybench.render.plugins import plugin_lines

DEFAULT_REGIONS = "FRA,DEU,USA,CHN,IND"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "carbon", help="SCI per functional unit of a saved run, and its CO2e in other regions or at other times",
        description="Software Carbon Intensity (SCI = (E x I + M) / R) of a saved run per benchmark, operational vs "
        "embodied, with its assumptions; the same joules on other grids and at the cleanest time of a series.",
    )
    p.add_argument("run", nargs="?", metavar="RUN", help="a results file, run id, counter, name or 'latest'")
    p.add_argument("--regions", metavar="LIST", default=DEFAULT_REGIONS,
                   help=f"grids to restate the run's joules on (default {DEFAULT_REGIONS}; names: energybench regions)")
    p.add_argument("--shift-csv", metavar="PATH", help="an intensity series (timestamp, gCO2e/kWh) to find the "
                   "cleanest start in")
    p.add_argument("--shift-kind", choices=("average", "marginal"), default="average",
                   help="what the --shift-csv factors are (default average)")
    p.add_argument("--providers", action="store_true", help="list the intensity providers (plugins too)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    add_to_argparse(p, ["results"])
    add_to_argparse(p, SCI_OPTIONS, "software carbon intensity (SCI)")
    p.set_defaults(func=run)


def _providers(as_json: bool) -> int:
    from energybench.carbon.sources import sources

    rows: list[dict[str, Any]] = []
    for name, e in sorted(sources().items()):
        obj = e.obj
        rows.append({"name": name, "origin": e.origin, "available": e.error is None,
                     "description": obj.description if obj else "", "factor_kinds": list(obj.factor_kinds) if obj
                     else [], "key_env": list(obj.key_env) if obj else [], "online": bool(obj and obj.online),
                     "reason": e.error})
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print("\n".join(plugin_lines(rows, lambda r: f"{r['description']} [{'/'.join(r['factor_kinds'])}]")))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.providers:
        return _providers(args.json)
    if not args.run:
        raise ConfigError("name a run: energybench carbon RUN (or --providers)")
    from energybench.carbon import load_intensity_csv, lookup_region
    from energybench.carbon.counterfactual import run_counterfactuals
    from energybench.carbon.sci import run_sci
    from energybench.record.storage import load_run, resolve_run
    from energybench.render.sci import format_counterfactuals, format_sci

    values = from_namespace(args, ["results", *SCI_OPTIONS])
    regions = [n.strip() for n in args.regions.split(",") if n.strip()]
    for name in regions:
        lookup_region(name)  # an unknown name fails here, with suggestions
    series = load_intensity_csv(args.shift_csv) if args.shift_csv else None
    record = load_run(resolve_run(args.run, values["results"]))
    sci = run_sci(record, values["embodied"] or None)
    cf = run_counterfactuals(record, regions, series, args.shift_kind)
    if args.json:
        from dataclasses import asdict

        print(json.dumps({"run": record.label, "sci": sci.to_dict() if sci else None,
                          "sci_inputs": [d.to_dict() for d in (sci.devices if sci else ())],
                          "counterfactuals": asdict(cf)}, indent=2, default=str))
        return 0
    if sci is None:
        print(f"{record.label}: no SCI: the run has no CO2e (run with --region, --intensity or --intensity-csv)")
    else:
        print(format_sci(sci))
    print(format_counterfactuals(cf))
    return 0
