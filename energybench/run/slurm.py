"""A run inside a Slurm job: the job and step recorded with the run, and Slurm's figure over its trials.

Why: on a shared node a run's figures mean little unless the file says which job and step made them and which
CPUs the job was given (the CPU model already counts only those: ``cpu_time.cpu_share`` reads the job's
cpuset). And where Slurm gathers energy itself (``AcctGatherEnergyType``), its ``ConsumedEnergyRaw`` is an
independent second opinion: ``sacct`` is read before the first trial and after the last, and the growth is
recorded beside energybench's own joules of those trials (``samplers.slurm.sacct_window`` says why when there
is no figure). Slurm's span also holds the short gaps between trials and counts the node's energy unless the
allocation is exclusive, so it is a cross-check, never a replacement. Outside Slurm nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from energybench.record.environment import SlurmJob

if TYPE_CHECKING:
    from energybench.run.state import RunState


class SlurmWatch:
    """``begin`` records the job in the run and reads ``sacct`` before the trials; ``finish`` adds the growth."""

    def __init__(self, job: Any = None, before: Any = None) -> None:
        self.job, self.before = job, before

    @classmethod
    def begin(cls, state: RunState, environ: Mapping[str, str] | None = None) -> SlurmWatch:
        """Outside a job (no ``SLURM_JOB_ID``) a watch that does nothing; inside, the job goes into the run now,
        so a run stopped half-way still says where it ran."""
        from energybench.samplers.slurm import sacct_energy, slurm_job

        job = slurm_job(environ)
        if job is None:
            return cls()
        watch = cls(job, sacct_energy(job))
        watch._record(state, SlurmJob.of(job.to_dict(), sacct_reason="the trials have not finished"))
        return watch

    def finish(self, state: RunState) -> None:
        """Record ``sacct``'s growth over the trials (or why there is none) beside the job."""
        if self.job is None:
            return
        from energybench.samplers.slurm import sacct_energy, sacct_window

        window = sacct_window(self.before, sacct_energy(self.job))
        self._record(state, SlurmJob.of(self.job.to_dict(), window.joules, window.reason))

    @staticmethod
    def _record(state: RunState, slurm: SlurmJob) -> None:
        state.run = replace(state.run, environment=replace(state.run.environment, slurm=slurm))
