"""A Slurm job's energy pieces against a fake job: SLURM_* variables, job cgroups in a temp dir (v1 and v2) and
a fake ``sacct`` first on PATH; then ``energybench measure`` inside that fake job, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from slurm_fakes import JOB_ID, NO_VAL64, cgroup_v1_job, cgroup_v2_job, fake_sacct, slurm_env

from energybench.samplers import cpu_model
from energybench.samplers.cpu_time import cpu_share, machine_busy_reader, parse_cpu_list
from energybench.samplers.slurm import SacctEnergy, parse_sacct, sacct_energy, sacct_energy_j, sacct_window, slurm_job

CLI = [sys.executable, "-m", "energybench"]


# ------------------------------------------------------------------------------------------ the job
def test_outside_slurm_there_is_no_job() -> None:
    assert slurm_job({}) is None


def test_job_and_step_from_the_environment_and_cgroup_v2(tmp_path: Path) -> None:
    proc_self, root, job_dir = cgroup_v2_job(tmp_path, cpus="2-3")
    job = slurm_job(slurm_env(SLURM_ARRAY_JOB_ID="4200", SLURM_ARRAY_TASK_ID="42"), proc_self=proc_self,
                    cgroup_root=root)
    assert job is not None
    assert (job.job_id, job.step_id, job.job_step, job.node, job.cluster) == (JOB_ID, "0", "4242.0", "node07", "tiny")
    assert (job.array_job_id, job.array_task_id, job.cpus_on_node) == ("4200", "42", 2)
    assert job.cgroup == str(job_dir) and job.cpus == (2, 3) and job.cpus_source.startswith("cgroup v2 cpuset")
    assert job.to_dict()["cpus"] == [2, 3] and job.to_dict()["job_step"] == "4242.0"


def test_cgroup_v1_layout(tmp_path: Path) -> None:
    proc_self, root, job_dir = cgroup_v1_job(tmp_path, cpus="1,3")
    job = slurm_job(slurm_env(), proc_self=proc_self, cgroup_root=root)
    assert job is not None and job.cpus == (1, 3) and job.cgroup == str(job_dir)
    assert job.cpus_source.startswith("cgroup v1 cpuset")


@pytest.mark.parametrize(("raw", "step"), [("4294967291", "batch"), ("4294967292", "extern"),
                                           ("4294967290", "interactive"), ("4294967294", "batch"), ("7", "7")])
def test_special_step_ids(raw: str, step: str) -> None:
    job = slurm_job(slurm_env(step_id=raw), proc_self=Path("/nonexistent"))
    assert job is not None and job.step_id == step and job.cpus_source == "no cpuset found"


def test_a_batch_script_without_a_step_reads_the_job(tmp_path: Path) -> None:
    job = slurm_job(slurm_env(step_id=None), proc_self=tmp_path)
    assert job is not None and job.step_id is None and job.job_step == JOB_ID


# ------------------------------------------------------------------------------------------ the job's CPUs
def test_the_cpu_figure_counts_only_the_jobs_cpus(tmp_path: Path) -> None:
    proc_self, root, job_dir = cgroup_v2_job(tmp_path, cpus="2-3")
    share = cpu_share(proc_self=proc_self, cgroup_root=root, affinity=range(16), logical_cpus=16)
    assert share.cpus == 2.0 and share.affinity == (2, 3)
    assert share.basis.startswith("cgroup v2 cpuset: CPUs 2-3, 2 of 16") and str(job_dir) in share.basis
    busy, basis = machine_busy_reader(share)
    assert basis == "busy time of CPUs 2-3 (/proc/stat)"  # not the other jobs' CPUs
    constants = cpu_model.resolve_constants({}, share=share)
    assert constants.n_cpu == 2.0 and constants.idle_power_w == pytest.approx(2 * constants.idle_w_per_cpu)


def test_the_cpu_model_reads_the_job_cgroup_from_its_options(tmp_path: Path) -> None:
    proc_self, root, _ = cgroup_v2_job(tmp_path, cpus="0")
    (sampler,) = cpu_model.create({"proc_self": str(proc_self), "cgroup_root": str(root)})
    details = {d.key: d for d in sampler.domains()}[cpu_model.CPU_KEY].details
    assert details["n_cpu"] == 1.0 and details["n_cpu_basis"].startswith(
        "cgroup v2 cpuset" if (psutil.cpu_count() or 1) > 1 else "all 1 logical")


def test_cpu_lists() -> None:
    assert parse_cpu_list("0-3,8,10-11\n") == (0, 1, 2, 3, 8, 10, 11)
    assert parse_cpu_list("") == () and parse_cpu_list("x-1") == ()


# ------------------------------------------------------------------------------------------ sacct
def job_here() -> object:
    job = slurm_job(slurm_env(), proc_self=Path("/nonexistent"))
    assert job is not None
    return job


def test_sacct_reports_consumed_energy_of_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = fake_sacct(tmp_path / "bin", energy=1000)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    got = sacct_energy(job_here())
    assert got.joules == 1000.0 and got.job_step == "4242.0" and got.state == "RUNNING"
    assert json.loads(state.read_text())["argv"] == ["-j", JOB_ID, "--noheader", "--parsable2",
                                                     "--format=JobIDRaw,ConsumedEnergyRaw,State"]
    assert sacct_energy_j(job_here()) == 1500.0  # the fake's figure grew by 500 J since


@pytest.mark.parametrize(("energy", "text"), [(None, "energy accounting is off (AcctGatherEnergyType"),
                                              (NO_VAL64, "no-value marker")])
def test_sacct_without_a_figure_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, energy, text) -> None:  # noqa: ANN001
    fake_sacct(tmp_path / "bin", energy=energy)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    got = sacct_energy(job_here())
    assert got.joules is None and text in got.reason and "\n" not in got.reason


def test_sacct_failing_or_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_sacct(tmp_path / "bin", exit_code=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    got = sacct_energy(job_here())
    assert got.joules is None and got.reason.startswith("`sacct` failed (exit 1): sacct: error: Problem talking")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert sacct_energy(job_here()).reason == "no `sacct` on PATH: Slurm's accounting tools are not installed here"


def test_parse_sacct_finds_the_entry_or_says_it_is_missing() -> None:
    assert parse_sacct("4242|77|COMPLETED\n4242.0|55|COMPLETED\n", "4242").joules == 77.0
    assert "no entry 4242.3" in parse_sacct("4242|77|COMPLETED\n", "4242.3").reason
    assert "not joules" in parse_sacct("4242.0|12K|RUNNING\n", "4242.0").reason


def test_sacct_window_is_the_growth_or_a_reason() -> None:
    a, b = SacctEnergy(1000.0, "", "1.0"), SacctEnergy(1600.0, "", "1.0", "RUNNING")
    assert sacct_window(a, b).joules == 600.0
    same = sacct_window(a, SacctEnergy(1000.0, "", "1.0"))
    assert same.joules is None and "AcctGatherNodeFreq" in same.reason
    assert sacct_window(SacctEnergy(None, "off", "1.0"), b).reason == "no sacct figure at the window's start (off)"
    assert "went down" in (sacct_window(b, a).reason)


# ------------------------------------------------------------------------------------------ energybench measure
def test_measure_inside_a_fake_job_shows_sacct_beside_its_own_figure(tmp_path: Path) -> None:
    fake_sacct(tmp_path / "bin", energy=1000, step_j=500)
    root = tmp_path / "cgroup"  # this process's own cgroup path is not in the fake tree: its root is the job's
    root.mkdir()
    (root / "cpuset.cpus.effective").write_text("0\n")
    out = tmp_path / "m.json"
    env = {**os.environ, **slurm_env(), "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "ENERGYBENCH_CGROUP_ROOT": str(root), "ENERGYBENCH_POWERCAP_ROOT": str(tmp_path / "no-rapl")}
    proc = subprocess.run([*CLI, "measure", "--json", str(out), "--", sys.executable, "-c", "pass"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    job_line = next(ln for ln in lines if ln.startswith("  slurm job"))
    sacct_line = next(ln for ln in lines if ln.startswith("  sacct"))
    assert "4242.0 on node07; CPUs 0 (cgroup v2 cpuset" in job_line
    assert sacct_line.startswith("  sacct          500 J beside energybench's ") and "machine-wide" in sacct_line
    payload = json.loads(out.read_text())
    assert payload["slurm"]["job"]["job_step"] == "4242.0" and payload["slurm"]["sacct_window"]["joules"] == 500.0
    cpu = next(d for d in payload["measurement"]["domains"] if d["key"] == cpu_model.CPU_KEY)
    if (psutil.cpu_count() or 1) > 1:
        assert cpu["details"]["n_cpu"] == 1.0 and "cgroup v2 cpuset: CPUs 0," in cpu["details"]["n_cpu_basis"]


def test_measure_outside_slurm_prints_no_slurm_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    out = tmp_path / "m.json"
    proc = subprocess.run([*CLI, "measure", "--json", str(out), "--", sys.executable, "-c", "pass"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "slurm" not in proc.stderr and json.loads(out.read_text())["slurm"] is None
