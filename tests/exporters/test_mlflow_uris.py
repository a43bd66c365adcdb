"""``energybench export mlflow`` with the tracking URIs docs/integrations.md names, using only the ``[mlflow]``
extra (mlflow-skinny, SQLAlchemy, Alembic): ``sqlite:///mlflow.db`` (MLflow 3's default, which mlflow-skinny
alone refused with "Model registry functionality is unavailable"), ``file:./mlruns`` (MLflow 3 refuses a file
store unless told) and ``http://`` (a tracking server: here a small stand-in that speaks MLflow's REST API and
records what it was sent; the client side is MLflow's own). The README's ``export mlflow latest`` (MLflow's
default URI) runs in tests/test_docs_commands.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from energybench.exporters.figures import bench_figures

pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")


def export(run: Any, cwd: Path, *args: str, pre: str = "") -> subprocess.CompletedProcess[str]:
    """``energybench export mlflow RUN ...`` from ``cwd``, with no MLflow setting inherited from this shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ENERGYBENCH_"))}
    argv = ["export", "mlflow", run.label, "--results", str(Path(run.path).parent), *args]
    code = f"import sys\n{pre}\nfrom energybench.cli import main\nsys.exit(main({argv!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env=env)


def _check_store(uri: str, run: Any) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("energybench").experiment_id])
    for f in bench_figures(run):
        key = f"{f.bench.name}/{f.bench.method}/energy_per_item_j"
        assert logged.data.metrics[key] == pytest.approx(f.bench.energy_per_item.median)
    names = {a.path for a in client.list_artifacts(logged.info.run_id, "energybench")}
    assert f"energybench/{run.label}.json" in names and logged.info.status == "FINISHED"


def test_sqlite_uri_of_the_manual(real_run: Any, tmp_path: Path) -> None:
    proc = export(real_run, tmp_path, "--tracking-uri", "sqlite:///mlflow.db")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "mlflow.db").is_file() and "logged" in proc.stderr
    _check_store(f"sqlite:///{tmp_path / 'mlflow.db'}", real_run)


def test_file_uri_of_the_manual(real_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = export(real_run, tmp_path, "--tracking-uri", "file:./mlruns")
    assert proc.returncode == 0, proc.stderr[-3000:]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # this process reads the store back
    _check_store((tmp_path / "mlruns").as_uri(), real_run)


def test_a_database_uri_without_sqlalchemy_says_what_to_install(real_run: Any, tmp_path: Path) -> None:
    """mlflow-skinny alone (the extra before it named SQLAlchemy and Alembic): one line naming the fix."""
    proc = export(real_run, tmp_path, "--tracking-uri", "sqlite:///mlflow.db",
                  pre="sys.modules['sqlalchemy'] = None  # as if not installed")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "needs sqlalchemy" in proc.stderr and "pip install -e '.[mlflow]'" in proc.stderr
    assert "Model registry" not in proc.stderr and not (tmp_path / "mlflow.db").exists()


class _Tracking(BaseHTTPRequestHandler):
    """The calls an MLflow client makes to log a run, answered as a tracking server answers them; every request
    is kept in ``server.calls``. Artifacts go to the local directory in ``server.artifacts``."""

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _run(self, status: str = "RUNNING") -> dict[str, Any]:
        return {"info": {"run_id": "r1", "run_uuid": "r1", "experiment_id": "1", "status": status, "start_time": 1,
                         "artifact_uri": self.server.artifacts, "lifecycle_stage": "active", "run_name": "x"},
                "data": {}}

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else dict(
            (k, v[0]) for k, v in parse_qs(url.query).items())
        self.server.calls.append((method, url.path, body))
        path = url.path.removeprefix("/api/2.0/mlflow/")
        if path == "experiments/get-by-name":
            self._reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"})
        elif path == "experiments/create":
            self._reply(200, {"experiment_id": "1"})
        elif path in ("runs/create", "runs/get"):
            self._reply(200, {"run": self._run()})
        elif path == "runs/update":
            self._reply(200, {"run_info": self._run(body.get("status", "FINISHED"))["info"]})
        elif path == "runs/log-batch":
            self._reply(200, {})
        else:
            self._reply(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no {method} {url.path} here"})

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def log_message(self, *args: Any) -> None:
        pass


def test_http_uri_of_the_manual(real_run: Any, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tracking)
    server.calls, server.artifacts = [], (tmp_path / "artifacts").as_uri()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = export(real_run, tmp_path, "--tracking-uri", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = server.calls  # type: ignore[attr-defined]
    logged = {m["key"]: m["value"] for _, p, b in calls if p.endswith("runs/log-batch") for m in b.get("metrics", [])}
    for f in bench_figures(real_run):
        assert logged[f"{f.bench.name}/{f.bench.method}/energy_per_item_j"] == pytest.approx(
            f.bench.energy_per_item.median)
    assert any(p.endswith("runs/update") and b.get("status") == "FINISHED" for _, p, b in calls)
    assert (tmp_path / "artifacts" / "energybench" / f"{real_run.label}.json").is_file()
