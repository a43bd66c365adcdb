"""Energy for pytest-benchmark's own rounds: with ``--energy``, each ``benchmark`` fixture's measured rounds run
inside one meter window, and the energy lands in pytest-benchmark's ``extra_info`` (its JSON and tables).

A module of its own because it depends on pytest-benchmark's internals (one private method), which may
change under it, and nothing else in the plugin does.
"""

from __future__ import annotations

from typing import Any, Protocol

from energybench.measuring.meter import Meter

__all__ = ["BenchmarkEnergyTap", "TapSession"]


class SessionMeter(Protocol):
    def get(self) -> Meter: ...


class TapSession(Protocol):
    """What the tap needs of the pytest plugin's session (``pytest_plugin.session.EnergySession``): its meter,
    and a list to report each tapped benchmark to."""

    tapped: list[tuple[str, dict[str, Any]]]

    @property
    def meter(self) -> SessionMeter: ...


class BenchmarkEnergyTap:
    """Wraps a pytest-benchmark ``BenchmarkFixture`` so its measured rounds run inside one meter window.

    pytest-benchmark builds a fresh runner for calibration, warm-up and rounds through ``_make_runner``; the
    runner times itself, so wrapping it from outside never changes pytest-benchmark's timings. The window
    opens at the first runner call after the fixture has created its stats (i.e. after calibration) and
    closes when the test returns. As in a run file, ``energy_j``/``energy_co2e_g`` are the window's (what was
    measured; totals add them) and per-call figures say so in their name: ``energy_per_call_j`` is the window's
    mean power x pytest-benchmark's mean time per call. If a future pytest-benchmark renames ``_make_runner``,
    the tap says so in extra_info instead of failing the test.
    """

    def __init__(self, bm: Any, session: TapSession) -> None:
        self.bm = bm
        self.session = session
        self.window = f"pytest-benchmark:{getattr(bm, 'fullname', id(bm))}"
        self.started = False
        original = getattr(bm, "_make_runner", None)
        if original is None or not hasattr(bm, "extra_info"):
            if hasattr(bm, "extra_info"):
                bm.extra_info["energy_error"] = "this pytest-benchmark version has no _make_runner to wrap"
            return

        def make_runner(*args: Any, **kwargs: Any) -> Any:
            runner = original(*args, **kwargs)

            def wrapped(*a: Any, **kw: Any) -> Any:
                if not self.started and getattr(bm, "stats", None) is not None:
                    session.meter.get().begin(self.window)
                    self.started = True
                return runner(*a, **kw)

            return wrapped

        bm._make_runner = make_runner

    def finish(self) -> None:
        if not self.started:
            return
        m = self.session.meter.get().end(self.window)
        metadata = self.bm.stats
        per_call = float(metadata.stats.mean)
        power = m.mean_power_w
        self.bm.extra_info.update(
            {
                "energy_j": m.energy_j,
                "energy_window_s": m.duration_s,
                "energy_per_call_j": power * per_call,
                "energy_round_j": power * per_call * metadata.iterations,
                "energy_power_w": power,
                "energy_source": m.source,
                "energy_method": "per call: mean power over the measured rounds x mean time per call",
            }
        )
        if m.co2e_g is not None:
            self.bm.extra_info["energy_co2e_g"] = m.co2e_g
            if m.energy_j > 0:
                self.bm.extra_info["energy_co2e_per_call_g"] = m.co2e_g * power * per_call / m.energy_j
        self.session.tapped.append((self.bm.fullname, dict(self.bm.extra_info)))
