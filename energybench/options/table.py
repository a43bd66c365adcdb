"""The options table: every option's name, help, parser, default and environment variable, declared once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from energybench.options.values import (
    alpha_level,
    amd_mode_value,
    boolean,
    bounded_int,
    embodied_value,
    factor_kind,
    gate_shaped,
    idle_seconds,
    intensity_value,
    max_trials_count,
    non_empty,
    non_negative_int,
    non_negative_watts,
    percentage,
    phase_value,
    positive_watts,
    pue_value,
    quality_budget,
    seed_value,
    spread_or_auto,
    text_value,
    thread_count,
    trials_count,
    warmup_count,
)
from energybench.verdicts.baseline import MIN_CHANGE
from energybench.verdicts.gate import DEFAULT_ALPHA
from energybench.verdicts.sequential import FIRST_LOOK, LOOK_EVERY
from energybench.verdicts.spread import DEFAULT_SD

PYTEST_PREFIX = "energy"
CONFIG_TABLE = "tool.energybench"
#: Trials per benchmark of ``energybench run``: enough that a real 20% saving is still claimed after correcting
#: across a table of ~35 rows (tests/verdicts/test_verdict_statistics.py simulates it); 3 never could be.
TRIALS = 15
QUICK_TRIALS = 12


@dataclass(frozen=True)
class Option:
    """One setting shared by the CLI and pytest.

    ``parse`` turns a string (command line, environment) or a TOML value into the value, raising
    ``ValueError`` with what is wrong; ``repeat`` options collect every occurrence and also split comma
    lists (``--fail-on a,b --fail-on c``). ``in_config=False`` and no ``env``: a flag of one command only.
    """

    name: str
    help: str
    parse: Callable[[Any], Any] = text_value
    default: Any = None
    env: str | None = None
    metavar: str | None = None
    flag: bool = False
    repeat: bool = False
    cli_aliases: tuple[str, ...] = ()
    pytest_aliases: tuple[str, ...] = ()
    in_config: bool = True
    nargs: str | None = None  # "+": several values after one flag (``--subjects lm cnn``), command line only
    #: with ``nargs``: a check of each value argparse takes after the flag, so a positional argument it took
    #: along (``--fail-on energy:+5% main``) is one line saying where it goes, not a baffling error later
    each: Callable[[Any], Any] | None = None

    @property
    def cli_only(self) -> bool:
        """A flag of one command, read from its command line alone."""
        return not self.in_config and self.env is None

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def pytest_flag(self) -> str:
        return f"--{PYTEST_PREFIX}-" + self.name.replace("_", "-")

    @property
    def pytest_dest(self) -> str:
        return f"{PYTEST_PREFIX}_{self.name}"


def _declare(*options: Option) -> dict[str, Option]:
    return {o.name: o for o in options}


OPTIONS: dict[str, Option] = _declare(
    Option("results", "directory of saved runs (default: results)", non_empty, "results", "ENERGYBENCH_RESULTS",
           "DIR", cli_aliases=("--results-dir",), pytest_aliases=("--energy-storage",)),
    Option("region", "grid region for CO2e, e.g. FRA, USA/california (US-CA), CAN/quebec, NO1, gcp:europe-west1 "
           "(list: energybench regions)", non_empty, None, "ENERGYBENCH_REGION", "REGION"),
    Option("intensity", "fixed grid intensity in gCO2e/kWh instead of a region", intensity_value, None,
           "ENERGYBENCH_INTENSITY", "G_PER_KWH"),
    Option("intensity_csv", "time series CSV of (timestamp, gCO2e/kWh), applied interval by interval", non_empty,
           None, "ENERGYBENCH_INTENSITY_CSV", "PATH"),
    Option("pue", "data-centre power usage effectiveness applied to CO2e (default 1.0)", pue_value, 1.0,
           "ENERGYBENCH_PUE", "PUE"),
    Option("intensity_kind", "what --intensity / --intensity-csv are: average (default) or marginal factors; "
           "recorded with every CO2e figure", factor_kind, None, "ENERGYBENCH_INTENSITY_KIND", "KIND"),
    Option("intensity_provider", "intensity source plugin: codecarbon (offline default), electricitymaps "
           "($ELECTRICITYMAPS_API_TOKEN), watttime ($WATTTIME_USER/$WATTTIME_PASSWORD); --region names its zone "
           "(list: energybench carbon --providers)", non_empty, None, "ENERGYBENCH_INTENSITY_PROVIDER", "NAME"),
    Option("intensity_api_url", "base URL of the intensity provider's API (a proxy or a test server)", non_empty,
           None, "ENERGYBENCH_INTENSITY_API_URL", "URL"),
    Option("embodied", "embodied emissions of hardware the work used, for SCI: NAME=KGCO2E[:LIFETIME_YEARS[:SHARE]] "
           "(lifetime default 4 years, share of the device reserved default 1); repeat per device",
           embodied_value, (), "ENERGYBENCH_EMBODIED", "DEVICE", repeat=True),
    Option("alpha", f"significance level of the one-sided test behind a verdict (default {DEFAULT_ALPHA})", alpha_level,
           DEFAULT_ALPHA,
           "ENERGYBENCH_ALPHA", "A"),
    Option("fail_on", "fail on a regression: METRIC:+N%% or METRIC:+N<unit>, e.g. energy:+5%%, co2e:+2mg; "
           "repeat the flag or give a comma list (energybench commands also take several after one flag)",
           non_empty, (), "ENERGYBENCH_FAIL_ON", "EXPR", repeat=True, pytest_aliases=("--energy-compare-fail",),
           nargs="+", each=gate_shaped),
    Option("quality_budget", "headlines (the biggest saving, the best trade-offs) count a method only if its quality "
           "is within this much of the baseline's: a percentage (default 1%%), 0 for no loss, 'any' for no budget",
           quality_budget, 0.01, "ENERGYBENCH_QUALITY_BUDGET", "PCT"),
    Option("history", "gate against the spread of up to N past runs of the baseline (runs saved under the baseline's "
           "name; used when there are 3 or more, 0 turns it off)", non_negative_int, 10, "ENERGYBENCH_HISTORY", "N"),
    Option("require_baseline", "a missing baseline is bad input (CLI exit 2, pytest exit 4), even in an empty "
           "results directory", boolean, False, "ENERGYBENCH_REQUIRE_BASELINE", flag=True),
    Option("allow_missing_baseline", "a baseline name that matches no saved run passes as a first run even when "
           "runs of other names are saved (by default that is a typo: exit 2 / 4 naming the runs that exist)",
           boolean, False, "ENERGYBENCH_ALLOW_MISSING_BASELINE", flag=True),
    Option("allow_blind", "a gate that could not fail (no test, or it would miss even a doubling at its n and "
           "family size) passes instead of making the comparison exit 6 (see each gate's 'detects' figure)",
           boolean, False, "ENERGYBENCH_ALLOW_BLIND", flag=True),
    Option("threads", "pin torch's intra-op threads and the BLAS/OpenMP pools to N (default: leave them, record "
           "them)", thread_count, None, "ENERGYBENCH_THREADS", "N"),
    Option("powercap_root", "where the RAPL powercap tree is (default: $ENERGYBENCH_POWERCAP_ROOT or "
           "/sys/class/powercap)", non_empty, None, None, "DIR"),
    Option("gpu_index", "measure only this GPU (index as CUDA_VISIBLE_DEVICES shows it); repeat for several",
           bounded_int(0, 1023, "GPU index"), (), None, "N", repeat=True),
    Option("tpu_watts", "per-chip TPU power for generations with no published figure", positive_watts, None,
           "ENERGYBENCH_TPU_WATTS", "W"),
    Option("tpu_generation", "TPU generation (e.g. v4) when it cannot be detected", non_empty, None, None, "GEN"),
    Option("sampler", "use only these samplers (see `energybench sensors`); repeat for several", non_empty, (),
           None, "NAME", repeat=True),
    Option("drm_root", "where the DRM tree with Intel GPUs' hwmon energy counters is (default: "
           "$ENERGYBENCH_DRM_ROOT or /sys/class/drm)", non_empty, None, None, "DIR"),
    Option("amd_mode", "how AMD GPUs are read: auto (the energy counter where it answers, else power), counter, "
           "polling or both", amd_mode_value, None, "ENERGYBENCH_AMD_MODE", "MODE"),
    Option("gpu_share", "add this process tree's share of each shared GPU (by its share of the GPU's utilisation; "
           "estimated) beside the whole GPU's figure", boolean, False, "ENERGYBENCH_GPU_SHARE", flag=True),
    Option("rapl_idle_w", "the CPU packages' idle draw in watts, above which a process's share of RAPL energy "
           "is taken (energybench run measures it; measure --idle too)", non_negative_watts, None,
           "ENERGYBENCH_RAPL_IDLE_W", "W"),
)


#: ``energybench run``'s own flags (not read from the environment or the config file: a run is set up on its
#: command line, or by ``RunConfig`` from Python, which takes its defaults from here).
RUN_OPTIONS: dict[str, Option] = _declare(
    Option("quick", f"small configs, at most {QUICK_TRIALS} trials a row and 2 s of idle power: every method in a "
           "few minutes", boolean, False, flag=True, in_config=False),
    Option("max_trials", f"the most trials a row gets: each row stops as soon as its verdict is decided, looked at "
           f"every {LOOK_EVERY} trials from the {FIRST_LOOK}rd (default {TRIALS}, quick {QUICK_TRIALS})",
           max_trials_count, None, metavar="N", in_config=False),
    Option("trials", "a fixed count instead: every row gets exactly N trials, none stops early", trials_count, None,
           metavar="N", in_config=False),
    Option("one_off_repeats", "measure one-off costs (distillation, calibration) this many times, for an interval "
           "(default 3, quick 1)", trials_count, None, metavar="N", in_config=False),
    Option("warmup", "unmeasured warm-up runs", warmup_count, 1, metavar="N", in_config=False),
    Option("subjects", "only these: a family (lm), one subject (lm/int8-dynamic) or a method everywhere (bf16); "
           "several, or a comma list", non_empty, (), metavar="S", repeat=True, nargs="+", in_config=False),
    Option("phase", "only this phase: train or inference", phase_value, None, metavar="PHASE", in_config=False),
    Option("name", "run name in the file name", non_empty, "compression", in_config=False),
    Option("device", "cpu, cuda (the current CUDA device), cuda:N or tpu, or several comma-separated (cpu,cuda): "
           "every subject on each device present, side by side; a missing one is noted with the reason; only the "
           "run's own GPUs are measured", non_empty, "cpu", in_config=False),
    Option("seed", "base seed", seed_value, 0, metavar="N", in_config=False),
    Option("idle", "seconds of idle power before the trials (default 3, quick 2)", idle_seconds, None, metavar="S",
           in_config=False),
    Option("cache_dir", "trained baselines (default $ENERGYBENCH_CACHE or ~/.cache/energybench)", non_empty, None,
           metavar="DIR", in_config=False),
    Option("no_save", "print the table without saving the run", boolean, False, flag=True, in_config=False),
    Option("no_layers", "skip the per-layer attribution (one profiled run per benchmark after the trials)", boolean,
           False, flag=True, in_config=False),
    Option("json", "print the run record as JSON instead of the table", boolean, False, flag=True, in_config=False),
    Option("wide", "print every column on one line (default: fit the terminal, 100 columns when not one)", boolean,
           False, flag=True, in_config=False),
    Option("min_change", "the smallest saving or cost a verdict claims: 'saves' needs a saving significantly beyond "
           f"it (default {MIN_CHANGE * 100:g}%%; 0 claims any significant change)", percentage, MIN_CHANGE,
           metavar="PCT", in_config=False),
    Option("between_run_spread", "how much a ratio moves between runs on this machine, added to every verdict's "
           "interval: a percentage, or auto (default: from 3+ saved runs of this name on this machine, else "
           f"{DEFAULT_SD * 100:g}%%)", spread_or_auto, None, metavar="PCT", in_config=False),
)

SAMPLER_OPTIONS = ("powercap_root", "gpu_index", "tpu_watts", "tpu_generation", "sampler", "drm_root", "amd_mode",
                   "gpu_share", "rapl_idle_w")
CARBON_OPTIONS = ("region", "intensity", "intensity_csv", "pue", "intensity_kind", "intensity_provider",
                  "intensity_api_url")
SCI_OPTIONS = ("embodied",)


def option(name: str) -> Option:
    """A shared option or one of ``energybench run``'s own."""
    return OPTIONS[name] if name in OPTIONS else RUN_OPTIONS[name]
