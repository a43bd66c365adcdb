"""MLflow: a run's energy, CO2e and SCI as metrics, its settings as params, the HTML report as an artifact.

Two ways in, as MLflow users expect:

* inside your own MLflow run, ``energybench.exporters.mlflow.log_run(run)`` logs into the active run (the
  one ``mlflow.start_run()`` opened), next to your loss curves;
* from the shell, ``energybench export mlflow RUN`` opens a new MLflow run in ``--experiment`` (default
  ``energybench``) under the tracking URI in force (``--tracking-uri`` or ``$MLFLOW_TRACKING_URI``), or
  logs into ``--mlflow-run-id``. The URIs the manual names all work with the ``[mlflow]`` extra alone:
  ``sqlite:///mlflow.db`` (the extra adds SQLAlchemy and Alembic to mlflow-skinny), ``file:./mlruns`` and
  ``http://HOST:5000`` (``store_ready``).

Metric names are ``BENCHMARK/METHOD/FIGURE`` (MLflow groups them by the ``/``), e.g.
``lm/inference-generate/int8-dynamic/energy_per_item_j``; every round's energy is also logged with
``step = round`` so MLflow draws it as a curve. Units are in the names (``_j``, ``_g``, ``_s``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from energybench import __version__
from energybench.exporters import Exported, Exporter
from energybench.exporters.figures import bench_figures, slug
from energybench.record import Run

_NAME_CHARS = r"[^A-Za-z0-9_.\- /]+"  # what MLflow accepts in a metric or param name (plus ':' in newer versions)


def metric_prefix(bench_name: str, method: str) -> str:
    return f"{slug(bench_name, _NAME_CHARS)}/{slug(method, _NAME_CHARS)}"


def run_metrics(run: Run) -> dict[str, float]:
    """Every summary metric of ``run``: totals, then per benchmark (median per item, CI, totals, SCI)."""
    metrics: dict[str, float] = {"energy_j": run.energy_j}
    if run.co2e_g is not None:
        metrics["co2e_g"] = run.co2e_g
    for f in bench_figures(run):
        p = metric_prefix(f.bench.name, f.bench.method)
        metrics[f"{p}/energy_per_item_j"] = f.per_item_j
        if f.per_item_low_j is not None and f.per_item_high_j is not None:
            metrics[f"{p}/energy_per_item_ci_low_j"] = f.per_item_low_j
            metrics[f"{p}/energy_per_item_ci_high_j"] = f.per_item_high_j
        metrics[f"{p}/energy_j"] = f.energy_j
        metrics[f"{p}/duration_s"] = f.duration_s
        if f.co2e_g is not None:
            metrics[f"{p}/co2e_g"] = f.co2e_g
        if f.co2e_per_item_g is not None:
            metrics[f"{p}/co2e_per_item_g"] = f.co2e_per_item_g
        if f.sci is not None:
            metrics[f"{p}/sci_operational_g_per_item"] = f.sci.operational_per_item_g
            if f.sci.embodied_per_item_g is not None:
                metrics[f"{p}/sci_embodied_g_per_item"] = f.sci.embodied_per_item_g
            metrics[f"{p}/sci_g_per_item"] = f.sci.sci_g
    return metrics


def run_params(run: Run) -> dict[str, str]:
    """Settings a reader filters runs by: where the joules came from and how they were priced."""
    params: dict[str, Any] = {"energybench.version": __version__, "energybench.run_id": run.label,
                              "energybench.kind": run.kind, "energybench.created": run.created,
                              "machine.cpu_model": run.machine.cpu_model, "machine.cpu_count": run.machine.cpu_count,
                              "machine.gpus": ", ".join(str(g.get("name", "?")) for g in run.machine.gpus) or None}
    if run.carbon is not None:
        c = run.carbon
        params.update({"carbon.region": c.region, "carbon.intensity_g_per_kwh": c.intensity_g_per_kwh,
                       "carbon.factor_kind": c.factor_kind, "carbon.pue": c.pue, "carbon.source": c.source[:500]})
    for d in run.embodied:
        params[f"sci.embodied.{slug(d.name, _NAME_CHARS)}"] = (f"{d.kgco2e:g} kgCO2e, {d.lifetime_years:g} y, "
                                                               f"share {d.share:g}")
    for b in run.benchmarks:
        params[f"{metric_prefix(b.name, b.method)}/source"] = b.source
    return {k: str(v) for k, v in params.items() if v is not None}


def _report_html(run: Run) -> str | None:
    """The HTML report of this run alone, or ``None`` when the run cannot make one (no measured round)."""
    from energybench.errors import EnergybenchError
    from energybench.render.report_html import render_html
    from energybench.report import build_report

    try:
        return render_html(build_report([run]))
    except EnergybenchError:
        return None


def log_run(run: Run, *, html: bool = True, client: Any = None, mlflow_run_id: str | None = None) -> str:
    """Log ``run`` into an MLflow run and return that run's id.

    Without ``mlflow_run_id`` it logs into the active run (``mlflow.start_run()``), which must exist: that is
    the "inside your own MLflow run" case. Metrics, params, tags ``energybench.*``, per-round energy as a
    curve, the run file and (``html``) the HTML report as artifacts under ``energybench/``.
    """
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from energybench.errors import ConfigError

    if mlflow_run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ConfigError("no active MLflow run: call log_run inside `with mlflow.start_run():`, or pass "
                              "mlflow_run_id=")
        mlflow_run_id = active.info.run_id
    client = client or MlflowClient()
    stamp = int(1000 * time.time())
    metrics = [Metric(k, float(v), stamp, 0) for k, v in run_metrics(run).items()]
    for b in run.benchmarks:  # every round as a curve: step = round number
        key = f"{metric_prefix(b.name, b.method)}/round_energy_j"
        metrics += [Metric(key, float(r.energy_j), stamp, int(r.index)) for r in b.rounds if r.energy_j == r.energy_j]
    params = [Param(k, v) for k, v in run_params(run).items()]
    tags = [RunTag("energybench.run_id", run.label), RunTag("energybench.source",
                                                            ", ".join(sorted({b.source for b in run.benchmarks})))]
    for i in range(0, len(metrics), 1000):  # MLflow's batch limit
        client.log_batch(mlflow_run_id, metrics=metrics[i:i + 1000])
    for i in range(0, len(params), 100):
        client.log_batch(mlflow_run_id, params=params[i:i + 100])
    client.log_batch(mlflow_run_id, tags=tags)
    with tempfile.TemporaryDirectory() as tmp:
        run_file = Path(tmp) / f"{run.label}.json"
        run_file.write_text(run.to_json(), encoding="utf-8")
        client.log_artifact(mlflow_run_id, str(run_file), artifact_path="energybench")
        page = _report_html(run) if html else None
        if page is not None:
            report = Path(tmp) / "energybench_report.html"
            report.write_text(page, encoding="utf-8")
            client.log_artifact(mlflow_run_id, str(report), artifact_path="energybench")
    return mlflow_run_id


#: URI schemes of MLflow's database store (SQLAlchemy dialects, with or without a driver: ``mysql+pymysql``).
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def store_ready(uri: str) -> None:
    """Make the tracking store ``uri`` names usable from this process, or say in one line what it needs.

    A database URI (``sqlite:///mlflow.db``, MLflow 3's default) needs SQLAlchemy and Alembic, which
    ``mlflow-skinny`` does not bring (the ``[mlflow]`` extra adds them); without them MLflow's own message is
    "Model registry functionality is unavailable", which names neither. A ``file:`` store the user names
    is used as asked: MLflow 3 refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` opts in, so this process opts in
    (a value the user set is left alone)."""
    import importlib.util
    from urllib.parse import urlparse

    from energybench.errors import ConfigError

    scheme = urlparse(uri).scheme.split("+", 1)[0].lower()
    if scheme in DATABASE_SCHEMES:
        missing = [m for m in ("sqlalchemy", "alembic") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"the MLflow tracking URI {uri} is a database store, which needs "
                              f"{' and '.join(missing)} (mlflow-skinny has neither): pip install -e '.[mlflow]' "
                              "(or pip install sqlalchemy alembic), or give --tracking-uri file:./mlruns or "
                              "http://HOST:5000")
    elif scheme in ("", "file"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


class MlflowExporter(Exporter):
    name = "mlflow"
    description = "MLflow run: metrics (energy, CO2e, SCI per benchmark), params, the HTML report as an artifact"
    requires = "mlflow"
    extra = "mlflow"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tracking-uri", metavar="URI",
                            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's default)")
        parser.add_argument("--experiment", default="energybench", metavar="NAME",
                            help="experiment for a new MLflow run (default energybench)")
        parser.add_argument("--mlflow-run-id", metavar="ID", help="log into this existing MLflow run instead")
        parser.add_argument("--no-html", action="store_true", help="do not attach the HTML report")

    def export(self, run: Run, args: argparse.Namespace) -> Exported:
        from mlflow.exceptions import MlflowException

        from energybench.errors import ConfigError

        if args.output:
            raise ConfigError("the mlflow exporter logs to a tracking store, not a file: drop --output and give "
                              "--tracking-uri (e.g. sqlite:///mlflow.db) or set $MLFLOW_TRACKING_URI")
        try:
            return self._export(run, args)
        except MlflowException as exc:  # a bad URI, a refused store, an unknown run id: one line, not a traceback
            first = (str(exc.message).strip().splitlines() or ["error"])[0]
            raise ConfigError(f"MLflow refused the export: {first}") from None

    def _export(self, run: Run, args: argparse.Namespace) -> Exported:
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        store_ready(uri or mlflow.get_tracking_uri())
        client = MlflowClient(tracking_uri=uri)
        target = args.mlflow_run_id
        if target is None:
            exp = client.get_experiment_by_name(args.experiment)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(args.experiment)
            target = client.create_run(exp_id, run_name=run.label,
                                       tags={"mlflow.source.name": "energybench export"}).info.run_id
        log_run(run, html=not args.no_html, client=client, mlflow_run_id=target)
        if args.mlflow_run_id is None:
            client.set_terminated(target)
        where = uri or mlflow.get_tracking_uri()
        return Exported(messages=(f"logged {run.label} to MLflow run {target} ({where})",))
