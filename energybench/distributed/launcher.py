"""Who launched this process and where it runs: the launcher's environment, recorded with distributed results.

A distributed result is only reproducible if it says how it was started: how many ranks, which one this is,
on which host, under which job. Launchers say so through environment variables (``torchrun`` sets
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``/``TORCHELASTIC_RUN_ID``, Slurm sets ``SLURM_*``, Open MPI
``OMPI_COMM_WORLD_*``, MPICH/Intel MPI ``PMI_*``), so this module reads them and nothing else: no torch import,
no collective, safe to call from a results writer at any time.

``launcher_environment()`` is local to the calling process; the list of every rank's host is only known
after a window's aggregation and lives in ``Measurement.metadata["distributed"]["hosts"]``.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

HOST_ENV = "ENERGYBENCH_HOST"

# Recorded verbatim when present. Names only of launch/job bookkeeping: nothing here is a secret.
RECORDED_ENV = (
    # torchrun / torch.distributed env:// rendezvous
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "GROUP_WORLD_SIZE",
    "ROLE_NAME",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_RESTART_COUNT",
    "TORCHELASTIC_MAX_RESTARTS",
    "CUDA_VISIBLE_DEVICES",
    # Slurm
    "SLURM_JOB_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_ACCOUNT",
    "SLURM_CLUSTER_NAME",
    "SLURM_NNODES",
    "SLURM_NTASKS",
    "SLURM_NTASKS_PER_NODE",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NODEID",
    "SLURM_STEP_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_GPUS_ON_NODE",
    "SLURMD_NODENAME",
    # MPI launchers
    "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "PMI_SIZE",
    "PMI_RANK",
    "PMIX_RANK",
    "MPI_LOCALRANKID",
    # other batch systems
    "PBS_JOBID",
    "LSB_JOBID",
)

# Normalised fields: the first variable present wins.
_WORLD_SIZE = ("WORLD_SIZE", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_RANK = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
_LOCAL_RANK = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")
_NODE_RANK = ("GROUP_RANK", "SLURM_NODEID")
_JOB_ID = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "TORCHELASTIC_RUN_ID")


def launcher_kind(environ: Mapping[str, str] | None = None) -> str | None:
    """``torchrun``, ``slurm``, ``mpi``, ``env`` (plain ``WORLD_SIZE``/``RANK``), or ``None`` outside a launcher.

    torchrun inside a Slurm allocation is ``torchrun``: it is the process that started this one.
    """
    env = os.environ if environ is None else environ
    if "TORCHELASTIC_RUN_ID" in env:
        return "torchrun"
    if "SLURM_PROCID" in env and "SLURM_JOB_ID" in env:
        return "slurm"
    if "OMPI_COMM_WORLD_RANK" in env or "PMI_RANK" in env or "PMIX_RANK" in env:
        return "mpi"
    if "WORLD_SIZE" in env or "RANK" in env:
        return "env"
    return None


def host_name(options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The host this rank runs on, as reports label it (``host_id`` says which host it is).

    ``options["dist_host"]``, else ``$ENERGYBENCH_HOST``, else the machine's hostname. Devices are
    de-duplicated by ``host_id`` (the kernel's boot id), so containers on one machine are one host without
    any setting; the override names hosts and also groups ranks by that name (tests simulate several hosts on
    one machine with it).
    """
    env = os.environ if environ is None else environ
    options = options or {}
    name = str(options.get("dist_host") or env.get(HOST_ENV) or socket.gethostname()).strip()
    return name.replace("/", "_") or "localhost"  # "/" separates host, rank and domain in aggregated keys


BOOT_ID = "/proc/sys/kernel/random/boot_id"
MACHINE_ID = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def host_id(options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> str:
    """What the kernel says this host is, so ranks that share hardware are one host whatever their names.

    Containers on one machine each get a hostname (and often a machine id) of their own, yet read the same
    RAPL packages and the same machine-wide CPU figures: they share the kernel, whose ``boot_id`` is one
    random UUID per boot, the same in every container and different on every other machine or VM. So a host
    is ``boot:<boot_id>``; where that cannot be read, ``machine:<machine-id>``, then ``hostname:<name>``.
    ``ENERGYBENCH_HOST`` / ``dist_host`` (which also set the label) override it: ranks given the same name
    are one host, as before. ``boot_id_path`` / ``machine_id_paths`` options point elsewhere (tests).
    """
    env = os.environ if environ is None else environ
    options = options or {}
    named = options.get("dist_host") or env.get(HOST_ENV)
    if named:
        return f"name:{str(named).strip()}"
    boot = _first_line(options.get("boot_id_path") or BOOT_ID)
    if boot:
        return f"boot:{boot}"
    for path in options.get("machine_id_paths") or MACHINE_ID:
        machine = _first_line(path)
        if machine:
            return f"machine:{machine}"
    return f"hostname:{socket.gethostname()}"


def _first_line(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def launcher_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """This process's place in a distributed job, for a results file header.

    Normalised fields (``world_size``, ``rank``, ``local_rank``, ``node_rank``, ``job_id``, ``master_addr``,
    ``master_port``, ``launcher``, ``host``, ``pid``), the torch.distributed backend when a process group is
    initialised (torch is never imported for this), and ``env``: every recorded launcher variable that is set.
    Outside any launcher it still returns the host and ``launcher: None``, so results always say where they ran.
    """
    env = os.environ if environ is None else environ
    recorded = {name: env[name] for name in RECORDED_ENV if name in env}
    info: dict[str, Any] = {
        "launcher": launcher_kind(env),
        "host": host_name(environ=env),
        "host_id": host_id(environ=env),
        "pid": os.getpid(),
        "world_size": _first_int(env, _WORLD_SIZE),
        "rank": _first_int(env, _RANK),
        "local_rank": _first_int(env, _LOCAL_RANK),
        "node_rank": _first_int(env, _NODE_RANK),
        "job_id": next((env[n] for n in _JOB_ID if env.get(n)), None),
        "master_addr": env.get("MASTER_ADDR"),
        "master_port": _first_int(env, ("MASTER_PORT",)),
    }
    info.update(_torch_distributed_state())
    info["env"] = recorded
    return info


def _first_int(env: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                continue  # a launcher variable we cannot parse is recorded verbatim in "env" anyway
    return None


def initialized_dist() -> Any | None:
    """``torch.distributed`` when a process group is up, else ``None``; never imports torch (the one place
    that question is answered, so import-light modules can ask it)."""
    dist = sys.modules.get("torch.distributed")
    return dist if dist is not None and dist.is_available() and dist.is_initialized() else None


def is_nonzero_rank() -> bool:
    """True on ranks other than 0 of an initialised job: they hold the same aggregated figures as rank 0,
    which alone prints and saves them."""
    dist = initialized_dist()
    return dist is not None and dist.get_rank() != 0


def _torch_distributed_state() -> dict[str, Any]:
    """Backend, world size and rank from an initialised process group, without importing torch."""
    dist = initialized_dist()
    if dist is None:
        return {"process_group": None}
    return {
        "process_group": {
            "backend": str(dist.get_backend()),
            "world_size": dist.get_world_size(),
            "rank": dist.get_rank(),
        }
    }
