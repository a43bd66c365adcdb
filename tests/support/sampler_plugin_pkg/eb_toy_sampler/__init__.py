"""A third-party sampler: a board whose power rail reads a constant 7 W (a software stand-in for a sensor).

It shows the whole plugin surface a real one needs: a ``SamplerFactory`` under the ``energybench.samplers``
entry-point group, a probe that states its availability, and a counter sampler with its own domain.
"""

from __future__ import annotations

import time

from energybench.samplers import Availability, BaseSampler, Domain, SamplerFactory

WATTS = 7.0


class BoardSampler(BaseSampler):
    name = "toy-board"
    kind = "counter"

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def domains(self) -> list[Domain]:
        return [Domain("board:rail-0", "estimated", "toy-constant-7w")]

    def read(self) -> dict[str, float]:
        return {"board:rail-0": WATTS * (time.monotonic() - self._t0)}


FACTORY = SamplerFactory(
    name="toy-board",
    probe=lambda options: Availability("toy-board", True, "estimated", domains=("board:rail-0",)),
    create=lambda options: [BoardSampler()],
)
