"""Electricity Maps as an intensity source, through its documented HTTP API (v3).

Why not the ``electricitymaps`` package on PyPI: version 0.0.1 installs a top-level module named
``openapi`` (a generated client), which would shadow or be shadowed by any other generated client in the
user's environment; the API itself is two headers and a JSON body, so the standard library is enough.

``GET {base}/carbon-intensity/history?zone=ZONE`` with header ``auth-token: KEY`` returns the last 24 hours,
hourly: ``{"zone": "DE", "history": [{"carbonIntensity": 302, "datetime": "2024-05-01T13:00:00.000Z",
"emissionFactorType": "lifecycle", "isEstimated": false, ...}], "temporalGranularity": "hourly"}``.
Electricity Maps' figure is the consumption-based *average* of the zone's mix, so these factors are recorded
as ``average``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from energybench.carbon.providers import IntensityProvider
from energybench.carbon.remote import RemoteSeriesIntensity
from energybench.carbon.sources import IntensitySource
from energybench.carbon.timeseries import parse_timestamp
from energybench.errors import ConfigError, IntensityDataError
from energybench.redact import redact

DEFAULT_URL = "https://api.electricitymaps.com/v3"
TOKEN_ENV = "ELECTRICITYMAPS_API_TOKEN"
TIMEOUT_S = 20.0
STEPS = {"hourly": 3600.0, "15_minutes": 900.0, "5_minutes": 300.0}


def parse_history(body: Any, zone: str) -> tuple[list[tuple[float, float]], float, str]:
    """(points, step seconds, emission factor type) from a ``/carbon-intensity/history`` response."""
    if not isinstance(body, dict) or not isinstance(body.get("history"), list):
        raise IntensityDataError(f"Electricity Maps answered for {zone} without a 'history' list: "
                                 "check the zone name (e.g. DE, FR, US-CAL-CISO)")
    points: list[tuple[float, float]] = []
    kinds = set()
    for row in body["history"]:
        value = row.get("carbonIntensity") if isinstance(row, dict) else None
        if value is None:
            points = []  # an hour with no figure: keep only what follows, so nothing is priced across the gap
            continue
        points.append((parse_timestamp(str(row["datetime"])), float(value)))
        kinds.add(str(row.get("emissionFactorType") or "lifecycle"))
    step = STEPS.get(str(body.get("temporalGranularity") or "hourly"), 3600.0)
    return points, step, "/".join(sorted(kinds)) or "lifecycle"


class ElectricityMapsSource(IntensitySource):
    name = "electricitymaps"
    description = f"Electricity Maps API v3, hourly average (consumption-based) intensity; token in ${TOKEN_ENV}"
    factor_kinds = ("average",)
    key_env = (TOKEN_ENV,)
    online = True

    def create(self, zone: str | None, *, pue: float, factor_kind: str | None,
               api_url: str | None = None) -> IntensityProvider:
        kind = self.check_kind(factor_kind)
        if not zone:
            raise ConfigError("--intensity-provider electricitymaps needs --region ZONE (an Electricity Maps zone "
                              "such as DE, FR or US-CAL-CISO)")
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise ConfigError(f"--intensity-provider electricitymaps needs an API token in ${TOKEN_ENV} (from "
                              "the Electricity Maps portal); without one nothing is fetched")
        base = (api_url or DEFAULT_URL).rstrip("/")
        shown = redact(base)  # what messages and the saved source say: never the URL's credentials
        state = {"factor_type": "lifecycle"}

        def fetch(start: float, end: float) -> tuple[list[tuple[float, float]], float]:
            query = urllib.parse.urlencode({"zone": zone})
            request = urllib.request.Request(f"{base}/carbon-intensity/history?{query}",
                                             headers={"auth-token": token, "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    body = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                hint = f"check ${TOKEN_ENV}" if exc.code in (401, 403) else "check the zone name"
                raise IntensityDataError(f"Electricity Maps answered HTTP {exc.code} for zone {zone}: {hint}") from None
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                raise IntensityDataError(f"cannot reach Electricity Maps at {shown}: {redact(str(exc), base)}; "
                                         "retry, or price with --region (codecarbon's offline averages)") from None
            points, step, factor_type = parse_history(body, zone)
            state["factor_type"] = factor_type
            return points, step

        provider = RemoteSeriesIntensity(fetch, region=zone, source="", method="electricitymaps", pue=pue,
                                         factor_kind=kind)
        try:
            provider.prime()  # a bad token or zone fails here, before any work
        except IntensityDataError as exc:
            raise ConfigError(str(exc)) from None
        provider.source = f"Electricity Maps API v3 {shown} (zone {zone}, hourly, {state['factor_type']})"
        return provider
