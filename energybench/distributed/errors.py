"""What fails when ranks cannot be aggregated: one error family, carrying this rank's own figures.

A failure to aggregate must never cost what was measured, so the errors keep the local ``Measurement``.
"""

from __future__ import annotations

from energybench.errors import EnergybenchError
from energybench.measurement import Measurement


class DistributedError(EnergybenchError):
    """Ranks could not be aggregated. ``local`` keeps this rank's own measurement, so nothing is lost."""

    def __init__(self, message: str, *, local: Measurement | None = None, window: str | None = None) -> None:
        super().__init__(message)
        self.local = local
        self.window = window


class DistributedTimeoutError(DistributedError):
    """A rank crashed or did not reach the window's end within the aggregation timeout."""

    exit_code = 1
