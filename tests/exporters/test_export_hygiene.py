"""Issue 25, classes 4 and 7b: what exporters write is inert text (no spreadsheet formulas, no control
characters; one CSV writer, ``render.csv``), and no URL's credentials are ever printed (``energybench.redact``)."""

from __future__ import annotations

import csv
import io
import json
import socket
from pathlib import Path

import pytest
from faults import energybench, env_with, error_lines
from report_fixtures import make_bench, make_run

from energybench.record import storage

FORMULA = "=cmd|' /C calc'!A0"
CONTROLS = "\x1b\x00\x07\u202e"
EVIL = "lm/\x1b[2Jevil\x00na\x07me\u202e"


@pytest.fixture
def evil_run(tmp_path: Path) -> Path:
    benches = [make_bench(FORMULA, "baseline", 1.0, 12.0, rounds=3, timeline=False),
               make_bench(EVIL, "baseline", 1.0, 12.0, rounds=3, timeline=False),
               make_bench(EVIL, "int8\x1b[31m", 0.6, 12.0, rounds=3, timeline=False)]
    return storage.save_run(make_run("0001_evil", benchmarks=benches), tmp_path / "results", "evil")


def test_exports_hold_no_formula_and_no_control_character(evil_run: Path, tmp_path: Path):
    out = tmp_path / "emissions.csv"
    written = energybench("export", "codecarbon", str(evil_run), "-o", str(out))
    assert written.returncode == 0, written.stderr
    printed = energybench("export", "codecarbon", str(evil_run))
    assert printed.returncode == 0, printed.stderr
    report = energybench("report", str(evil_run), "--regions", "FRA", "--csv", str(tmp_path / "r.csv"))
    assert report.returncode == 0, report.stderr
    for text in (out.read_text(), printed.stdout, (tmp_path / "r.csv").read_text()):
        assert not any(c in text for c in CONTROLS), repr(text[:300])
        rows = list(csv.reader(io.StringIO(text)))
        cells = [c for row in rows[1:] for c in row]
        assert f"'{FORMULA}" in cells or any(c.startswith(f"'{FORMULA}") for c in cells), rows[:3]
        assert not any(c.startswith(("=", "+", "@")) for c in cells)
        assert any("evilname" in c for c in cells)
    for exporter in ("github-benchmark", "bencher", "prometheus"):
        if exporter == "prometheus":
            pytest.importorskip("prometheus_client", reason="pip install -e '.[prometheus]'")
        proc = energybench("export", exporter, str(evil_run))
        assert proc.returncode == 0, proc.stderr
        text = proc.stdout if exporter == "prometheus" else json.dumps(json.loads(proc.stdout), ensure_ascii=False)
        assert "evilname" in text and not any(c in text for c in CONTROLS), (exporter, text[:300])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SECRETS = ("s3cr3t-pass", "t0k3n-value", "k3y-value")


def _url(scheme: str = "http") -> str:
    return (f"{scheme}://alice:{SECRETS[0]}@127.0.0.1:{_closed_port()}/api?zone=DE&auth_token={SECRETS[1]}"
            f"&api_key={SECRETS[2]}")


def test_credentials_in_urls_are_never_printed(tmp_path: Path):
    url = _url()
    measured = energybench("measure", "--intensity-provider", "electricitymaps", "--region", "DE",
                           "--intensity-api-url", url, "--", "true",
                           env=env_with(ELECTRICITYMAPS_API_TOKEN="dummy-token"))
    output = measured.stdout + measured.stderr
    assert measured.returncode == 2, output
    lines = error_lines(output)
    assert len(lines) == 1 and "cannot reach Electricity Maps at http://***@127.0.0.1" in lines[0], output
    assert "auth_token=***" in lines[0]
    assert not any(s in output for s in SECRETS), output

    pytest.importorskip("prometheus_client", reason="pip install -e '.[prometheus]'")
    saved = storage.save_run(make_run("0001_good"), tmp_path / "results", "good")
    pushed = energybench("export", "prometheus", str(saved), "--push", _url())
    output = pushed.stdout + pushed.stderr
    assert pushed.returncode == 2 and "cannot push to the Pushgateway at http://***@127.0.0.1" in output, output
    assert not any(s in output for s in SECRETS), output
