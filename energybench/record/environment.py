"""How a run was set up, as typed parts: what was pinned, who launched it, which devices it measured, the
verdict rules it was judged by, and the A/B session it belongs to (``Run.environment``).

Why typed: these keys were written in three places and read in eight, each reader guarding against a
different wrong shape. Here each key is declared once, checked on the way in with an error naming the field,
and keys this version does not know are kept (``extra``) and written back, so a newer writer's file survives
a round trip through an older reader.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from energybench.record.parse import _drop_none, _extra, _Field, _names


@dataclass(frozen=True)
class Settings:
    """What a run pinned or chose before measuring, so two runs can say when they differ (``threads`` is the
    thread state in force: torch's intra-op count, the BLAS/OpenMP pools, and ``pinned`` when pinned)."""

    threads: Mapping[str, Any] = field(default_factory=dict)
    interop_threads: int | None = None
    mha_fastpath: bool | None = None
    compile: bool | None = None
    dtype: str | None = None
    device: str | None = None
    seed: int | None = None
    trials: int | None = None
    warmup: int | None = None
    quick: bool | None = None
    quantized_engine: str | None = None
    devices: tuple[str, ...] = ()
    devices_missing: Mapping[str, str] = field(default_factory=dict)
    layers: bool | None = None
    looks: tuple[int, ...] = ()  # a sequential run's design (verdicts.sequential): when rows were looked at...
    spend: tuple[float, ...] = ()  # ...and the share of alpha each look spent; () for a fixed count of trials
    # a run cut short (Ctrl-C, SIGTERM, an error) says so beside the trials it planned: what stopped it and how
    # many whole trials it finished; both None for a run that ran to its end
    stopped: str | None = None
    trials_finished: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = _drop_none({k: getattr(self, k) for k in _names(Settings) if k not in ("extra", "looks", "spend")})
        d["threads"] = dict(self.threads)
        d["devices"] = list(self.devices)
        if self.looks:
            d["looks"], d["spend"] = list(self.looks), list(self.spend)
        if self.devices_missing:
            d["devices_missing"] = dict(self.devices_missing)
        else:
            d.pop("devices_missing", None)
        return {**d, **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> Settings | None:
        d = f.opt_obj()
        if d is None:
            return None
        return cls(
            threads=_threads(f.child("threads")),
            interop_threads=_opt_int(f.child("interop_threads")),
            mha_fastpath=_opt_bool(f.child("mha_fastpath")),
            compile=_opt_bool(f.child("compile")),
            dtype=f.child("dtype").opt_text(),
            device=f.child("device").opt_text(),
            seed=_opt_int(f.child("seed")),
            trials=_opt_int(f.child("trials")),
            warmup=_opt_int(f.child("warmup")),
            quick=_opt_bool(f.child("quick")),
            quantized_engine=f.child("quantized_engine").opt_text(),
            devices=f.child("devices").texts(),
            devices_missing={k: str(v) for k, v in (f.child("devices_missing").opt_obj() or {}).items()},
            layers=_opt_bool(f.child("layers")),
            looks=tuple(int(x.number(minimum=1)) for x in f.child("looks").items()) if d.get("looks") else (),
            spend=tuple(x.number(minimum=0.0, maximum=1.0) for x in f.child("spend").items()) if d.get("spend") else (),
            stopped=f.child("stopped").opt_text(),
            trials_finished=_opt_int(f.child("trials_finished")),
            extra=_extra(d, _names(cls)),
        )

    def thread_counts(self) -> dict[str, Any]:
        """The counts that change energy figures (torch's threads and the pools), for comparing two runs."""
        return {k: v for k, v in self.threads.items() if k in ("torch", "pools")}


@dataclass(frozen=True)
class Launcher:
    """Who started the process and where (``distributed.launcher.launcher_environment``; a pytest session adds
    ``tool`` and its version). ``env`` holds every recorded launcher variable verbatim."""

    launcher: str | None = None
    host: str | None = None
    tool: str | None = None
    world_size: int | None = None
    rank: int | None = None
    job_id: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"launcher": self.launcher, "host": self.host, "world_size": self.world_size,
                             "rank": self.rank, "job_id": self.job_id}
        if self.tool is not None:
            d["tool"] = self.tool
        return {**d, **self.extra, "env": dict(self.env)}

    @classmethod
    def of(cls, info: Mapping[str, Any], tool: str | None = None) -> Launcher:
        """From ``launcher_environment()``'s mapping (the keys it does not name go to ``extra``)."""
        job = info.get("job_id")
        return cls(launcher=info.get("launcher"), host=info.get("host"), tool=tool or info.get("tool"),
                   world_size=info.get("world_size"), rank=info.get("rank"),
                   job_id=None if job is None else str(job), env=dict(info.get("env") or {}),
                   extra=_extra(info, _names(cls)))

    @classmethod
    def parse(cls, f: _Field) -> Launcher | None:
        d = f.opt_obj()
        if d is None:
            return None
        job = f.child("job_id")
        return cls(launcher=f.child("launcher").opt_text(), host=f.child("host").opt_text(),
                   tool=f.child("tool").opt_text(), world_size=_opt_int(f.child("world_size")),
                   rank=_opt_int(f.child("rank")), job_id=None if job.value is None else str(job.value),
                   env={str(k): str(v) for k, v in (f.child("env").opt_obj() or {}).items()},
                   extra=_extra(d, _names(cls)))


@dataclass(frozen=True)
class Devices:
    """The devices a run measured (``run.devices.devices_record``): the GPUs its samplers read, and those
    NVML saw that it left out, with what chose them."""

    device: str
    chosen_by: str = ""
    gpus_measured: tuple[Mapping[str, Any], ...] = ()
    gpus_not_measured: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "chosen_by": self.chosen_by, "gpus_measured": [dict(g) for g in
                self.gpus_measured], "gpus_not_measured": list(self.gpus_not_measured)}

    @classmethod
    def parse(cls, f: _Field) -> Devices | None:
        if f.opt_obj() is None:
            return None
        measured = f.child("gpus_measured")
        return cls(device=f.child("device").opt_text() or "", chosen_by=f.child("chosen_by").opt_text() or "",
                   gpus_measured=tuple(g.obj() for g in measured.items()) if measured.value is not None else (),
                   gpus_not_measured=f.child("gpus_not_measured").texts())


@dataclass(frozen=True)
class BetweenRuns:
    """The between-run spread (standard deviation of a log ratio) a run's verdicts add, and where it came from
    (``verdicts.spread``): ``default``, ``option`` or ``N saved runs``."""

    sd: float
    source: str

    def describe(self) -> str:
        where = {"default": "default; saved runs of this machine replace it",
                 "option": "--between-run-spread"}.get(self.source, f"from {self.source} of this machine")
        return f"between-run spread {self.sd * 100:.3g}% ({where})"

    def to_dict(self) -> dict[str, Any]:
        return {"sd": self.sd, "source": self.source}

    @classmethod
    def parse(cls, f: _Field) -> BetweenRuns | None:
        if f.opt_obj() is None:
            return None
        return cls(f.child("sd").number(minimum=0.0), f.child("source").opt_text() or "default")


@dataclass(frozen=True)
class ABSide:
    """One side of an A/B session (``energybench ab``): the session both sides share, which side this is, the
    git ref or command it ran, and the process (pair) that measured it."""

    session: str
    side: str | None = None
    ref: str | None = None
    command: str | None = None
    process: int | None = None
    processes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({k: getattr(self, k) for k in _names(ABSide)})

    @classmethod
    def parse(cls, f: _Field) -> ABSide | None:
        if f.opt_obj() is None or not f.child("session").value:
            return None
        return cls(session=str(f.child("session").value), side=f.child("side").opt_text(),
                   ref=f.child("ref").opt_text(), command=f.child("command").opt_text(),
                   process=_opt_int(f.child("process")), processes=_opt_int(f.child("processes")))


@dataclass(frozen=True)
class SlurmJob:
    """The Slurm job and step a run was measured in (``samplers.slurm.slurm_job``), the CPUs its cgroup gave
    it, and Slurm's own figure over the run's trials: the growth of ``sacct``'s ``ConsumedEnergyRaw`` as a
    second opinion (``sacct_j``), or why there is none (``sacct_reason``). Written only inside a job, so a file
    from outside Slurm, and an older reader, see nothing new; the job's other keys (cluster, array ids,
    cgroup) are kept in ``extra``."""

    job_id: str
    step_id: str | None = None
    node: str | None = None
    cpus: tuple[int, ...] = ()
    cpus_source: str = ""
    sacct_j: float | None = None
    sacct_reason: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def job_step(self) -> str:
        """``123.0``, or ``123`` outside a step: the entry ``sacct`` reports."""
        return self.job_id if self.step_id is None else f"{self.job_id}.{self.step_id}"

    def to_dict(self) -> dict[str, Any]:
        d = _drop_none({"job_id": self.job_id, "step_id": self.step_id, "node": self.node,
                        "cpus_source": self.cpus_source, "sacct_j": self.sacct_j, "sacct_reason": self.sacct_reason})
        return {**d, "cpus": list(self.cpus), **self.extra}

    @classmethod
    def of(cls, job: Mapping[str, Any], sacct_j: float | None = None, sacct_reason: str = "") -> SlurmJob:
        """From ``samplers.slurm.SlurmJob.to_dict()``: the keys not named here go to ``extra``."""
        known = (*_names(cls), "job_step")
        return cls(job_id=str(job["job_id"]), step_id=job.get("step_id"), node=job.get("node"),
                   cpus=tuple(int(c) for c in job.get("cpus") or ()), cpus_source=str(job.get("cpus_source") or ""),
                   sacct_j=sacct_j, sacct_reason=sacct_reason,
                   extra={k: v for k, v in _extra(job, known).items() if v is not None})

    @classmethod
    def parse(cls, f: _Field) -> SlurmJob | None:
        d = f.opt_obj()
        if d is None:
            return None
        job = f.child("job_id")
        if job.value is None or isinstance(job.value, bool) or not isinstance(job.value, str | int):
            raise job.fail("expected the Slurm job id (a string)")
        return cls(job_id=str(job.value), step_id=f.child("step_id").opt_text(), node=f.child("node").opt_text(),
                   cpus=tuple(int(c.number(minimum=0)) for c in f.child("cpus").items()) if d.get("cpus") else (),
                   cpus_source=f.child("cpus_source").opt_text() or "",
                   sacct_j=f.child("sacct_j").opt_number(minimum=0.0),
                   sacct_reason=f.child("sacct_reason").opt_text() or "", extra=_extra(d, (*_names(cls), "job_step")))


@dataclass(frozen=True)
class Environment:
    """``Run.environment``: each part ``None`` when the run's producer does not record it."""

    settings: Settings | None = None
    launcher: Launcher | None = None
    devices: Devices | None = None
    min_change: float | None = None  # the smallest change the run's verdicts claim
    between_runs: BetweenRuns | None = None
    ab: ABSide | None = None
    slurm: SlurmJob | None = None  # only inside a Slurm job
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def thread_counts(self) -> dict[str, Any]:
        return self.settings.thread_counts() if self.settings is not None else {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for key in ("settings", "launcher", "devices", "between_runs", "ab", "slurm"):
            part = getattr(self, key)
            if part is not None:
                d[key] = part.to_dict()
        if self.min_change is not None:
            d["min_change"] = self.min_change
        return {**d, **self.extra}

    @classmethod
    def parse(cls, f: _Field) -> Environment:
        d = f.opt_obj() or {}
        change = f.child("min_change").opt_number(minimum=0.0)
        return cls(settings=Settings.parse(f.child("settings")), launcher=Launcher.parse(f.child("launcher")),
                   devices=Devices.parse(f.child("devices")), min_change=change,
                   between_runs=BetweenRuns.parse(f.child("between_runs")), ab=ABSide.parse(f.child("ab")),
                   slurm=SlurmJob.parse(f.child("slurm")), extra=_extra(d, _names(cls)))


def _threads(f: _Field) -> dict[str, Any]:
    """The thread state; files before it was recorded as a mapping held torch's count alone."""
    if f.value is None:
        return {}
    if isinstance(f.value, int | float) and not isinstance(f.value, bool):
        return {"torch": _opt_int(f)}
    return f.obj()


def _opt_int(f: _Field) -> int | None:
    value = f.opt_number(allow_nan=False)
    if value is None:
        return None
    if not math.isclose(value, round(value)):
        raise f.fail(f"expected a whole number, got {value:g}")
    return int(round(value))


def _opt_bool(f: _Field) -> bool | None:
    return None if f.value is None else f.boolean(False)
