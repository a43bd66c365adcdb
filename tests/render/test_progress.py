"""The progress line of long work: elapsed time and an estimate of what is left, live on a terminal, plain
lines in a log, nothing at all where it is turned off (ranks other than 0)."""

from __future__ import annotations

import io

from energybench.render.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def steps(p: Progress, clock: Clock, *at: tuple[float, str]) -> None:
    """Each key's unit finishing at its time."""
    for t, key in at:
        clock.t = t
        p.step(key)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_time_left_follows_each_key_not_a_flat_average():
    """A training window costs ten inference windows: the estimate weighs each by its own last duration."""
    clock, log = Clock(), io.StringIO()
    p = Progress(["train", "infer"], 3, log, clock=clock)
    clock.t = 10.0
    p.step("train")
    clock.t = 11.0
    p.step("infer")
    assert p.done == 2 and p.total == 6
    assert p.left_s() == 2 * (10.0 + 1.0)  # two more cycles of both, not 4 x the mean of 5.5 s (also 22)...
    clock.t = 21.0
    p.step("train")
    assert p.left_s() == 10.0 + 1.0 + 1.0  # ...but here a flat average (21 s / 3 x 3) would say 21 s
    p.milestone("trial 1/3 done")
    assert log.getvalue() == "energybench: trial 1/3 done (3/6 windows, 21 s elapsed, about 12 s left)\n"


def test_a_first_guess_gives_an_estimate_before_anything_finished():
    p = Progress(["a", "b"], 4, io.StringIO(), expected={"a": 2.0, "b": 3.0}, clock=Clock())
    assert p.left_s() == 4 * 5.0
    assert "about 20 s left" in p.status()


def test_a_first_guess_gives_way_to_the_first_measured_unit():
    # a warm-up run of 1 s guessed low: the real window (with its set-up and saving) takes 3 s, and the estimate
    # must say 3 s per window from then on, not the mean of guess and truth (2 s)
    clock = Clock()
    p = Progress(["a"], 5, io.StringIO(), expected={"a": 1.0}, clock=clock)
    assert p.left_s() == 5 * 1.0
    clock.t = 3.0
    p.step("a")
    assert p.left_s() == 4 * 3.0


def test_the_time_a_cycle_spends_after_its_last_unit_counts_for_every_cycle_left():
    # two 1 s windows a trial, then 0.5 s of saving and looks before the next trial: 3 trials left cost 7.5 s,
    # and the 0.5 s is not charged to the next trial's first window
    clock = Clock()
    p = Progress(["a", "b"], 4, io.StringIO(), clock=clock)
    steps(p, clock, (1.0, "a"), (2.0, "b"))
    clock.t = 2.5
    p.milestone("trial 1/4 done")
    assert p.left_s() == 3 * (1.0 + 1.0 + 0.5)
    clock.t = 3.5
    p.step("a")
    assert p.per_unit("a") == 1.0


def test_a_dropped_key_leaves_the_total_and_the_estimate():
    clock = Clock()
    p = Progress(["a", "b"], 5, io.StringIO(), clock=clock)
    steps(p, clock, (1.0, "a"), (3.0, "b"))
    p.drop("b")  # b failed: its 4 remaining windows will not run
    assert p.total == 6 and p.left_s() == 4 * 1.0


def test_terminal_gets_a_live_line_and_a_log_gets_plain_lines():
    clock, tty = Clock(), Tty()
    p = Progress(["x"], 3, tty, clock=clock)
    assert p.live
    clock.t = 65.0
    p.step("x")
    p.milestone("trial 1/3 done")  # the live line already shows it: no extra line on a terminal
    p.close()
    text = tty.getvalue()
    assert text.startswith("\r[######--------------] 1/3 windows, 65 s elapsed, about 2.17 min left  x")
    assert text.endswith("\n") and text.count("\n") == 1
    log = io.StringIO()
    q = Progress(["x"], 3, log, clock=clock)
    q.step("x")
    q.close()
    assert "\r" not in log.getvalue() and log.getvalue() == ""  # steps alone write nothing to a log


def test_off_prints_nothing():
    out = Tty()
    p = Progress(["x"], 2, out, enabled=False, clock=Clock())
    p.step("x")
    p.milestone("trial 1/2 done")
    p.close()
    assert out.getvalue() == ""
