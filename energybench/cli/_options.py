"""Options shared by the subcommands that measure (sampler selection, carbon), so they read the same everywhere."""

from __future__ import annotations

import argparse
from typing import Any

from energybench.errors import ConfigError


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r} (e.g. 0.1)") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r} (e.g. 0.1)")
    return value


def add_sampler_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("samplers")
    group.add_argument(
        "--powercap-root",
        metavar="DIR",
        help="where the RAPL powercap tree is (default: $ENERGYBENCH_POWERCAP_ROOT or /sys/class/powercap)",
    )
    group.add_argument(
        "--gpu-index",
        type=int,
        action="append",
        metavar="N",
        help="measure only this GPU (index as CUDA_VISIBLE_DEVICES shows it); repeat for several",
    )
    group.add_argument("--tpu-watts", type=float, metavar="W", help="per-chip TPU power for generations with no figure")
    group.add_argument("--tpu-generation", metavar="GEN", help="TPU generation (e.g. v4) when it cannot be detected")
    group.add_argument(
        "--sampler",
        action="append",
        metavar="NAME",
        help="use only these samplers (see `energybench sensors`); repeat for several",
    )


def sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if getattr(args, "powercap_root", None):
        options["powercap_root"] = args.powercap_root
    if getattr(args, "gpu_index", None):
        options["gpu_indices"] = list(args.gpu_index)
    if getattr(args, "tpu_watts", None) is not None:
        if not 0 < args.tpu_watts < float("inf"):  # also refuses nan
            raise ConfigError(f"--tpu-watts must be a positive number of watts per chip, got {args.tpu_watts:g}")
        options["tpu_watts"] = args.tpu_watts
    if getattr(args, "tpu_generation", None):
        options["tpu_generation"] = args.tpu_generation
    if getattr(args, "sampler", None):
        options["samplers"] = list(args.sampler)
    return options


def add_carbon_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("carbon")
    group.add_argument(
        "--region",
        help="grid region for CO2e, e.g. FRA, USA/california (US-CA), CAN/quebec, NO1, gcp:europe-west1 "
        "(list: energybench regions)",
    )
    group.add_argument("--intensity", metavar="G_PER_KWH", help="fixed grid intensity in gCO2e/kWh instead of a region")
    group.add_argument(
        "--intensity-csv",
        metavar="PATH",
        help="time series CSV of (timestamp, gCO2e/kWh), applied interval by interval",
    )
    group.add_argument(
        "--pue", default="1.0", help="data-centre power usage effectiveness applied to CO2e (default 1.0)"
    )


def carbon_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "region": args.region,
        "intensity": args.intensity,
        "intensity_csv": args.intensity_csv,
        "pue": args.pue,
    }
