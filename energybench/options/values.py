"""Parsers of option values: a string from the command line or the environment, or a TOML value, to the
value, or a ``ValueError`` saying what is wrong (``resolve`` adds where it came from)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from energybench.errors import ConfigError


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
#: A sequential run's most trials a row gets: at least the first look's (``verdicts.sequential.FIRST_LOOK``).
max_trials_count = bounded_int(3, MAX_TRIALS, "the most trials a row gets; a row is first looked at after 3")


def for_argparse(parse: Callable[[Any], Any]) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type=``: its ``ValueError`` text becomes argparse's one-line error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def gate_shaped(text: Any) -> str:
    """A value after ``--fail-on`` that can be a gate (``METRIC:THRESHOLD``, or a comma list of them); the
    grammar itself is checked by ``verdicts.gate``. A value with no colon is a run or a path that argparse took
    as one more gate (``--fail-on energy:+5% main latest``)."""
    value = non_empty(text)
    stray = next((part.strip() for part in value.split(",") if part.strip() and ":" not in part), None)
    if stray is not None:
        raise ValueError(f"{stray!r} is not a gate (METRIC:+N%, e.g. energy:+5%); give the runs, refs or paths "
                         "before --fail-on")
    return value


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


def phase_value(text: Any) -> str:
    value = str(text).strip().lower()
    if value not in ("train", "inference"):
        raise ValueError(f"must be train or inference, got {_short(text)}")
    return value


def amd_mode_value(text: Any) -> str:
    value = str(text).strip().lower()
    if value not in ("auto", "counter", "polling", "both"):
        raise ValueError(f"must be auto, counter, polling or both, got {_short(text)}")
    return value
