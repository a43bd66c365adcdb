"""Error types whose message is the whole story.

Every error a user can cause (bad region, unreadable counter, malformed file) is an ``EnergybenchError``:
its ``str()`` is one line that names the problem and the fix, and the CLI prints exactly that line and exits
with ``exit_code`` instead of showing a traceback.
"""

from __future__ import annotations


class EnergybenchError(Exception):
    """A problem the user can fix; the message says how."""

    exit_code: int = 2


class ConfigError(EnergybenchError):
    """Bad option or argument (interval, PUE, intensity, gate expression...)."""


class UnknownRegionError(ConfigError):
    """A grid region that the intensity data does not know."""


class IntensityDataError(ConfigError):
    """An intensity time series that is malformed or does not cover the window."""


class SamplerError(EnergybenchError):
    """A sampler that cannot read its hardware (permission, missing driver, vanished device)."""

    exit_code = 1


class ResultsError(EnergybenchError):
    """A results file that is missing, malformed, or of an unknown schema version."""


class WindowError(EnergybenchError):
    """Misuse of measurement windows (ending one that was never begun, ...)."""
