"""A Slurm job's place and Slurm's own energy figure: which job and step this is, its CPUs, and ``sacct``.

Inside a job, the machine energybench sees is shared: other jobs may run on the same node. Three pieces make a
job's figures honest, and this module builds them for the run record (the lead wires them in):

* ``slurm_job()``: the job and step from the ``SLURM_*`` variables, and the job's cgroup with its CPUs
  (``task/cgroup`` with ``ConstrainCores`` gives each job a cpuset). The CPU figure is scoped to those CPUs by
  ``cpu_time.cpu_share``, which reads the same cpuset, so the CPU model's floor and busy time are the job's.
* ``sacct_energy(job)``: Slurm's own ``ConsumedEnergyRaw`` (joules, from its ``acct_gather_energy`` plugin:
  RAPL, IPMI, Redfish, GPU counters, whichever the site configured) as a second opinion, or why there is none.
  Slurm documents it as the whole node's energy, the job's only on an exclusive allocation.
* ``sacct_window(before, after)``: the second opinion over one window, from readings at its edges. Slurm updates
  a running step's figure only every ``AcctGatherNodeFreq`` seconds (or when it ends), so an unchanged figure
  says so instead of passing for 0 J.

``sacct`` is run as a program; tests put a fake one first on ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from energybench.samplers.cpu_time import CGROUP_ROOT, CGROUP_ROOT_ENV, PROC, cgroup_cpuset

SACCT = "sacct"
SACCT_TIMEOUT_S = 10.0
FIELDS = "JobIDRaw,ConsumedEnergyRaw,State"
#: Slurm's "no value" for a 64-bit figure (NO_VAL64, INFINITE64): not joules.
_NO_VALUE = {0xFFFFFFFFFFFFFFFE, 0xFFFFFFFFFFFFFFFF}
#: Special step ids as SLURM_STEP_ID shows them (slurm.h of 20.11+, then the older values).
_SPECIAL_STEPS = {
    0xFFFFFFFB: "batch", 0xFFFFFFFC: "extern", 0xFFFFFFFA: "interactive", 0xFFFFFFFD: "pending",
    0xFFFFFFFE: "batch", 0xFFFFFFFF: "extern",
}
_JOB_DIR = re.compile(r"^job_(\d+)$")


@dataclass(frozen=True)
class SlurmJob:
    """Where this process runs in Slurm: job, step, node, and the job's cgroup CPUs."""

    job_id: str
    step_id: str | None = None
    array_job_id: str | None = None
    array_task_id: str | None = None
    node: str | None = None
    cluster: str | None = None
    cpus_on_node: int | None = None
    cgroup: str | None = None
    cpus: tuple[int, ...] = ()
    cpus_source: str = ""

    @property
    def job_step(self) -> str:
        """``123.0``, ``123.batch``, or ``123`` outside a step: the entry sacct names."""
        return f"{self.job_id}.{self.step_id}" if self.step_id is not None else self.job_id

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cpus"] = list(self.cpus)
        out["job_step"] = self.job_step
        return out


def _step(env: Mapping[str, str]) -> str | None:
    raw = (env.get("SLURM_STEP_ID") or env.get("SLURM_STEPID") or "").strip()
    if not raw:
        return None
    return _SPECIAL_STEPS.get(int(raw), raw) if raw.isdigit() else raw


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).split("(")[0]) if value else None
    except ValueError:
        return None


def job_cgroup(job_id: str, proc_self: Path = PROC / "self", cgroup_root: Path = CGROUP_ROOT) -> str | None:
    """The directory of this process's ``job_<id>`` cgroup: the v2 one, else the v1 cpuset one (whose CPUs are
    the job's), else any v1 hierarchy that names the job; ``None`` when no line of /proc/self/cgroup does."""
    try:
        lines = (proc_self / "cgroup").read_text().splitlines()
    except OSError:
        return None
    found: list[tuple[int, Path]] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        segments = [s for s in path.split("/") if s]
        depth = next((i for i, seg in enumerate(segments) if (m := _JOB_DIR.match(seg)) and m.group(1) == job_id),
                     None)
        if depth is None:
            continue
        relative = Path(*segments[: depth + 1])
        if hierarchy == "0" and not controllers:
            found.append((0, cgroup_root / relative))
        else:
            names = controllers.split(",")
            found.append((1 if "cpuset" in names else 2, cgroup_root / names[0] / relative))
    return str(min(found)[1]) if found else None


def slurm_job(
    environ: Mapping[str, str] | None = None, *, proc_self: Path = PROC / "self", cgroup_root: Path | None = None
) -> SlurmJob | None:
    """This process's Slurm job and step, or ``None`` outside Slurm (no ``SLURM_JOB_ID``)."""
    env = os.environ if environ is None else environ
    job_id = (env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID") or "").strip()
    if not job_id:
        return None
    root = cgroup_root or Path(env.get(CGROUP_ROOT_ENV) or CGROUP_ROOT)
    cpus, where, version = cgroup_cpuset(proc_self, root)
    return SlurmJob(
        job_id=job_id,
        step_id=_step(env),
        array_job_id=env.get("SLURM_ARRAY_JOB_ID"),
        array_task_id=env.get("SLURM_ARRAY_TASK_ID"),
        node=env.get("SLURMD_NODENAME"),
        cluster=env.get("SLURM_CLUSTER_NAME"),
        cpus_on_node=_int(env.get("SLURM_CPUS_ON_NODE")),
        cgroup=job_cgroup(job_id, proc_self, root),
        cpus=cpus or (),
        cpus_source=f"cgroup v{version} cpuset ({where})" if cpus else "no cpuset found",
    )


@dataclass(frozen=True)
class SacctEnergy:
    """Slurm's energy figure for a job or step in joules, or ``None`` with the reason there is none."""

    joules: float | None
    reason: str
    job_step: str
    state: str | None = None
    source: str = "sacct ConsumedEnergyRaw (Slurm acct_gather_energy)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def sacct_energy(job: SlurmJob, *, sacct: str = SACCT, runner: Runner = subprocess.run,
                 timeout_s: float = SACCT_TIMEOUT_S) -> SacctEnergy:
    """``ConsumedEnergyRaw`` of this job's step (or of the job, outside a step), as ``sacct`` reports it now."""
    where = job.job_step
    program = shutil.which(sacct) if os.sep not in sacct else sacct
    if program is None:
        return SacctEnergy(None, f"no `{sacct}` on PATH: Slurm's accounting tools are not installed here", where)
    cmd = [program, "-j", job.job_id, "--noheader", "--parsable2", f"--format={FIELDS}"]
    try:
        out = runner(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return SacctEnergy(None, f"`{sacct}` could not run ({exc})", where)
    if out.returncode != 0:
        said = " ".join((out.stderr or out.stdout or "").split())[:200]
        return SacctEnergy(None, f"`{sacct}` failed (exit {out.returncode}): {said or 'no message'}", where)
    return parse_sacct(out.stdout, where)


def parse_sacct(text: str, where: str) -> SacctEnergy:
    """The row of ``where`` in ``sacct --parsable2`` output (``JobIDRaw|ConsumedEnergyRaw|State``)."""
    rows = {parts[0]: parts for parts in (line.split("|") for line in text.splitlines()) if len(parts) >= 2}
    row = rows.get(where)
    if row is None:
        return SacctEnergy(None, f"sacct has no entry {where} (accounting storage off, or the step not yet "
                                 "recorded)", where)
    raw, state = row[1].strip(), (row[2].strip() if len(row) > 2 else None)
    if not raw:
        return SacctEnergy(None, f"sacct reports no ConsumedEnergyRaw for {where}: energy accounting is off "
                                 "(AcctGatherEnergyType in slurm.conf)", where, state)
    try:
        value = int(raw)
    except ValueError:
        return SacctEnergy(None, f"sacct's ConsumedEnergyRaw for {where} is {raw!r}, not joules", where, state)
    if value in _NO_VALUE:
        return SacctEnergy(None, f"sacct has no energy for {where} yet (Slurm's no-value marker): it is "
                                 "gathered every AcctGatherNodeFreq seconds or when the step ends", where, state)
    return SacctEnergy(float(value), f"ConsumedEnergyRaw of {where} ({state or 'state unknown'})", where, state)


def sacct_energy_j(job: SlurmJob, **kwargs: Any) -> float | None:
    """Just the joules of ``sacct_energy`` (``None`` when absent; ``sacct_energy`` says why)."""
    return sacct_energy(job, **kwargs).joules


def sacct_window(before: SacctEnergy, after: SacctEnergy) -> SacctEnergy:
    """Slurm's figure over one window: the growth of ``ConsumedEnergyRaw`` between readings at its edges."""
    where = after.job_step
    if after.joules is None:
        return SacctEnergy(None, after.reason, where, after.state)
    if before.joules is None:
        return SacctEnergy(None, f"no sacct figure at the window's start ({before.reason})", where, after.state)
    delta = after.joules - before.joules
    if delta < 0:
        return SacctEnergy(None, f"sacct's ConsumedEnergyRaw for {where} went down ({before.joules:.0f} -> "
                                 f"{after.joules:.0f} J): not a figure for this window", where, after.state)
    if delta == 0:
        return SacctEnergy(None, f"sacct's ConsumedEnergyRaw for {where} did not change over the window: Slurm "
                                 "updates a running step's energy only every AcctGatherNodeFreq seconds or when it "
                                 "ends", where, after.state)
    return SacctEnergy(delta, f"growth of ConsumedEnergyRaw of {where} over the window (the node's energy; the "
                              "job's only on an exclusive allocation)", where, after.state)
