"""Progress of long work: a live line on a terminal, plain lines in CI logs, with elapsed time and what is left.

No dependency (tqdm and rich draw the same line, but the core stays light): the live line is redrawn in place
with ``\\r`` and cut to the terminal's width; where the stream is not a terminal (a CI log, a file) it would
fill the log with carriage returns, so plain lines are written at milestones instead (``milestone``).

The estimate of what is left is per unit of work, not a flat average: trials run A B C A B C, and one
training window can take fifty inference windows' time, so each key's mean duration so far times how often it
still runs gives the time left. A first guess (e.g. from a warm-up run) stands in only until the key's first unit
finishes: a unit's real time also holds what surrounds the work (set-up, saving, the next look), which a warm-up
run never sees, so averaging the guess in kept the estimate low for the whole run.
Callers keep it off on ranks other than 0 under torchrun (``enabled=False``), so a job prints each line once.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from energybench import units

BAR = 20


class Progress:
    """``cycles`` passes over ``keys`` (trials over benchmarks); ``step(key)`` after each unit of work.

    ``enabled``: ``None`` draws a live line when ``stream`` is a terminal and plain lines otherwise; ``True``
    forces the live line, ``False`` prints nothing. ``expected`` gives first guesses of each key's seconds.
    """

    def __init__(self, keys: Sequence[str], cycles: int, stream: TextIO, enabled: bool | None = None, *,
                 what: str = "windows", expected: Mapping[str, float] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.active = list(dict.fromkeys(keys))
        self.cycles = max(cycles, 0)
        self.count = dict.fromkeys(self.active, 0)
        self.durations = _Durations({k: v for k, v in (expected or {}).items() if v is not None and v >= 0})
        self.stream = stream
        self.off = enabled is False
        self.live = bool(enabled) or (enabled is None and _isatty(stream))
        self.what = what
        self.clock = clock
        self.t0 = self.mark = clock()
        self.skipped = 0
        self.drawn = 0
        self.planned: dict[str, float] = {}  # units each key is now expected to run in all (``expect``)
        self.tail_s = 0.0  # seconds of work after the last unit (the per-layer pass), in the estimate

    # -- figures ------------------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Units planned; never fewer than done (a run's top-up trials go past its cycles)."""
        return max(sum(self.cycles for _ in self.count) - self.skipped, self.done)

    @property
    def done(self) -> int:
        return sum(self.count.values())

    @property
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def per_unit(self, key: str) -> float | None:
        """Mean seconds of one unit of ``key`` so far; its first guess before any (None without one)."""
        return self.durations.mean(key)

    def left_s(self) -> float | None:
        """Seconds still to go: each active key's mean duration times the units it is expected to have left
        (``expect``; else every cycle), keys not seen yet counting the mean of the others, the time a cycle
        spends after its last unit (``milestone``) times the cycles left, plus ``tail_s``."""
        known = {k: v for k in self.active if (v := self.per_unit(k)) is not None}
        if not known:
            return None
        mean = sum(known.values()) / len(known)
        left = {k: max(0.0, self.planned.get(k, self.cycles) - self.count[k]) for k in self.active}
        units = sum(known.get(k, mean) * n for k, n in left.items())
        return units + self.durations.between_s() * math.ceil(max(left.values(), default=0.0)) + self.tail_s

    def expect(self, planned: Mapping[str, float]) -> None:
        """How many units each key is now expected to run in all (a sequential run's forecast of where each row
        stops, an expectation: it may be fractional); keys not named keep every cycle."""
        self.planned.update({k: max(float(v), 0.0) for k, v in planned.items()})  # top-up trials pass the cycles

    def status(self) -> str:
        """``12/60 windows, 1.2 min elapsed, about 3.4 min left``."""
        left = self.left_s()
        text = f"{self.done}/{self.total} {self.what}, {units.seconds(self.elapsed)} elapsed"
        return text + (f", about {units.seconds(left)} left" if left is not None else "")

    # -- events -------------------------------------------------------------------------------------------
    def step(self, key: str) -> None:
        """One unit of ``key`` finished; its duration is the time since the previous step."""
        now = self.clock()
        self.durations.add(key, now - self.mark)
        self.mark = now
        self.count[key] = self.count.get(key, 0) + 1
        if key not in self.active:
            self.active.append(key)
        if self.live and not self.off:
            self._draw(key)

    def drop(self, key: str) -> None:
        """``key`` will not run again (it failed, or does not apply): its remaining units leave the total."""
        if key in self.active:
            self.active.remove(key)
            self.skipped += max(0, self.cycles - self.count.get(key, 0))
        self.mark = self.clock()

    def milestone(self, text: str) -> None:
        """A cycle ended (``trial 3/12 done``): a plain line with the status, for logs (a live line already shows
        it). The time since its last unit (saving, looks, a forecast: 0.4 s a trial in the README's job) is
        the cycle's own, counted in what is left instead of being charged to the next cycle's first key."""
        now = self.clock()
        self.durations.cycle_ended(now - self.mark)
        self.mark = now
        if self.off or self.live:
            return
        self.stream.write(f"energybench: {text} ({self.status()})\n")
        self.stream.flush()

    def _draw(self, key: str) -> None:
        width = shutil.get_terminal_size((100, 24)).columns - 1
        filled = int(BAR * self.done / max(self.total, 1))
        line = f"[{'#' * filled}{'-' * (BAR - filled)}] {self.status()}  {key}"
        line = line if len(line) <= width else line[: max(width - 1, 0)] + "\u2026"
        self.stream.write("\r" + line.ljust(self.drawn))
        self.stream.flush()
        self.drawn = len(line)

    def close(self) -> None:
        if self.live and not self.off and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = 0


class _Durations:
    """Seconds per unit of each key (the mean of the units seen, and a first guess until the first one), and
    the time cycles spend after their last unit."""

    def __init__(self, guess: dict[str, float]) -> None:
        self.guess = guess
        self.seen: dict[str, list[float]] = {}
        self.between: list[float] = []  # each cycle's time after its last unit

    def between_s(self) -> float:
        return sum(self.between) / len(self.between) if self.between else 0.0

    def cycle_ended(self, seconds: float) -> None:
        self.between.append(seconds)

    def add(self, key: str, seconds: float) -> None:
        self.seen.setdefault(key, []).append(seconds)

    def mean(self, key: str) -> float | None:
        seen = self.seen.get(key)
        return sum(seen) / len(seen) if seen else self.guess.get(key)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
