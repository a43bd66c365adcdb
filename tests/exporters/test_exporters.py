"""Every exporter round-trips through its ecosystem's own library: MLflow's client on a local file store,
prometheus_client's parser (and a real Pushgateway), huggingface_hub's ModelCard, codecarbon's FileOutput and
pandas, and the published schemas of github-action-benchmark's custom format and Bencher's BMF."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from energybench.carbon.sci import run_sci
from energybench.exporters import BUILTIN_EXPORTERS
from energybench.exporters.figures import bench_figures

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SRC = Path(__file__).parents[1] / "support" / "exporter_plugin_pkg"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "energybench", *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


def export(run, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = cli("export", name, run.label, "--results", str(Path(run.path).parent), *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


# ------------------------------------------------------------------------------------------------ registry
def test_builtins_are_registered_in_the_entry_point_group_like_plugins():
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["energybench.exporters"]
    assert eps == BUILTIN_EXPORTERS


def test_export_list_shows_every_builtin():
    rows = {r["name"]: r for r in json.loads(cli("export", "--list", "--json").stdout)}
    assert set(BUILTIN_EXPORTERS) <= set(rows)
    assert all(rows[n]["origin"] == "builtin" for n in BUILTIN_EXPORTERS)


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    build = tmp_path_factory.mktemp("exporter_plugin_src")
    shutil.copytree(PLUGIN_SRC, build / "src")
    target = tmp_path_factory.mktemp("exporter_plugin_target")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "--target", str(target), str(build / "src")], check=True, capture_output=True, text=True,
                   timeout=300)
    return str(target)


def test_a_pip_installed_exporter_plugin_is_listed_and_runs(plugin_path, real_run):
    env = {"PYTHONPATH": os.pathsep.join([plugin_path, os.environ.get("PYTHONPATH", "")])}
    rows = {r["name"]: r for r in json.loads(cli("export", "--list", "--json", env=env).stdout)}
    assert rows["toy-lines"]["available"] and rows["toy-lines"]["origin"] == "eb_toy_exporter:LinesExporter"
    assert not rows["toy-broken"]["available"] and "missing_module" in rows["toy-broken"]["reason"]
    assert rows["mlflow"]["origin"] == "builtin"
    out = export(real_run, "toy-lines", "--sep", "=", env=env).stdout.splitlines()
    assert out[0].startswith(real_run.benchmarks[0].key + "=")
    broken = cli("export", "toy-broken", real_run.label, env=env)
    assert broken.returncode == 2 and "cannot be used" in broken.stderr and "Traceback" not in broken.stderr


def test_unknown_exporter_and_missing_run_are_one_line(real_run, tmp_path):
    for args in (["export", "nope", "latest"], ["export", "bencher", "9999", "--results", str(tmp_path)], ["export"]):
        proc = cli(*args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ------------------------------------------------------------------------------------------------ MLflow
@pytest.fixture()
def file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")
    # MLflow 3 keeps the file store behind its own opt-out; the test exercises the file store on purpose
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


def test_mlflow_cli_logs_metrics_params_and_report(real_run, file_store):
    from mlflow.tracking import MlflowClient

    proc = export(real_run, "mlflow", "--tracking-uri", file_store, "--experiment", "energy",
                  env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    assert "logged" in proc.stderr
    client = MlflowClient(tracking_uri=file_store)
    (run,) = client.search_runs([client.get_experiment_by_name("energy").experiment_id])
    m, p = run.data.metrics, run.data.params
    for f in bench_figures(real_run):
        prefix = f"{f.bench.name}/{f.bench.method}"
        assert m[f"{prefix}/energy_per_item_j"] == pytest.approx(f.bench.energy_per_item.median)
        assert m[f"{prefix}/co2e_g"] == pytest.approx(f.co2e_g)
        assert m[f"{prefix}/sci_g_per_item"] == pytest.approx(f.sci.sci_g)
        history = client.get_metric_history(run.info.run_id, f"{prefix}/round_energy_j")
        assert sorted(h.step for h in history) == [r.index for r in f.bench.rounds]
    assert m["energy_j"] == pytest.approx(real_run.energy_j)
    assert p["carbon.region"] == "FRA" and p["carbon.factor_kind"] == "average"
    assert p["energybench.run_id"] == real_run.label and run.data.tags["energybench.run_id"] == real_run.label
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "energybench")}
    assert artifacts == {f"energybench/{real_run.label}.json", "energybench/energybench_report.html"}
    page = Path(client.download_artifacts(run.info.run_id, "energybench/energybench_report.html"))
    assert "Software Carbon Intensity" in page.read_text()
    assert run.info.status == "FINISHED"


def test_mlflow_inside_the_users_own_run(real_run, file_store):
    import mlflow
    from mlflow.tracking import MlflowClient

    from energybench.exporters.mlflow import log_run

    mlflow.set_tracking_uri(file_store)
    with mlflow.start_run() as active:
        mlflow.log_metric("loss", 0.5)
        assert log_run(real_run, html=False) == active.info.run_id
    data = MlflowClient(tracking_uri=file_store).get_run(active.info.run_id).data
    assert data.metrics["loss"] == 0.5 and data.metrics["energy_j"] == pytest.approx(real_run.energy_j)


def test_mlflow_without_an_active_run_says_how(real_run, file_store):
    import mlflow

    from energybench.errors import ConfigError
    from energybench.exporters.mlflow import log_run

    mlflow.set_tracking_uri(file_store)
    with pytest.raises(ConfigError, match="no active MLflow run"):
        log_run(real_run)


def test_mlflow_refusal_is_one_line(real_run, tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")
    proc = cli("export", "mlflow", real_run.label, "--results", str(Path(real_run.path).parent), "--mlflow-run-id",
               "0123456789abcdef", "--tracking-uri", (tmp_path / "m").as_uri(), env={"MLFLOW_ALLOW_FILE_STORE": "true"})
    assert proc.returncode == 2 and "MLflow refused" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------ Prometheus
def _families(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_textfile_parses_with_units_in_names(real_run, tmp_path):
    pytest.importorskip("prometheus_client", reason="pip install -e '.[prometheus]'")
    out = tmp_path / "energybench.prom"
    export(real_run, "prometheus", "--output", str(out))
    fams = _families(out.read_text())
    assert fams["energybench_energy_joules"].type == "counter"
    assert fams["energybench_co2e_grams"].type == "gauge"
    assert fams["energybench_energy_per_item_joules"].type == "gauge"
    energy = {(s.labels["benchmark"], s.labels["method"]): s for s in fams["energybench_energy_joules"].samples}
    assert all(s.name == "energybench_energy_joules_total" for s in energy.values())
    for f in bench_figures(real_run):
        s = energy[(f.bench.name, f.bench.method)]
        assert s.value == pytest.approx(f.energy_j) and s.labels["run"] == real_run.label
        assert s.labels["source"] == f.bench.source
    co2 = fams["energybench_co2e_grams"].samples
    assert {s.labels["factor_kind"] for s in co2} == {"average"} and {s.labels["region"] for s in co2} == {"FRA"}
    parts = {s.labels["part"] for s in fams["energybench_sci_grams"].samples}
    assert parts == {"operational", "embodied", "total"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def pushgateway(tmp_path):
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        if os.environ.get("ENERGYBENCH_REQUIRE_PUSHGATEWAY"):
            pytest.fail("no Pushgateway binary, but ENERGYBENCH_REQUIRE_PUSHGATEWAY is set (CI installs Debian's "
                        "prometheus-pushgateway)")
        pytest.skip("no Pushgateway binary: apt-get install prometheus-pushgateway (CI does)")
    port = _free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the Pushgateway did not become ready in 20 s")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_prometheus_push_reaches_a_real_pushgateway(real_run, pushgateway):
    pytest.importorskip("prometheus_client", reason="pip install -e '.[prometheus]'")
    proc = export(real_run, "prometheus", "--push", pushgateway, "--job", "energy-ci")
    assert "pushed" in proc.stderr
    with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=10) as r:
        fams = _families(r.read().decode())
    samples = [s for s in fams["energybench_energy_joules"].samples if s.labels.get("job") == "energy-ci"]
    assert {s.labels["run"] for s in samples} == {real_run.label}
    assert math.fsum(s.value for s in samples) == pytest.approx(real_run.energy_j)


def test_prometheus_push_to_nowhere_is_one_line(real_run):
    pytest.importorskip("prometheus_client", reason="pip install -e '.[prometheus]'")
    proc = cli("export", "prometheus", real_run.label, "--results", str(Path(real_run.path).parent), "--push",
               f"http://127.0.0.1:{_free_port()}")
    assert proc.returncode == 2 and "cannot push" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------ dashboards
# github-action-benchmark's BenchmarkResult (src/extract.ts): name, value, unit required; range, extra optional
GITHUB_BENCHMARK_SCHEMA = {
    "type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["name", "unit", "value"],
              "properties": {"name": {"type": "string"}, "unit": {"type": "string"}, "value": {"type": "number"},
                             "range": {"type": "string"}, "extra": {"type": "string"}},
              "additionalProperties": False},
}
# Bencher's published BMF schema (https://bencher.dev/bmf.json, draft-07)
BMF_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema", "type": "object",
    "patternProperties": {".+": {"type": "object", "patternProperties": {".+": {
        "type": "object", "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                                         "upper_value": {"type": "number"}}, "required": ["value"]}}}},
}


def test_github_action_benchmark_custom_smaller_is_better(real_run, tmp_path):
    jsonschema = pytest.importorskip("jsonschema", reason="pip install -e '.[dev]'")
    out = tmp_path / "energy.json"
    export(real_run, "github-benchmark", "--output", str(out))
    entries = json.loads(out.read_text())
    jsonschema.validate(entries, GITHUB_BENCHMARK_SCHEMA)
    by_name = {e["name"]: e for e in entries}
    assert len(by_name) == len(entries)  # a name is a chart: never two entries on one
    for f in bench_figures(real_run):
        e = by_name[f"{f.label} energy per {f.unit}"]
        assert e["value"] == pytest.approx(f.per_item_j) and e["unit"] == f"J/{f.unit}"
        assert by_name[f"{f.label} SCI per {f.unit}"]["value"] == pytest.approx(f.sci.sci_g)


def test_bencher_metric_format(real_run):
    jsonschema = pytest.importorskip("jsonschema", reason="pip install -e '.[dev]'")
    bmf = json.loads(export(real_run, "bencher").stdout)
    jsonschema.validate(bmf, BMF_SCHEMA)
    for f in bench_figures(real_run):
        measures = bmf[f.label]
        assert all(len(slug) <= 64 and slug.endswith(f"-{f.bench.source}") for slug in measures)
        e = measures[f"energy-per-item-joules-{f.bench.source}"]
        assert e["value"] == pytest.approx(f.per_item_j)
        assert e["lower_value"] <= e["value"] <= e["upper_value"]
        assert measures[f"co2e-per-item-grams-{f.bench.source}"]["value"] == pytest.approx(f.co2e_per_item_g)


# ------------------------------------------------------------------------------------------------ Hugging Face
def test_hf_model_card_block_reads_back_through_huggingface_hub(real_run, tmp_path):
    hub = pytest.importorskip("huggingface_hub", reason="pip install -e '.[hf]'")
    text = export(real_run, "hf-card", "--training-type", "fine-tuning").stdout
    card = hub.ModelCard(text + "\n# My model\n")
    block = card.data.co2_eq_emissions
    train = [r.co2e_g for b in real_run.benchmarks if b.phase == "train" for r in b.rounds]
    assert block["emissions"] == pytest.approx(math.fsum(train))
    assert block["training_type"] == "fine-tuning" and block["geographical_location"] == "France"
    assert "energybench" in block["source"] and "average" in block["source"]
    assert "logical CPUs" in block["hardware_used"]
    readme = tmp_path / "README.md"
    readme.write_text("---\nlicense: mit\ntags:\n- text-generation\n---\n\n# My model\n\nIt writes.\n")
    export(real_run, "hf-card", "--update", str(readme), "--phase", "all")
    updated = hub.ModelCard.load(readme)
    assert updated.data.license == "mit" and updated.data.tags == ["text-generation"]
    everything = math.fsum(r.co2e_g for _, r in real_run.rounds())
    assert updated.data.co2_eq_emissions["emissions"] == pytest.approx(everything)
    assert "It writes." in updated.text
    assert hub.metadata_load(readme)["co2_eq_emissions"]["emissions"] == pytest.approx(everything)


def test_hf_card_without_co2e_says_why(tmp_path):
    pytest.importorskip("huggingface_hub", reason="pip install -e '.[hf]'")
    from energybench.record import Benchmark, Round, Run
    from energybench.record.storage import save_run

    run = Run(name="nocarbon", created="2026-12-02T00:00:00+00:00", benchmarks=(
        Benchmark(name="t", phase="train", rounds=(Round(index=0, energy_j=1.0, duration_s=1.0),)),))
    save_run(run, tmp_path)
    proc = cli("export", "hf-card", "latest", "--results", str(tmp_path))
    assert proc.returncode == 2 and "has no CO2e" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------ CodeCarbon
def test_codecarbon_csv_has_codecarbons_columns_and_units(real_run, tmp_path):
    import pandas as pd
    from codecarbon.output_methods.emissions_data import EmissionsData
    from codecarbon.output_methods.file import FileOutput

    out = tmp_path / "emissions.csv"
    export(real_run, "codecarbon", "--output", str(out))
    df = pd.read_csv(out)
    fields = [f for f in EmissionsData.__dataclass_fields__]
    assert list(df.columns) == fields
    sci = run_sci(real_run)
    assert sci is not None
    for f in bench_figures(real_run):
        row = df[df.project_name == f.label].iloc[0]
        assert row.emissions == pytest.approx(f.co2e_g / 1000)  # kg
        assert row.energy_consumed == pytest.approx(f.energy_j / 3.6e6)  # kWh (PUE 1)
        assert row.duration == pytest.approx(f.duration_s)
        assert row.emissions_rate == pytest.approx(f.co2e_g / 1000 / f.duration_s)  # kg/s
    assert set(df.country_iso_code) == {"FRA"} and set(df.pue) == {1.0}

    # codecarbon's own writer accepts the file: same headers, so it appends its row instead of backing ours up
    ours = len(df)
    output = FileOutput("emissions.csv", str(tmp_path), on_csv_write="append")
    theirs = EmissionsData(
        timestamp="2026-12-02T00:00:00", project_name="codecarbon", run_id="r", experiment_id="e", duration=1.0,
        emissions=1e-6, emissions_rate=1e-6, cpu_power=10.0, gpu_power=0.0, ram_power=1.0, cpu_energy=1e-5,
        gpu_energy=0.0, ram_energy=1e-6, energy_consumed=1.1e-5, water_consumed=0.0, country_name="France",
        country_iso_code="FRA", region="", cloud_provider="", cloud_region="", os="Linux", python_version="3.11",
        codecarbon_version="3.3.2", cpu_count=2, cpu_model="cpu", gpu_count=0, gpu_model="", longitude=0.0,
        latitude=0.0, ram_total_size=8.0, tracking_mode="machine")
    assert output.has_valid_headers(theirs)
    output.out(theirs, None)
    both = pd.read_csv(out)
    assert len(both) == ours + 1 and not list(tmp_path.glob("emissions.csv.bak*")) and not list(
        tmp_path.glob("*backup*"))
    # exporting again replaces energybench's rows (same stable run ids) and keeps codecarbon's
    export(real_run, "codecarbon", "--output", str(out))
    again = pd.read_csv(out)
    assert len(again) == ours + 1 and "codecarbon" in set(again.project_name)
