"""Intensity sources as plugins: Electricity Maps (its documented HTTP API) and WattTime (its official client),
tested offline against a loopback server that replays recorded-shape responses; a pip-installed third-party
source; the network is touched only once a key is configured, and a key never reaches a result."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from energybench.carbon import resolve_provider
from energybench.carbon.regions import LBS_PER_MWH_TO_G_PER_KWH
from energybench.carbon.sources import BUILTIN_SOURCES
from energybench.errors import ConfigError, IntensityDataError

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "support" / "data"
TOKEN = "em-secret-token-123"
EM = json.loads((DATA / "electricitymaps_history_DE.json").read_text())
WT = json.loads((DATA / "watttime_historical_CAISO_NORTH.json").read_text())


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def em_history(now: float) -> dict:
    """The recorded history with its hours moved so the last one is the current hour (the API's live shape)."""
    body = copy.deepcopy(EM)
    last = math.floor(now / 3600) * 3600
    n = len(body["history"])
    for i, row in enumerate(body["history"]):
        row["datetime"] = _iso(last - (n - 1 - i) * 3600)
    return body


def wt_historical(now: float, signal: str) -> dict:
    body = copy.deepcopy(WT)
    last = math.floor(now / 300) * 300
    n = len(body["data"])
    for i, row in enumerate(body["data"]):
        row["point_time"] = datetime.fromtimestamp(last - (n - 1 - i) * 300, UTC).isoformat()
    body["meta"]["signal_type"] = signal
    return body


class Recorder(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        Recorder.requests.append({"path": url.path, "query": query,
                                  "headers": {k.lower(): v for k, v in self.headers.items()}})
        now = time.time()
        if url.path == "/v3/carbon-intensity/history":
            if self.headers.get("auth-token") != TOKEN:
                return self._send(401, {"error": "unauthorized"})
            return self._send(200, em_history(now))
        if url.path == "/login":
            if self.headers.get("Authorization", "").startswith("Basic "):
                return self._send(200, {"token": "wt-jwt"})
            return self._send(403, {"error": "no credentials"})
        if url.path == "/v3/historical":
            if self.headers.get("Authorization") != "Bearer wt-jwt":
                return self._send(401, {"error": "bad token"})
            return self._send(200, wt_historical(now, query["signal_type"]))
        return self._send(404, {"error": "not found"})


@pytest.fixture()
def server():
    Recorder.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_builtin_sources_are_registered_like_plugins():
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert eps["energybench.intensity_providers"] == BUILTIN_SOURCES


# ------------------------------------------------------------------------------------------------ Electricity Maps
def test_electricitymaps_prices_each_hour_and_records_average(server, monkeypatch):
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", TOKEN)
    p = resolve_provider(region="DE", intensity_provider="electricitymaps", intensity_api_url=f"{server}/v3",
                         pue=1.1)
    assert p is not None and p.factor_kind == "average"
    (first,) = Recorder.requests
    assert first["query"] == {"zone": "DE"} and first["headers"]["auth-token"] == TOKEN
    hour = math.floor(time.time() / 3600) * 3600
    info = p.carbon([(hour, hour + 1800, 3.6e6)])  # 1 kWh in the current hour: 371 g/kWh, PUE 1.1
    assert info.co2e_g == pytest.approx(371 * 1.1)
    # the hour before has no figure (null): nothing is priced across that gap, it is said instead
    with pytest.raises(IntensityDataError, match="covers"):
        p.carbon([(hour - 1800, hour + 1800, 3.6e6)])
    assert info.factor_kind == "average" and info.method == "electricitymaps"
    assert "Electricity Maps API v3" in info.source and "lifecycle" in info.source
    assert TOKEN not in json.dumps(p.describe())


def test_electricitymaps_needs_a_token_and_never_calls_without_one(server, monkeypatch):
    monkeypatch.delenv("ELECTRICITYMAPS_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="ELECTRICITYMAPS_API_TOKEN"):
        resolve_provider(region="DE", intensity_provider="electricitymaps", intensity_api_url=f"{server}/v3")
    assert Recorder.requests == []


def test_electricitymaps_refused_token_is_one_line(server, monkeypatch):
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", "wrong")
    with pytest.raises(ConfigError, match=r"HTTP 401 .* check \$ELECTRICITYMAPS_API_TOKEN"):
        resolve_provider(region="DE", intensity_provider="electricitymaps", intensity_api_url=f"{server}/v3")


def test_electricitymaps_serves_no_marginal_factor(monkeypatch):
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match="serves average factors, not marginal"):
        resolve_provider(region="DE", intensity_provider="electricitymaps", intensity_kind="marginal")


def test_measure_with_electricitymaps_end_to_end(server, tmp_path):
    out = tmp_path / "m.json"
    proc = subprocess.run(
        [sys.executable, "-m", "energybench", "measure", "--intensity-provider", "electricitymaps", "--region", "DE",
         "--intensity-api-url", f"{server}/v3", "--json", str(out), "--", sys.executable, "-c", "pass"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "ELECTRICITYMAPS_API_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    carbon = json.loads(text)["measurement"]["carbon"]
    assert carbon["method"] == "electricitymaps" and carbon["region"] == "DE" and carbon["factor_kind"] == "average"
    assert carbon["intensity_g_per_kwh"] == pytest.approx(371)
    assert TOKEN not in text and TOKEN not in proc.stdout and TOKEN not in proc.stderr


# ------------------------------------------------------------------------------------------------ WattTime
@pytest.fixture()
def watttime_env(monkeypatch):
    pytest.importorskip("watttime", reason="the watttime extra is not installed: pip install -e '.[watttime]'")
    monkeypatch.setenv("WATTTIME_USER", "someone")
    monkeypatch.setenv("WATTTIME_PASSWORD", "wt-secret-pw")


def test_watttime_marginal_moer_through_the_official_client(server, watttime_env):
    p = resolve_provider(region="CAISO_NORTH", intensity_provider="watttime", intensity_api_url=server)
    assert p is not None and p.factor_kind == "marginal"
    historical = [r for r in Recorder.requests if r["path"] == "/v3/historical"]
    assert historical and historical[0]["query"]["signal_type"] == "co2_moer"
    assert historical[0]["query"]["region"] == "CAISO_NORTH"
    step = math.floor(time.time() / 300) * 300
    info = p.carbon([(step - 300, step, 3.6e6)])  # the 5 minutes before the last point: recorded 1100 lbs/MWh
    assert info.co2e_g == pytest.approx(1100 * LBS_PER_MWH_TO_G_PER_KWH)
    assert info.factor_kind == "marginal" and "co2_moer" in info.source
    assert "wt-secret-pw" not in json.dumps(p.describe())


def test_watttime_average_asks_for_aoer(server, watttime_env):
    p = resolve_provider(region="CAISO_NORTH", intensity_provider="watttime", intensity_api_url=server,
                         intensity_kind="average")
    assert p is not None and p.factor_kind == "average"
    assert [r["query"]["signal_type"] for r in Recorder.requests if r["path"] == "/v3/historical"] == ["co2_aoer"]


def test_watttime_without_credentials_never_calls(server, monkeypatch):
    monkeypatch.delenv("WATTTIME_USER", raising=False)
    monkeypatch.delenv("WATTTIME_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"\$WATTTIME_USER and \$WATTTIME_PASSWORD"):
        resolve_provider(region="CAISO_NORTH", intensity_provider="watttime", intensity_api_url=server)
    assert Recorder.requests == []


# ------------------------------------------------------------------------------------------------ plugins
@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    build = tmp_path_factory.mktemp("source_plugin_src")
    shutil.copytree(Path(__file__).parents[1] / "support" / "exporter_plugin_pkg", build / "src")
    target = tmp_path_factory.mktemp("source_plugin_target")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "--target", str(target), str(build / "src")], check=True, capture_output=True, text=True,
                   timeout=300)
    return str(target)


def test_a_third_party_intensity_source_prices_a_measurement(plugin_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([plugin_path, os.environ.get("PYTHONPATH", "")])}
    listing = subprocess.run([sys.executable, "-m", "energybench", "carbon", "--providers", "--json"],
                             capture_output=True, text=True, timeout=60, env=env)
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert rows["toy-flat"]["origin"] == "eb_toy_exporter:FlatMarginal" and rows["toy-flat"]["available"]
    assert rows["codecarbon"]["origin"] == "builtin" and rows["watttime"]["factor_kinds"] == ["marginal", "average"]
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "energybench", "measure", "--intensity-provider", "toy-flat",
                           "--json", str(out), "--", sys.executable, "-c", "pass"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(out.read_text())["measurement"]
    assert m["carbon"]["factor_kind"] == "marginal" and m["carbon"]["source"] == "toy plugin"
    assert m["carbon"]["co2e_g"] == pytest.approx(m["energy_j"] / 3.6e6 * 500)


def test_unknown_provider_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "energybench", "measure", "--intensity-provider", "nope", "--region",
                           "X", "--", sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown intensity provider 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
