"""Hardware as a dimension: device planning on this machine's real torch, the record's device field, verdicts
per device, and a real ``energybench run --device cpu,cuda`` with its per-layer pass."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import energybench as eb
from energybench.errors import ConfigError
from energybench.record import Benchmark, Round, Run
from energybench.render.report_html import render_html
from energybench.render.run_table import format_table
from energybench.report import build_report, run_view
from energybench.run.devices import parse_devices, plan_devices
from energybench.verdicts.baseline import baseline_of, vs_baseline
from energybench.verdicts.devices import device_comparisons

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "context": 16, "batch": 4, "train_steps": 20,
    "target_loss": 5.0, "max_target_steps": 20, "steps_per_trial": 1, "gen_batch": 2, "gen_tokens": 2,
    "score_batches": 1, "val_batches": 2, "corpus_bytes": 20_000, "distill_steps": 5,
}
NO_CUDA = not torch.cuda.is_available()


def test_device_names_are_checked_and_kept_in_order() -> None:
    assert parse_devices(" cpu, CUDA ,cpu") == ["cpu", "cuda"]
    for text, words in (("gpu", "unknown device 'gpu'"), (" , ", "at least one device")):
        with pytest.raises(ConfigError) as err:
            parse_devices(text)
        assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not NO_CUDA, reason="a GPU is present here")
def test_a_missing_device_is_a_reason_not_a_silent_drop() -> None:
    plan = plan_devices("cpu,cuda,tpu")
    assert plan.available == ("cpu",)
    assert "no CUDA GPU" in plan.missing["cuda"] and "torch_xla" in plan.missing["tpu"]
    assert plan.notes()[0].startswith("cuda: not run: ")
    with pytest.raises(ConfigError, match=r"no requested device can run here \(cuda: no CUDA GPU.*--device cpu"):
        plan_devices("cuda")


def _bench(method: str, device: str | None, per_item: float, name: str = "m/infer") -> Benchmark:
    rounds = tuple(Round(index=i, energy_j=per_item * 10 * (1 + 0.01 * i), duration_s=1.0, items=10,
                         source="measured") for i in range(4))
    return Benchmark(name=name, method=method, method_name=method, phase="inference", item_unit="item",
                     rounds=rounds, device=device)


def test_keys_and_verdicts_are_per_device() -> None:
    cpu_base, cpu_q = _bench("baseline", "cpu", 1.0), _bench("int8", "cpu", 0.5)
    gpu_base, gpu_q = _bench("baseline", "cuda", 0.2), _bench("int8", "cuda", 0.3)
    run = Run(name="r", created="", benchmarks=(cpu_base, cpu_q, gpu_base, gpu_q))
    assert [b.key for b in run.benchmarks] == ["m/infer", "m/infer [int8]", "m/infer@cuda", "m/infer [int8]@cuda"]
    assert _bench("baseline", None, 1.0).key == "m/infer"  # files from before devices were recorded
    assert baseline_of(run, gpu_q) is gpu_base and baseline_of(run, cpu_q) is cpu_base
    assert vs_baseline(run, gpu_q).ratio == pytest.approx(1.5)  # against the GPU baseline, not the CPU one
    assert vs_baseline(run, cpu_q).ratio == pytest.approx(0.5)
    across = {(c.method, c.device): c for c in device_comparisons(run)}
    gpu = across[("baseline", "cuda")]
    assert gpu.reference == "cpu" and gpu.vs.ratio == pytest.approx(0.2) and gpu.vs.outcome == "saves"
    table = format_table(run_view(run))
    assert "m/infer@cuda" in table and "hardware: m/infer [baseline]: cuda" in table
    report = build_report([run])
    groups = {bench for (_, bench, _), _ in report.groups()}
    assert groups == {"m/infer", "m/infer@cuda"}  # each device's methods against its own baseline
    assert {(c.method, c.device) for _, c in report.hardware} == {("baseline", "cuda"), ("int8", "cuda")}
    page = render_html(report)
    assert "<h2>Hardware</h2>" in page and "cuda: 203 mJ/item" in page and "saves 80%" in page
    saved = Run.from_json(run.to_json())
    assert [b.device for b in saved.benchmarks] == ["cpu", "cpu", "cuda", "cuda"]


def test_schema1_files_still_load_without_devices() -> None:
    for path in sorted((ROOT / "tests" / "support" / "data" / "schema1").glob("*.json")):
        run = eb.load_run(path)
        assert all(b.device is None and b.layers is None for b in run.benchmarks)
        assert "device" not in json.dumps([b.to_dict() for b in run.benchmarks])


def test_run_on_cpu_and_cuda_notes_the_missing_device_and_profiles_layers(tmp_path: Path) -> None:
    bench = tmp_path / "b"
    bench.mkdir()
    (bench / "suite.py").write_text(
        "from energybench import Suite\n"
        f"SUITES = [Suite('lm', methods=['int8-dynamic', 'layer-drop-0.5'], options={{'lm': {TINY!r}}})]\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-m", "energybench", "run", str(bench), "--trials", "2", "--idle", "0", "--device",
         "cpu,cuda", "--results", str(tmp_path / "res"), "--cache-dir", str(tmp_path / "c"), "--threads", "1"],
        capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    run = eb.load_run(next((tmp_path / "res").glob("*.json")))
    if NO_CUDA:
        assert any(n.startswith("cuda: not run: no CUDA GPU") for n in run.notes)
        assert "note: cuda: not run: no CUDA GPU" in res.stdout
        assert {b.device for b in run.benchmarks} == {"cpu"}
        assert run.environment.settings.devices == ("cpu",)
    assert "Traceback" not in res.stderr and "USDT" not in res.stderr  # the profiler's own log lines stay quiet
    by_key = run.by_key()
    assert "lm/inference-generate [int8-dynamic]" in by_key  # CPU keys did not change
    for b in run.benchmarks:
        if b.workload == "train-to-target" or not b.ok:
            # train-to-target trains a fresh model (the benchmarked one's layers never run); a cell that did not
            # apply (int8 on a training step) has no trials to profile
            assert b.layers is None, b.key
            continue
        assert b.layers is not None, b.key
        assert math.isclose(b.layers.parts_j, b.layers.energy_j, rel_tol=1e-9), b.key
        assert len(b.rounds) == 2  # the profiled pass is not a trial
        assert any(x.name.startswith("encoder.layers.0") for x in b.layers.layers)
    layers = eb.load_layers(tmp_path / "res")
    sums = layers.groupby(["benchmark", "method"]).agg(parts=("energy_j", "sum"), total=("window_energy_j", "first"))
    assert len(sums) == len([b for b in run.benchmarks if b.layers is not None])
    assert ((sums["parts"] - sums["total"]).abs() <= 1e-9 * sums["total"].abs()).all()
    dropped = layers[(layers.method == "layer-drop-0.5") & (layers.benchmark == "lm/inference-score")]
    assert not dropped.layer.str.startswith("encoder.layers.1").any()  # one of two layers kept
    html = tmp_path / "r.html"
    rep = subprocess.run([sys.executable, "-m", "energybench", "report", str(tmp_path / "res"), "--html", str(html)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert rep.returncode == 0, rep.stderr
    page = html.read_text(encoding="utf-8")
    assert "<h2>Energy by layer</h2>" in page and "layer-drop-0.5" in page and 'class="num gone"' in page
