"""Aggregation settings: meter options beat environment variables beat defaults.

Read when a meter is made under a process group (and by ``agree``), so a bad value is a ``ConfigError`` before
any work is measured.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from energybench.distributed.launcher import host_id, host_name
from energybench.errors import ConfigError

TIMEOUT_ENV = "ENERGYBENCH_DIST_TIMEOUT_S"
ON_ERROR_ENV = "ENERGYBENCH_DIST_ON_ERROR"
AGGREGATE_ENV = "ENERGYBENCH_DIST_AGGREGATE"
_TRUE, _FALSE = {"1", "true", "on", "yes"}, {"0", "false", "off", "no"}
DEFAULT_TIMEOUT_S = 300.0
ON_ERROR_CHOICES = ("raise", "local")


@dataclass(frozen=True)
class DistConfig:
    """Aggregation settings: options beat environment variables beat defaults."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    on_error: str = "raise"
    host: str = "localhost"
    aggregate: bool = True
    host_id: str = ""  # which machine (launcher.host_id): ranks with one host_id share devices

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> DistConfig:
        options = options or {}
        env = os.environ if environ is None else environ
        raw_timeout = options.get("dist_timeout_s")
        label = "option dist_timeout_s"
        if raw_timeout is None and env.get(TIMEOUT_ENV, "").strip():
            raw_timeout, label = env[TIMEOUT_ENV].strip(), f"${TIMEOUT_ENV}"
        timeout = DEFAULT_TIMEOUT_S
        if raw_timeout is not None:
            try:
                timeout = float(raw_timeout)
            except (TypeError, ValueError):
                timeout = math.nan
            if not (timeout > 0 and math.isfinite(timeout)):
                raise ConfigError(f"{label}={raw_timeout!r} must be a positive number of seconds, e.g. 300")
        on_error = str(options.get("dist_on_error") or env.get(ON_ERROR_ENV) or "raise").strip().lower()
        if on_error not in ON_ERROR_CHOICES:
            raise ConfigError(
                f"dist_on_error / ${ON_ERROR_ENV}={on_error!r} is not one of {', '.join(ON_ERROR_CHOICES)}: "
                "'raise' stops with an error keeping local figures on it, 'local' returns them with a warning"
            )
        raw_aggregate = options.get("dist_aggregate")
        if raw_aggregate is None:
            raw_aggregate = env.get(AGGREGATE_ENV, "1")
        text = str(raw_aggregate).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ConfigError(
                f"dist_aggregate / ${AGGREGATE_ENV}={raw_aggregate!r} must be on or off (1/0, true/false): off "
                "measures this rank alone, e.g. for a window only rank 0 runs"
            )
        return cls(timeout_s=timeout, on_error=on_error, host=host_name(options, env), aggregate=text in _TRUE,
                   host_id=host_id(options, env))
