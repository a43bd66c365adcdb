"""Software Carbon Intensity per functional unit: SCI = (E x I + M) / R.

The Green Software Foundation's specification (SCI v1.1, ISO/IEC 21031:2024):

* ``E x I``, the operational emissions: the energy the work drew times the grid's region-specific intensity.
  Here it is each round's CO2e as measured (joules x the factor in force when they were drawn x PUE), so a
  time series or an API's hourly data is honoured. The spec accepts average or marginal factors (never
  market-based ones); which kind was used is recorded (``factor_kind``) because the two are not comparable.
* ``M``, the embodied emissions of the hardware, amortised by the share of its life the work reserved:
  ``M = sum over devices of TE x (TiR / EL) x RS`` (total embodied, time reserved over expected lifespan,
  share of the device's resources reserved). ``TiR`` is the whole time the run held the machine
  (idle, set-up, warm-up, trials: its wall time), shared among benchmarks by measured time.
* ``R``, the functional unit: the benchmark's own item (token, 1k sentences, sample, training step).

Where ``TE`` comes from: Boavizta's reference data ships in the ``boaviztapi`` package, but boaviztapi 2.5
pins ``pandas<3`` (and exact fastapi/uvicorn versions) while energybench runs on pandas 3, and its data are
component descriptions whose impacts need its own engine. So the user gives each device's kgCO2e
(``--embodied gpu=150:5:1``), e.g. from Boavizta's API or datavizta, or the manufacturer's product carbon
footprint; every figure records that source. Without any device M is unknown, and the result says the SCI
covers operational emissions only (``complete = False``), never silently zero.
"""

from __future__ import annotations

import math

from energybench.errors import ConfigError
from energybench.record import Embodied
from energybench.record.sci import DEFAULT_LIFETIME_YEARS

# the figures are derived from the record, so they live with it (``record.sci_figures``); re-exported here
from energybench.record.sci_figures import (
    JOULES_PER_KWH,
    SECONDS_PER_YEAR,
    SciReport,
    SciResult,
    benchmark_sci,
    embodied_g,
    run_sci,
)

__all__ = ["JOULES_PER_KWH", "SECONDS_PER_YEAR", "SciReport", "SciResult", "benchmark_sci", "embodied_g",
           "parse_embodied", "run_sci"]


def parse_embodied(text: str) -> Embodied:
    """``NAME=KGCO2E[:LIFETIME_YEARS[:SHARE]]`` (``server=1200``, ``gpu=150:5:0.5``) -> ``Embodied``."""
    fix = "give NAME=KGCO2E[:LIFETIME_YEARS[:SHARE]], e.g. --embodied gpu=150:5:1"
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise ConfigError(f"embodied emissions {text!r} are not NAME=KGCO2E: {fix}")
    parts = [p.strip() for p in rest.strip().split(":")]
    parts[0] = parts[0].removesuffix("kg").strip()  # "3000kg" reads as it says
    if len(parts) > 3:
        raise ConfigError(f"embodied emissions {text!r} have too many fields: {fix}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"embodied emissions {text!r}: {rest!r} is not numbers: {fix}") from None
    kg = values[0]
    years = values[1] if len(values) > 1 else DEFAULT_LIFETIME_YEARS
    share = values[2] if len(values) > 2 else 1.0
    if not all(math.isfinite(v) for v in values) or kg < 0:
        raise ConfigError(f"embodied emissions {text!r}: kgCO2e must be a finite number >= 0: {fix}")
    if years <= 0:
        raise ConfigError(f"embodied emissions {text!r}: the lifetime must be > 0 years: {fix}")
    if not 0 < share <= 1:
        raise ConfigError(f"embodied emissions {text!r}: the share reserved must be in (0, 1]: {fix}")
    return Embodied(name=name, kgco2e=kg, lifetime_years=years, share=share)
