"""A fake Slurm job for tests: ``SLURM_*`` variables, a job cgroup tree (v1 or v2 layout) and a fake ``sacct``.

No Slurm runs in CI, so a test lays what a job's process would see: ``/proc/self/cgroup`` naming the job's
cgroup, the cgroup tree with the job's cpuset (``task/cgroup`` with ``ConstrainCores``), and an executable
``sacct`` first on ``PATH`` that answers ``--parsable2`` rows from a state file. Each call of the fake sacct
adds ``step_j`` to the step's ``ConsumedEnergyRaw`` (as Slurm's figure grows between two readings), unless
``energy`` is ``None`` (accounting off: an empty field) or a fixed marker such as Slurm's NO_VAL64.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

JOB_ID = "4242"
STEP_ID = "0"
NO_VAL64 = 0xFFFFFFFFFFFFFFFE


def slurm_env(job_id: str = JOB_ID, step_id: str | None = STEP_ID, **extra: str) -> dict[str, str]:
    env = {"SLURM_JOB_ID": job_id, "SLURM_JOB_NAME": "train", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
           "SLURM_NODEID": "0", "SLURMD_NODENAME": "node07", "SLURM_CLUSTER_NAME": "tiny",
           "SLURM_CPUS_ON_NODE": "2", **extra}
    if step_id is not None:
        env["SLURM_STEP_ID"] = step_id
    return env


def cgroup_v2_job(tmp: Path, cpus: str = "2-3", job_id: str = JOB_ID) -> tuple[Path, Path, Path]:
    """(proc_self, cgroup root, job dir) of a cgroup v2 Slurm job: slurmstepd.scope/job_N/step_0/user/task_0."""
    root = tmp / "cgroup"
    job = root / "system.slice" / "slurmstepd.scope" / f"job_{job_id}"
    task = job / "step_0" / "user" / "task_0"
    task.mkdir(parents=True)
    (root / "cpuset.cpus.effective").write_text("0-15\n")
    (job / "cpuset.cpus").write_text(f"{cpus}\n")
    for directory in (job, job / "step_0", job / "step_0" / "user", task):
        (directory / "cpuset.cpus.effective").write_text(f"{cpus}\n")
    (job / "cpu.stat").write_text("usage_usec 1500000\n")
    proc_self = tmp / "proc_self"
    proc_self.mkdir()
    (proc_self / "cgroup").write_text(f"0::/system.slice/slurmstepd.scope/job_{job_id}/step_0/user/task_0\n")
    return proc_self, root, job


def cgroup_v1_job(tmp: Path, cpus: str = "1,3", job_id: str = JOB_ID) -> tuple[Path, Path, Path]:
    """(proc_self, cgroup root, job dir) of a cgroup v1 Slurm job: cpuset/slurm/uid_1000/job_N/step_0/task_0."""
    root = tmp / "cgroup"
    job = root / "cpuset" / "slurm" / "uid_1000" / f"job_{job_id}"
    task = job / "step_0" / "task_0"
    task.mkdir(parents=True)
    (root / "cpuset" / "cpuset.cpus").write_text("0-15\n")
    for directory in (job, job / "step_0", task):
        (directory / "cpuset.cpus").write_text(f"{cpus}\n")
    proc_self = tmp / "proc_self"
    proc_self.mkdir()
    (proc_self / "cgroup").write_text(
        f"5:memory:/slurm/uid_1000/job_{job_id}/step_0/task_0\n4:cpuset:/slurm/uid_1000/job_{job_id}/step_0/task_0\n"
    )
    return proc_self, root, job


def fake_sacct(bin_dir: Path, *, energy: int | None = 1000, step_j: int = 500, job_id: str = JOB_ID,
               step_id: str = STEP_ID, exit_code: int = 0) -> Path:
    """Write an executable ``sacct`` into ``bin_dir`` (put it first on PATH); returns its state file."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state = bin_dir / "sacct_state.json"
    state.write_text(json.dumps({"energy": energy, "calls": 0}))
    script = bin_dir / "sacct"
    script.write_text(f"""#!{sys.executable}
import json, sys
state_path = {str(state)!r}
state = json.load(open(state_path))
state["calls"] += 1
state["argv"] = sys.argv[1:]
energy = state["energy"]
if {exit_code}:
    print("sacct: error: Problem talking to the database: Connection refused", file=sys.stderr)
    sys.exit({exit_code})
field = "" if energy is None else str(energy)
print("{job_id}||RUNNING")
print("{job_id}.extern|0|RUNNING")
print("{job_id}.{step_id}|" + field + "|RUNNING")
if energy is not None and energy < {NO_VAL64}:
    state["energy"] = energy + {step_j}
json.dump(state, open(state_path, "w"))
""")
    script.chmod(0o755)
    return state
