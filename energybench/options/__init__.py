"""Every option of the command line and the pytest plugin, declared once.

The declarations are ``table``, the parsers ``values``, and how a value is found ``resolve``.

Why: a setting spelt several ways (``--results``, ``--results-dir``, ``--energy-storage``) comes to mean
different things in different places. Here each option has one name, one default, one
environment variable and one help text; ``add_to_argparse`` adds it to a subcommand as ``--NAME`` and
``add_to_pytest`` adds it to pytest as ``--energy-NAME``, as pytest-benchmark does with its
``--benchmark-`` prefix. Other spellings stay as aliases.

A value is taken from, in order: the command line, the environment variable, the ``[tool.energybench]``
table of the nearest ``pyproject.toml`` (as codecarbon users keep a ``.codecarbon.config``), the default.
A bad value from any of them is one ``ConfigError`` line that says where it came from.
"""

from __future__ import annotations

from energybench.options.resolve import (
    Config,
    add_to_argparse,
    add_to_pytest,
    carbon_kwargs,
    find_config,
    from_namespace,
    from_pytest,
    resolve,
    resolve_all,
    sampler_options,
)
from energybench.options.table import (
    CARBON_OPTIONS,
    CONFIG_TABLE,
    OPTIONS,
    PYTEST_PREFIX,
    QUICK_TRIALS,
    RUN_OPTIONS,
    SAMPLER_OPTIONS,
    SCI_OPTIONS,
    TRIALS,
    Option,
    option,
)
from energybench.options.values import (
    MAX_IDLE_S,
    MAX_SEED,
    MAX_THREADS,
    MAX_TRIALS,
    MAX_WARMUP,
    alpha_level,
    amd_mode_value,
    boolean,
    bounded_int,
    bounded_seconds,
    embodied_value,
    factor_kind,
    for_argparse,
    idle_seconds,
    intensity_value,
    max_trials_count,
    min_rounds_count,
    non_empty,
    non_negative_int,
    non_negative_watts,
    percentage,
    phase_value,
    positive_int,
    positive_seconds,
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

__all__ = [
    "CARBON_OPTIONS",
    "CONFIG_TABLE",
    "Config",
    "MAX_IDLE_S",
    "MAX_SEED",
    "MAX_THREADS",
    "MAX_TRIALS",
    "MAX_WARMUP",
    "OPTIONS",
    "Option",
    "PYTEST_PREFIX",
    "QUICK_TRIALS",
    "RUN_OPTIONS",
    "SAMPLER_OPTIONS",
    "SCI_OPTIONS",
    "TRIALS",
    "add_to_argparse",
    "add_to_pytest",
    "alpha_level",
    "amd_mode_value",
    "boolean",
    "bounded_int",
    "bounded_seconds",
    "carbon_kwargs",
    "embodied_value",
    "factor_kind",
    "find_config",
    "for_argparse",
    "from_namespace",
    "from_pytest",
    "idle_seconds",
    "max_trials_count",
    "intensity_value",
    "min_rounds_count",
    "non_empty",
    "non_negative_int",
    "non_negative_watts",
    "option",
    "percentage",
    "phase_value",
    "positive_int",
    "positive_seconds",
    "positive_watts",
    "pue_value",
    "quality_budget",
    "resolve",
    "resolve_all",
    "sampler_options",
    "seed_value",
    "spread_or_auto",
    "text_value",
    "thread_count",
    "trials_count",
    "warmup_count",
]
