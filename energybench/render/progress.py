"""Progress of a long run on stderr: a one-line bar on a terminal, plain lines in CI logs."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """A one-line progress bar on stderr (no dependency); plain lines per trial when not a terminal."""

    def __init__(self, total: int, stream: TextIO, enabled: bool | None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream
        self.tty = enabled if enabled is not None else stream.isatty()
        self.t0 = time.monotonic()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.tty:
            return
        width = 28
        filled = int(width * self.done / self.total)
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {elapsed:4.0f}s eta {eta:3.0f}s {label[:40]:<40}")
        self.stream.flush()

    def trial_done(self, trial: int, trials: int) -> None:
        if not self.tty:
            self.stream.write(f"energybench: trial {trial + 1}/{trials} done ({self.done}/{self.total} windows)\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and self.done:
            self.stream.write("\n")
            self.stream.flush()
