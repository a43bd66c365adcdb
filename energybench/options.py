"""Every option the command line and the pytest plugin share, declared once.

Why: the same setting used to be spelt four ways (``--results``, ``--results-dir``, ``--energy-storage``)
and to mean different things in different places. Here each option has one name, one default, one
environment variable and one help text; ``add_to_argparse`` adds it to a subcommand as ``--NAME`` and
``add_to_pytest`` adds it to pytest as ``--energy-NAME``, as pytest-benchmark does with its
``--benchmark-`` prefix. Old spellings stay as aliases.

A value is taken from, in order: the command line, the environment variable, the ``[tool.energybench]``
table of the nearest ``pyproject.toml`` (as codecarbon users keep a ``.codecarbon.config``), the default.
A bad value from any of them is one ``ConfigError`` line that says where it came from.
"""

from __future__ import annotations

import argparse
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError
from energybench.verdicts.gate import DEFAULT_ALPHA

PYTEST_PREFIX = "energy"
#: Trials per benchmark of ``energybench run``: enough that a real 20% saving is still claimed after correcting
#: across a table of ~35 rows (tests/verdicts/test_verdict_statistics.py simulates it); 3 never could be.
TRIALS = 15
QUICK_TRIALS = 12
CONFIG_TABLE = "tool.energybench"


# ------------------------------------------------------------------------------------------------ parsers
def _number(text: Any, what: str) -> float:
    if isinstance(text, bool):
        raise ValueError(f"{what} is not a number")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{_short(text)} is not a number") from None
    except OverflowError:  # an integer beyond any float
        raise ValueError(f"{_short(text)} is too large") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def positive_seconds(text: Any) -> float:
    value = _number(text, "seconds")
    if value <= 0:
        raise ValueError(f"must be a positive number of seconds, got {_short(text)} (e.g. 0.1)")
    return value


def alpha_level(text: Any) -> float:
    value = _number(text, "alpha")
    if not 0 < value < 0.5:
        raise ValueError(f"must be a significance level between 0 and 0.5, got {_short(text)} (e.g. 0.01)")
    return value


def positive_watts(text: Any) -> float:
    value = _number(text, "watts")
    if value <= 0:
        raise ValueError(f"must be a positive number of watts per chip, got {_short(text)}")
    return value


def non_negative_watts(text: Any) -> float:
    value = _number(text, "watts")
    if value < 0:
        raise ValueError(f"must be watts >= 0, got {text!r}")
    return value


def non_negative_int(text: Any) -> int:
    value = _number(text, "count")
    if value != int(value) or value < 0:
        raise ValueError(f"must be a whole number >= 0, got {_short(text)}")
    return int(value)


def positive_int(text: Any) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise ValueError(f"must be a whole number >= 1, got {_short(text)}")
    return value


def bounded_int(low: int, high: int, what: str) -> Callable[[Any], int]:
    """A parser of whole numbers in ``[low, high]``: ``1e3`` is 1000, ``2.5``, ``nan`` or ``1e99`` are refused."""

    def parse(text: Any) -> int:
        value = _number(text, what)
        if value != int(value) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high} ({what}), got {_short(text)}")
        return int(value)

    parse.__name__ = what.replace(" ", "_")
    return parse


def bounded_seconds(low: float, high: float, what: str) -> Callable[[Any], float]:
    """A parser of seconds in ``[low, high]``, finite (``nan`` and ``inf`` are refused)."""

    def parse(text: Any) -> float:
        value = _number(text, what)
        if not low <= value <= high:
            raise ValueError(f"must be {low:g} to {high:g} seconds ({what}), got {_short(text)}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


#: ``energybench run``'s numeric options: wide enough for any real machine and experiment, narrow enough that
#: a typo or a NaN is refused in one line instead of reaching torch (which segfaults on 10**5 threads).
MAX_THREADS = 1024
MAX_SEED = 2**32 - 1  # numpy's and most seeding APIs' range; torch takes it too
MAX_TRIALS = 100_000
MAX_WARMUP = 10_000
MAX_IDLE_S = 3600.0
trials_count = bounded_int(1, MAX_TRIALS, "measured trials")
warmup_count = bounded_int(0, MAX_WARMUP, "warm-up runs")
thread_count = bounded_int(1, MAX_THREADS, "torch threads")
seed_value = bounded_int(0, MAX_SEED, "seed")
idle_seconds = bounded_seconds(0.0, MAX_IDLE_S, "idle seconds")
min_rounds_count = bounded_int(1, MAX_TRIALS, "rounds")


def for_argparse(parse: Callable[[Any], Any]) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type=``: its ``ValueError`` text becomes argparse's one-line error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def non_empty(text: Any) -> str:
    value = str(text).strip()
    if not value:
        raise ValueError("is empty: give a value, or leave the option out for its default")
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def text_value(text: Any) -> str:
    return str(text)


def pue_value(text: Any) -> float:
    """A PUE by the carbon module's own rule (a number >= 1.0), as a ``ValueError`` for ``resolve`` to place."""
    from energybench.carbon.providers import parse_pue

    try:
        return parse_pue(text)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def intensity_value(text: Any) -> float:
    """A grid factor in gCO2e/kWh by the carbon module's own rule (``250`` or ``250 g/kWh``)."""
    from energybench.carbon.providers import parse_intensity

    try:
        return parse_intensity(text)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def factor_kind(text: Any) -> str:
    value = str(text).strip().lower()
    if value not in ("average", "marginal"):
        raise ValueError(f"must be average or marginal, got {text!r}")
    return value


def embodied_value(text: Any) -> Any:
    """One device's embodied emissions (``gpu=150:5:0.5``) by the SCI module's own rule."""
    from energybench.carbon.sci import parse_embodied

    try:
        return parse_embodied(str(text))
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def quality_budget(text: Any) -> float:
    """How much worse than the baseline's a method's quality may be and still make a headline, as a fraction:
    ``1%`` or ``1`` (percent) is 0.01, ``0`` demands no loss at all, ``any`` turns the budget off."""
    raw = str(text).strip().lower()
    if raw in ("any", "none", "off", "inf"):
        return math.inf
    value = _percent(raw)
    if value is None:
        raise ValueError(f"must be a percentage >= 0 (e.g. 1% or 0.5%), or 'any' for no budget, got {text!r}")
    return value


def _percent(text: Any, below: float = math.inf) -> float | None:
    """``5%`` or ``5`` as the fraction 0.05 when it is a number from 0 to below ``below`` percent, else None."""
    try:
        value = _number(str(text).strip().removesuffix("%").strip(), "percentage")
    except ValueError:
        return None
    return value / 100 if 0 <= value < below else None


def percentage(text: Any) -> float:
    """A percentage as a fraction: ``5%`` or ``5`` is 0.05; 0 and up, below 100%."""
    value = _percent(text, below=100)
    if value is None:
        raise ValueError(f"must be a percentage from 0 to below 100 (e.g. 5%), got {_short(text)}")
    return value


def spread_or_auto(text: Any) -> float | None:
    """``auto`` (None: from saved runs of this machine, else the default) or a percentage."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        return percentage(text)
    except ValueError:
        raise ValueError(f"must be 'auto' or a percentage (e.g. 2%), got {_short(text)}") from None


def boolean(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false (1/0, yes/no), got {_short(text)}")


# ------------------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class Option:
    """One setting shared by the CLI and pytest.

    ``parse`` turns a string (command line, environment) or a TOML value into the value, raising
    ``ValueError`` with what is wrong; ``repeat`` options collect every occurrence and also split comma
    lists (``--fail-on a,b --fail-on c``).
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
    Option("fail_on", "fail on a regression: METRIC:+N%% or METRIC:+N<unit>, e.g. energy:+5%%, co2e:+2mg; repeat "
           "or give a comma list", non_empty, (), "ENERGYBENCH_FAIL_ON", "EXPR", repeat=True,
           pytest_aliases=("--energy-compare-fail",)),
    Option("quality_budget", "headlines (the biggest saving, the best trade-offs) count a method only if its quality "
           "is within this much of the baseline's: a percentage (default 1%%), 0 for no loss, 'any' for no budget",
           quality_budget, 0.01, "ENERGYBENCH_QUALITY_BUDGET", "PCT"),
    Option("history", "gate against the spread of up to N past runs of the baseline (runs saved under the baseline's "
           "name; used when there are 3 or more, 0 turns it off)", non_negative_int, 10, "ENERGYBENCH_HISTORY", "N"),
    Option("require_baseline", "a missing baseline is bad input (CLI exit 2, pytest exit 4) instead of a pass "
           "with a note", boolean, False, "ENERGYBENCH_REQUIRE_BASELINE", flag=True),
    Option("threads", "pin torch's intra-op threads and the BLAS/OpenMP pools to N (default: leave them, record "
           "them)", positive_int, None, "ENERGYBENCH_THREADS", "N"),
    Option("powercap_root", "where the RAPL powercap tree is (default: $ENERGYBENCH_POWERCAP_ROOT or "
           "/sys/class/powercap)", non_empty, None, None, "DIR"),
    Option("gpu_index", "measure only this GPU (index as CUDA_VISIBLE_DEVICES shows it); repeat for several",
           bounded_int(0, 1023, "GPU index"), (), None, "N", repeat=True),
    Option("tpu_watts", "per-chip TPU power for generations with no published figure", positive_watts, None,
           "ENERGYBENCH_TPU_WATTS", "W"),
    Option("tpu_generation", "TPU generation (e.g. v4) when it cannot be detected", non_empty, None, None, "GEN"),
    Option("sampler", "use only these samplers (see `energybench sensors`); repeat for several", non_empty, (),
           None, "NAME", repeat=True),
    Option("rapl_idle_w", "the CPU packages' idle draw in watts, above which a process's share of RAPL energy "
           "is taken (energybench run measures it; measure --idle too)", non_negative_watts, None,
           "ENERGYBENCH_RAPL_IDLE_W", "W"),
)

SAMPLER_OPTIONS = ("powercap_root", "gpu_index", "tpu_watts", "tpu_generation", "sampler", "rapl_idle_w")
CARBON_OPTIONS = ("region", "intensity", "intensity_csv", "pue", "intensity_kind", "intensity_provider",
                  "intensity_api_url")
SCI_OPTIONS = ("embodied",)


# ------------------------------------------------------------------------------------------------ adding
def add_to_argparse(parser: argparse.ArgumentParser | Any, names: Iterable[str], title: str | None = None) -> None:
    """Add the named options as ``--NAME`` (plus aliases); unset options stay ``None`` so ``resolve`` can fall
    back to the environment, the config file and the default."""
    target = parser.add_argument_group(title) if title else parser
    for name in names:
        opt = OPTIONS[name]
        target.add_argument(opt.cli_flag, *opt.cli_aliases, **_argument_kwargs(opt, opt.name))


def add_to_pytest(group: Any, names: Iterable[str]) -> None:
    """Add the named options to a pytest option group as ``--energy-NAME`` (plus today's aliases)."""
    for name in names:
        opt = OPTIONS[name]
        group.addoption(opt.pytest_flag, *opt.pytest_aliases, **_argument_kwargs(opt, opt.pytest_dest))


def _argument_kwargs(opt: Option, dest: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dest": dest, "default": None, "help": opt.help}
    if opt.env:
        kwargs["help"] += f" [env {opt.env}]"
    if opt.flag:
        kwargs["action"] = "store_true"
    else:
        kwargs["metavar"] = opt.metavar or opt.name.upper()
        if opt.repeat:
            kwargs["action"] = "append"
    return kwargs


# ------------------------------------------------------------------------------------------------ resolving
@dataclass(frozen=True)
class Config:
    """The ``[tool.energybench]`` table in force (empty when there is none) and the file it came from."""

    values: Mapping[str, Any]
    path: Path | None = None


def find_config(start: str | os.PathLike[str] | None = None) -> Config:
    """The nearest ``pyproject.toml`` from ``start`` (default: the working directory) upwards that has a
    ``[tool.energybench]`` table; an unknown key there is a ``ConfigError`` naming the file."""
    here = Path(start or os.getcwd()).resolve()
    return _find_config(here)


@lru_cache(maxsize=16)
def _find_config(here: Path) -> Config:
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {candidate}: {exc}; fix the file or run from another directory") from None
        table = data.get("tool", {}).get("energybench")
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"[{CONFIG_TABLE}] in {candidate} must be a table of settings")
        allowed = sorted(n for n, o in OPTIONS.items() if o.in_config)
        unknown = sorted(set(table) - set(allowed) - {n.replace("_", "-") for n in allowed})
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in [{CONFIG_TABLE}] of {candidate}; "
                              f"known: {', '.join(allowed)}")
        return Config({k.replace("-", "_"): v for k, v in table.items()}, candidate)
    return Config({})


def resolve(name: str, given: Any = None, *, config: Config | None = None,
            environ: Mapping[str, str] | None = None, pytest: bool = False) -> Any:
    """The value of option ``name``: ``given`` (command line) if set, else its environment variable, else the
    config file, else the default; parsed and checked, with the source named in any error (``--energy-NAME``
    when ``pytest``)."""
    opt = OPTIONS[name]
    env = os.environ if environ is None else environ
    if given is not None and given != [] and given is not False:
        return _parse(opt, given, opt.pytest_flag if pytest else opt.cli_flag)
    if opt.env and opt.env in env:
        return _parse(opt, env[opt.env], f"${opt.env}")
    cfg = config if config is not None else find_config()
    if opt.in_config and name in cfg.values:
        return _parse(opt, cfg.values[name], f"{name} in [{CONFIG_TABLE}] of {cfg.path}")
    return opt.default


def _parse(opt: Option, raw: Any, source: str) -> Any:
    try:
        if opt.flag:
            return boolean(raw)
        if opt.repeat:
            items = raw if isinstance(raw, list | tuple) else [raw]
            parts = [p.strip() if isinstance(p, str) else p  # TOML gives numbers too: gpu_index = [0, 1]
                     for item in items for p in (str(item).split(",") if opt.name in _COMMA_LISTS else [item])]
            return tuple(opt.parse(p) for p in parts if not (isinstance(p, str) and not p))
        return opt.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{source} {_show(raw)}: {exc}") from None


_COMMA_LISTS = ("fail_on", "sampler", "embodied")


def _show(raw: Any) -> str:
    return f"= {raw!r}" if not isinstance(raw, list | tuple) else f"= {', '.join(map(repr, raw))}"


def resolve_all(names: Sequence[str], given: Mapping[str, Any], *, config: Config | None = None,
                pytest: bool = False) -> dict[str, Any]:
    """``resolve`` for several options at once; ``given`` maps option names to command-line values."""
    cfg = config if config is not None else find_config()
    return {name: resolve(name, given.get(name), config=cfg, pytest=pytest) for name in names}


def from_namespace(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """Resolved values of the named options from an argparse namespace (see ``add_to_argparse``)."""
    return resolve_all(names, {n: getattr(args, n, None) for n in names})


def from_pytest(config: Any, names: Sequence[str]) -> dict[str, Any]:
    """Resolved values of the named options from a pytest config; the config file is looked up from
    pytest's root directory, so a suite run from elsewhere still finds its project's settings."""
    cfg = find_config(getattr(config, "rootpath", None))
    return resolve_all(names, {n: config.getoption(OPTIONS[n].pytest_dest) for n in names}, config=cfg,
                       pytest=True)


# ------------------------------------------------------------------------------------------------ groups
def sampler_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved sampler options as the ``options`` mapping samplers take."""
    options: dict[str, Any] = {}
    if values.get("powercap_root"):
        options["powercap_root"] = values["powercap_root"]
    if values.get("gpu_index"):
        options["gpu_indices"] = list(values["gpu_index"])
    if values.get("tpu_watts") is not None:
        options["tpu_watts"] = values["tpu_watts"]
    if values.get("tpu_generation"):
        options["tpu_generation"] = values["tpu_generation"]
    if values.get("sampler"):
        options["samplers"] = list(values["sampler"])
    if values.get("rapl_idle_w") is not None:
        options["rapl_idle_w"] = values["rapl_idle_w"]
    return options


def carbon_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved carbon options as ``Meter``/``resolve_provider`` keywords."""
    return {"region": values.get("region"), "intensity": values.get("intensity"),
            "intensity_csv": values.get("intensity_csv"), "pue": values.get("pue") or 1.0,
            "intensity_kind": values.get("intensity_kind"), "intensity_provider": values.get("intensity_provider"),
            "intensity_api_url": values.get("intensity_api_url")}
