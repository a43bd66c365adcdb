"""WattTime as an intensity source, through WattTime's official Python client (``pip install watttime``).

WattTime's default signal ``co2_moer`` is the *marginal* operating emissions rate: what one more kWh emits
now (the plant that answers the extra load). ``--intensity-kind average`` asks for ``co2_aoer`` instead.
Both come in lbs CO2 per MWh, every 5 minutes; 1 lb/MWh = 0.45359237 g/kWh exactly.

Credentials are the client's own environment variables, ``$WATTTIME_USER`` and ``$WATTTIME_PASSWORD``;
without them nothing is fetched. ``--intensity-api-url`` points the client elsewhere (a proxy, or the
tests' loopback server that replays recorded responses).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from energybench.carbon.providers import IntensityProvider
from energybench.carbon.regions import LBS_PER_MWH_TO_G_PER_KWH
from energybench.carbon.remote import RemoteSeriesIntensity
from energybench.carbon.sources import IntensitySource
from energybench.carbon.timeseries import parse_timestamp
from energybench.errors import ConfigError, IntensityDataError
from energybench.redact import redact

SIGNALS = {"marginal": "co2_moer", "average": "co2_aoer"}
CREDENTIALS = ("WATTTIME_USER", "WATTTIME_PASSWORD")


def parse_historical(responses: list[dict[str, Any]], region: str) -> tuple[list[tuple[float, float]], float]:
    """(points in gCO2e/kWh, step seconds) from ``WattTimeHistorical.get_historical_jsons`` responses."""
    points: list[tuple[float, float]] = []
    step = 300.0
    for body in responses:
        meta = body.get("meta") or {}
        units = str(meta.get("units") or "")
        if units != "lbs_co2_per_mwh":
            raise IntensityDataError(f"WattTime answered for {region} in {units or 'unknown units'}, "
                                     "not lbs_co2_per_mwh: use signal co2_moer or co2_aoer")
        step = float(meta.get("data_point_period_seconds") or step)
        for row in body.get("data") or []:
            points.append((parse_timestamp(str(row["point_time"])), float(row["value"]) * LBS_PER_MWH_TO_G_PER_KWH))
    return points, step


class WattTimeSource(IntensitySource):
    name = "watttime"
    description = ("WattTime API v3 via its official client: 5-minute marginal (co2_moer) or average (co2_aoer) "
                   "factors; $WATTTIME_USER / $WATTTIME_PASSWORD")
    factor_kinds = ("marginal", "average")
    key_env = CREDENTIALS
    online = True

    def create(self, zone: str | None, *, pue: float, factor_kind: str | None,
               api_url: str | None = None) -> IntensityProvider:
        kind = self.check_kind(factor_kind)
        if not zone:
            raise ConfigError("--intensity-provider watttime needs --region REGION (a WattTime region such as "
                              "CAISO_NORTH; see WattTime's /v3/my-access)")
        missing = [v for v in CREDENTIALS if not os.environ.get(v, "").strip()]
        if missing:
            raise ConfigError(f"--intensity-provider watttime needs ${' and $'.join(missing)} (WattTime account); "
                              "without them nothing is fetched")
        try:
            from watttime import WattTimeHistorical
        except ImportError:
            raise ConfigError("--intensity-provider watttime needs WattTime's client: pip install "
                              "'energybench[watttime]'") from None
        client = WattTimeHistorical()
        if api_url:
            client.url_base = api_url.rstrip("/")
        signal = SIGNALS[kind]
        shown = redact(client.url_base)  # what messages and the saved source say: never the URL's credentials

        def fetch(start: float, end: float) -> tuple[list[tuple[float, float]], float]:
            try:
                responses = client.get_historical_jsons(datetime.fromtimestamp(start, UTC),
                                                        datetime.fromtimestamp(end, UTC), zone, signal_type=signal)
            except Exception as exc:  # the client raises RuntimeError/HTTPError/Exception: one line either way
                first = redact((str(exc).strip().splitlines() or [type(exc).__name__])[0], api_url)
                raise IntensityDataError(f"WattTime ({shown}) failed for region {zone}: {first}; check "
                                         "$WATTTIME_USER/$WATTTIME_PASSWORD and the region") from None
            return parse_historical(responses, zone)

        provider = RemoteSeriesIntensity(fetch, region=zone, method="watttime", pue=pue, factor_kind=kind,
                                         source=f"WattTime API v3 {shown} ({signal}, region {zone}, "
                                                "5-minute, lbs/MWh x 0.45359237)")
        try:
            provider.prime()
        except IntensityDataError as exc:
            raise ConfigError(str(exc)) from None
        return provider
