"""The one error type of the counted meter.

A counted run can go wrong after it has already produced counts (the workload forked, it touched a GPU):
the counts are then still data a user may want, so the error carries them in ``result`` and the CLI prints
and saves them before exiting 2, instead of dropping them with a traceback.
"""

from __future__ import annotations

from typing import Any

from energybench.errors import EXIT_BAD_INPUT, EnergybenchError


class CountedError(EnergybenchError):
    """A counted measurement that cannot be trusted or cannot run; ``str()`` names the fix."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result
