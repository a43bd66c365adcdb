"""``energybench calibrate``: fit this machine's per-event energies for the counted meter against RAPL.

Counts six calibration kernels under callgrind, measures the same kernels on the real CPU with the powercap
(RAPL) counter, fits joules per event by least squares and saves them as a profile file that
``energybench measure --meter counted --profile FILE`` (and ``$ENERGYBENCH_COUNTED_PROFILE``) use.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from energybench.errors import ConfigError, SamplerError
from energybench.options import (
    add_to_argparse,
    for_argparse,
    from_namespace,
    idle_seconds,
    positive_int,
    positive_seconds,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "calibrate",
        help="fit per-event energies for the counted meter against RAPL; save them as a profile",
        description="Count calibration kernels under valgrind (callgrind), measure them with RAPL (powercap), fit "
        "joules per event by least squares and save a profile for `measure --meter counted --profile FILE`. Run it "
        "on a quiet machine with readable RAPL counters; counting takes about a minute.",
    )
    add_to_argparse(parser, ["powercap_root"])
    parser.add_argument("--out", default="counted-profile.json", metavar="FILE",
                        help="profile file to write (default counted-profile.json)")
    parser.add_argument("--name", default=None, help="profile name (default: calibrated-HOSTNAME)")
    parser.add_argument("--events", default="instructions,ll_hits,dram_lines", metavar="LIST",
                        help="events to fit, comma-separated, from instructions, data_accesses, ll_hits, dram_lines "
                        "(default: instructions,ll_hits,dram_lines)")
    parser.add_argument("--idle", type=for_argparse(idle_seconds), default=2.0, metavar="S",
                        help="seconds of idle power measured first, the floor under every kernel (default 2; 0: "
                        "no floor, the kernels' joules include the idle draw)")
    parser.add_argument("--min-seconds", type=for_argparse(positive_seconds), default=1.0, metavar="S",
                        help="native run time per repeat of each kernel (default 1)")
    parser.add_argument("--repeats", type=for_argparse(positive_int), default=5, metavar="N",
                        help="native repeats per kernel, median taken (default 5)")
    parser.add_argument("--json", action="store_true", help="print the fit as JSON instead of the table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.atomic import write_error
    from energybench.counted.calibrate import calibrate
    from energybench.counted.profile import EVENTS, save_profile
    from energybench.counted.report import format_calibration
    from energybench.outputs import check_outputs
    from energybench.samplers.powercap import PowercapSampler, probe, resolve_root

    events = [e.strip() for e in args.events.split(",") if e.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise ConfigError(f"--events {args.events!r}: unknown event(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(EVENTS)}")
    check_outputs([(args.out, "profile")])  # never over a saved run
    options = {k: v for k, v in from_namespace(args, ["powercap_root"]).items() if v}
    availability = probe(options)
    if not availability.available:
        raise SamplerError(f"cannot calibrate without a RAPL counter: {availability.reason}")
    sampler = PowercapSampler(resolve_root(options))
    name = args.name or f"calibrated-{platform.node() or 'machine'}"
    print(f"energybench: counting {name}'s calibration kernels under valgrind, then measuring them natively "
          f"(keep the machine quiet)", file=sys.stderr)
    result = calibrate(sampler, name=name, events=events, idle_s=args.idle, min_seconds=args.min_seconds,
                       repeats=args.repeats)
    try:
        save_profile(result.profile, args.out)
        saved: str | None = args.out
    except OSError as exc:
        saved = None
        error = write_error("profile", args.out, exc, "the fit printed below is all that was kept")
    if args.json:
        print(json.dumps(result.profile.to_dict(), indent=2))
    else:
        print(format_calibration(result, saved))
    if saved is None:
        raise error
    return 0
