"""``energybench run`` inside a fake Slurm job (SLURM_* variables, the job's cpuset in a temp cgroup tree, a fake
``sacct`` first on PATH): the run file records the job and step, the table's footer puts sacct's figure beside
energybench's own, and the CPU model counts only the job's CPUs. Outside a job nothing new is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from runner_subjects import TINY
from slurm_fakes import JOB_ID, fake_sacct, slurm_env

from energybench import units
from energybench.errors import ResultsError
from energybench.record import Benchmark, Environment, Round, Run, storage
from energybench.record.environment import SlurmJob
from energybench.render.run_table import footer
from energybench.report import run_view

CLI = [sys.executable, "-m", "energybench"]


def _suite(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "suite.py").write_text("from energybench import Suite\n"
                                        f"SUITES = [Suite('lm', methods=[], options={{'lm': {TINY!r}}})]\n")
    return directory


def _run(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Run]:
    results = tmp_path / "res"
    proc = subprocess.run([*CLI, "run", str(_suite(tmp_path / "b")), "--phase", "inference", "--trials", "2",
                           "--idle", "0", "--results", str(results), "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=600, env={**env, "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    return proc, storage.load_run(next(results.glob("*.json")))


def test_a_run_inside_a_job_records_it_and_shows_sacct_beside_its_own_figure(tmp_path: Path) -> None:
    fake_sacct(tmp_path / "bin", energy=1000, step_j=500)
    cgroup = tmp_path / "cgroup"  # this process's cgroup path is not in the fake tree: its root is the job's
    cgroup.mkdir()
    (cgroup / "cpuset.cpus.effective").write_text("0\n")
    env = {**os.environ, **slurm_env(), "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "ENERGYBENCH_CGROUP_ROOT": str(cgroup), "ENERGYBENCH_POWERCAP_ROOT": str(tmp_path / "no-rapl")}
    proc, run = _run(tmp_path, env)
    job = run.environment.slurm
    assert job is not None and (job.job_id, job.step_id, job.job_step, job.node) == (JOB_ID, "0", "4242.0", "node07")
    assert job.cpus == (0,) and job.cpus_source.startswith("cgroup v2 cpuset")
    assert job.sacct_j == 500.0 and "growth of ConsumedEnergyRaw of 4242.0" in job.sacct_reason
    assert job.extra["cluster"] == "tiny"  # the job's other keys are kept
    table = proc.stdout.replace("\n  ", " ")  # footer lines wrap at 100 columns
    assert "slurm job 4242.0 on node07; CPUs 0 (cgroup v2 cpuset" in table
    assert f"sacct: 500 J over the trials beside energybench's {units.joules(run.energy_j)} of them" in table
    cpu = next(s for s in run.machine.samplers if s["name"] == "cpu-model")["metadata"]
    if (psutil.cpu_count() or 1) > 1:  # the idle floor and busy time are the job's one CPU, not the host's
        assert cpu["n_cpu"] == 1.0 and "cgroup v2 cpuset: CPUs 0," in cpu["cpu_share"]["basis"]


def test_a_run_outside_slurm_writes_no_slurm_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    proc, run = _run(tmp_path, env)
    assert run.environment.slurm is None and "slurm" not in json.loads(Path(run.path or "").read_text())["environment"]
    assert "slurm job" not in proc.stdout and "sacct" not in proc.stdout


# ------------------------------------------------------------------------------------------ the record
def _job(**kw: Any) -> SlurmJob:
    job = {"job_id": JOB_ID, "step_id": "0", "node": "node07", "cluster": "tiny", "cgroup": None, "cpus": [2, 3],
           "cpus_source": "cgroup v2 cpuset (/sys/fs/cgroup/job_4242)", "job_step": "4242.0"}
    return SlurmJob.of(job, **kw)


def _run_with(slurm: SlurmJob | None) -> Run:
    rounds = tuple(Round(index=i, energy_j=2.0, duration_s=1.0, items=10, source="estimated") for i in range(3))
    return Run(name="r", created="2026-01-01T00:00:00+00:00", benchmarks=(Benchmark(name="lm/x", rounds=rounds),),
               environment=Environment(slurm=slurm))


def test_the_job_round_trips_and_keeps_what_it_does_not_name() -> None:
    run = _run_with(_job(sacct_j=12.0, sacct_reason="growth"))
    back = Run.from_json(run.to_json())
    assert back.environment.slurm == run.environment.slurm
    d = run.environment.to_dict()["slurm"]
    assert d["cpus"] == [2, 3] and d["cluster"] == "tiny" and "cgroup" not in d and "job_step" not in d
    assert "slurm" not in _run_with(None).environment.to_dict()


def test_a_malformed_job_names_its_field() -> None:
    d = _run_with(_job()).to_dict()
    d["environment"]["slurm"]["sacct_j"] = "lots"
    with pytest.raises(ResultsError, match=r"environment\.slurm\.sacct_j: expected a number"):
        Run.from_dict(d)


@pytest.mark.parametrize(("sacct_j", "reason", "shown"), [
    (500.0, "growth of ConsumedEnergyRaw", "sacct: 500 J over the trials beside energybench's 6 J of them "
                                           "(growth of ConsumedEnergyRaw)"),
    (None, "sacct reports no ConsumedEnergyRaw for 4242.0: energy accounting is off",
     "sacct: n/a over the trials beside energybench's 6 J of them (sacct reports no ConsumedEnergyRaw"),
])
def test_the_footer_says_the_job_and_sacct_or_why_not(sacct_j: float | None, reason: str, shown: str) -> None:
    lines = footer(run_view(_run_with(_job(sacct_j=sacct_j, sacct_reason=reason))))
    assert "slurm job 4242.0 on node07; CPUs 2-3 (cgroup v2 cpuset (/sys/fs/cgroup/job_4242))" in lines
    assert any(line.startswith(shown) for line in lines), lines
    assert not any(line.startswith(("slurm", "sacct")) for line in footer(run_view(_run_with(None))))
