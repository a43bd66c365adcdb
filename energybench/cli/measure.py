"""``energybench measure -- CMD``: like ``/usr/bin/time``, for joules and grams of CO2e.

The command runs without a shell, its own output untouched; the report goes to stderr. Ctrl-C is
forwarded to the child and whatever was measured up to then is still printed and written, because an
interrupted training run has still cost energy.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from energybench import units
from energybench.atomic import write_error, write_text_atomic
from energybench.errors import EXIT_NOT_SAVED, ConfigError, SamplerError
from energybench.measurement import DomainEnergy, Measurement
from energybench.options import (
    CARBON_OPTIONS,
    SAMPLER_OPTIONS,
    add_to_argparse,
    carbon_kwargs,
    from_namespace,
    positive_seconds,
    sampler_options,
)
from energybench.render.measurement import LABEL, format_report
from energybench.render.printable import printable
from energybench.render.tables import wrap


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "measure",
        help="run a command and report its energy, power and CO2e",
        description="Run CMD (no shell) and report energy per domain, duration, mean power and CO2e on stderr.",
    )
    add_to_argparse(parser, CARBON_OPTIONS, "carbon")
    add_to_argparse(parser, SAMPLER_OPTIONS, "samplers")
    parser.add_argument("--interval", type=_seconds, default=0.1, help="polling period of power-only sources, s")
    parser.add_argument("--idle", type=_idle_seconds, default=0.0, metavar="S",
                        help="measure S seconds of idle power first: the floor RAPL's share for the command is "
                        "taken above (default 0: $ENERGYBENCH_RAPL_IDLE_W, else no RAPL share)")
    parser.add_argument("--json", metavar="PATH", help="also write the measurement as JSON (atomically)")
    parser.add_argument("--name", default=None, help="window name (default: the command's name)")
    parser.add_argument("--meter", choices=("sampled", "counted"), default="sampled",
                        help="sampled (default): read the energy samplers while CMD runs; counted: run CMD under "
                        "valgrind, count its instructions and cache misses and price them per event (modeled "
                        "joules that repeat exactly; tens of times slower; see the manual's 'Counted energy')")
    parser.add_argument("--profile", default=None, metavar="FILE",
                        help="with --meter counted: per-event energies from `energybench calibrate` (default "
                        "$ENERGYBENCH_COUNTED_PROFILE, else the built-in horowitz-45nm table)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.measuring.meter import Meter

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise ConfigError("no command given: use `energybench measure [OPTIONS] -- CMD [ARGS...]`")
    json_path = Path(args.json) if args.json else None
    if json_path is not None:
        _check_writable(json_path)
    values = from_namespace(args, [*CARBON_OPTIONS, *SAMPLER_OPTIONS])
    if args.profile and args.meter != "counted":
        raise ConfigError("--profile prices counted events: use it with --meter counted")
    if args.meter == "counted":
        from energybench.counted.command import measure_counted

        return measure_counted(cmd, name=args.name or Path(cmd[0]).name, profile_path=args.profile,
                               json_path=json_path, carbon_options=carbon_kwargs(values))
    meter = Meter(interval=args.interval, options=sampler_options(values), **carbon_kwargs(values))
    if not meter.samplers:
        meter.close()
        raise SamplerError("no energy sampler can read here with these options; `energybench sensors` says why")
    return _measure_command(meter, cmd, args.name or Path(cmd[0]).name, args.idle, values, json_path)


def _measure_command(meter: Any, cmd: list[str], name: str, idle_s: float, values: Mapping[str, Any],
                     json_path: Path | None) -> int:
    """Run ``cmd`` inside one window, print the report, write the JSON; the exit status as ``/usr/bin/time``'s."""
    idle = _measure_idle(meter, idle_s)
    busy = _busy_reader(meter)
    cpu_before = busy()
    rusage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    slurm = _SlurmOpinion.begin()  # sacct's figure before the command: its growth is Slurm's second opinion
    forwarder = _SignalForwarder()  # installed before the child exists: a Ctrl-C now is not a traceback
    meter.begin(name)
    try:
        child = subprocess.Popen(cmd)
    except (OSError, ValueError) as exc:  # not found, not executable, not a program, a NUL in an argument
        forwarder.restore()
        meter.end(name)
        meter.close()
        code, why = _cannot_start(cmd[0], exc)
        print(printable(f"energybench: {why}"), file=sys.stderr)
        return code
    interrupted = forwarder.wait(child)
    result = meter.end(name)
    meter.close()
    rusage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree_cpu = (rusage_after.ru_utime - rusage_before.ru_utime) + (rusage_after.ru_stime - rusage_before.ru_stime)
    attribution = _attribution(result, tree_cpu, busy() - cpu_before, _rapl_floor(idle, values))
    code = child.returncode if child.returncode >= 0 else 128 - child.returncode
    print(format_report(result, cmd, code, attribution, interrupted, _no_counter_reasons(result)), file=sys.stderr)
    slurm.report(result)
    not_saved = json_path is not None and not _write_json(json_path, {
        "command": cmd, "exit_code": code, "interrupted": interrupted, "process_tree": attribution,
        "measurement": result.to_dict(), "slurm": slurm.to_dict()})
    failed = math.isnan(result.energy_j)
    if failed:
        print("energybench: error: no energy figure for this command (see the warnings above)", file=sys.stderr)
    if code:
        return code  # the command's own failure comes first, as with /usr/bin/time
    return 1 if failed else EXIT_NOT_SAVED if not_saved else 0


def _write_json(path: Path, payload: Mapping[str, Any]) -> bool:
    """Write ``payload`` atomically; on failure say so (the report above is what was kept) and return False."""
    try:
        write_text_atomic(path, json.dumps(payload, indent=2, default=str))
    except OSError as exc:
        error = write_error("--json file", path, exc, "the report above is all that was kept")
        print(f"energybench: error: {error}", file=sys.stderr)
        return False
    return True


class _SlurmOpinion:
    """Inside a Slurm job: the job and step, its CPUs, and sacct's ``ConsumedEnergyRaw`` growth over the command
    printed beside energybench's own figure (a second opinion from Slurm's energy plugin, or why there is none).
    Outside Slurm it prints nothing and records ``None``."""

    def __init__(self, job: Any, before: Any) -> None:
        self.job, self.before = job, before
        self.window: Any = None

    @classmethod
    def begin(cls) -> _SlurmOpinion:
        from energybench.samplers.slurm import sacct_energy, slurm_job

        job = slurm_job()
        return cls(job, sacct_energy(job) if job is not None else None)

    def report(self, result: Measurement) -> None:
        if self.job is None:
            return
        from energybench.samplers.cpu_time import cpu_list
        from energybench.samplers.slurm import sacct_energy, sacct_window

        self.window = sacct_window(self.before, sacct_energy(self.job))
        job, ours = self.job, units.joules(result.energy_j)
        where = f"{job.job_step}" + (f" on {job.node}" if job.node else "")
        cpus = f"CPUs {cpu_list(job.cpus)} ({job.cpus_source})" if job.cpus else job.cpus_source
        figure = units.joules(self.window.joules) if self.window.joules is not None else "n/a"
        rows = [("slurm job", f"{where}; {cpus}"),
                ("sacct", f"{figure} beside energybench's {ours} machine-wide ({self.window.reason})")]
        for label, text in rows:
            print(printable("\n".join(wrap(f"  {label:<{LABEL}}{text}", hang=LABEL))), file=sys.stderr)

    def to_dict(self) -> dict[str, Any] | None:
        if self.job is None:
            return None
        return {"job": self.job.to_dict(), "sacct_before": self.before.to_dict() if self.before else None,
                "sacct_window": self.window.to_dict() if self.window else None}


def _cannot_start(program: str, exc: Exception) -> tuple[int, str]:
    """A shell's exit code and one line for a command that could not be started (127 not found, 126 found
    but not runnable)."""
    if isinstance(exc, FileNotFoundError):
        return 127, f"command not found: {program} (check the name and PATH)"
    if isinstance(exc, PermissionError | IsADirectoryError):
        return 126, f"permission denied running {program} (is it an executable file?)"
    if isinstance(exc, OSError) and exc.errno == errno.ENOEXEC:
        return 126, (f"cannot execute {program}: exec format error (not a program for this machine, or a script "
                     "without a #! line)")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return 126, f"cannot execute {program}: {reason}"


def _seconds(text: str) -> float:
    try:
        return positive_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_writable(path: Path) -> None:
    """Refuse an unusable --json path, or a saved run there, before the command runs, not after it has spent
    its energy."""
    from energybench.outputs import check_outputs

    check_outputs([(str(path), "--json file")])


class _SignalForwarder:
    """SIGINT/SIGTERM sent to us go to the child, and we keep waiting so the window closes and is reported."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None
        self.interrupted = False
        self._previous = {sig: signal.signal(sig, self._forward) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _forward(self, signum: int, _frame: object) -> None:
        self.interrupted = True
        if self.child is not None:
            try:
                self.child.send_signal(signum)
            except ProcessLookupError:
                pass

    def wait(self, child: subprocess.Popen) -> bool:
        self.child = child
        try:
            if self.interrupted:  # a Ctrl-C arrived while the child was starting
                child.send_signal(signal.SIGINT)
            child.wait()
        finally:
            self.restore()
        return self.interrupted

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _idle_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be seconds >= 0, got {text!r}")
    return value


def _measure_idle(meter: Any, seconds: float) -> Measurement | None:
    """An idle window before the command, when asked for: RAPL has no idle floor of its own."""
    if seconds <= 0:
        return None
    print(f"energybench: measuring idle power for {seconds:g} s (keep the machine quiet)", file=sys.stderr)
    with meter.window("idle") as w:
        time.sleep(seconds)
    return w.result


def _busy_reader(meter: Any) -> Callable[[], float]:
    """Machine busy CPU-seconds as the figure being split counts them: the CPU model's own reader (over the
    CPUs this process may use), else every CPU's (RAPL measures whole packages). Guest time is not counted
    twice: it is already inside user time."""
    from energybench.samplers.cpu_time import busy_cpu_seconds

    model = next((s for s in meter.samplers if s.name == "cpu-model"), None)
    reader = getattr(model, "busy_cpu_seconds", None)
    if model is not None and getattr(model, "scope", "machine") == "machine" and reader is not None:
        return cast(Callable[[], float], reader)
    return busy_cpu_seconds


def _rapl_floor(idle: Measurement | None, values: Mapping[str, Any]) -> tuple[float | None, str]:
    """RAPL's idle floor in watts (the packages' draw with the machine idle) and where it came from."""
    from energybench.samplers.rapl_share import IDLE_ENV, idle_floor_option

    if idle is not None and idle.duration_s > 0:
        joules = [d.energy_j for d in idle.domains if d.method == "rapl-powercap" and _is_cpu_work(d)]
        if joules and all(math.isfinite(j) for j in joules):
            return sum(joules) / idle.duration_s, f"measured over {idle.duration_s:.3g} s before the command"
    watts, label = idle_floor_option(values)
    if watts is not None:
        return watts, label
    return None, f"no RAPL idle floor: pass --idle SECONDS or --rapl-idle-w W, or set {IDLE_ENV}"


def _is_cpu_work(d: DomainEnergy) -> bool:
    """CPU domains split by CPU time: counted, on the CPU, not memory (DRAM draws by memory held)."""
    return d.device == "cpu" and d.counted and "dram" not in d.key


def _attribution(
    result: Measurement, tree_cpu_s: float, machine_busy_s: float, rapl_floor: tuple[float | None, str]
) -> dict[str, Any]:
    """The command's share of the CPU energy above the idle floor, its CO2e, and how it was worked out.

    * CPU model, machine scope: the dynamic (above-floor) energy split by the process tree's CPU time.
    * CPU model, process scope: the figure already counts only this process tree, so its part above the
      floor is the command's (no second split by CPU time).
    * RAPL: the packages' energy above the idle floor (``--idle`` or ``$ENERGYBENCH_RAPL_IDLE_W``) split by
      CPU time; without a floor there is no share (charging the floor would bill the command for the
      machine being on).
    """
    from energybench.samplers.cpu_model import attribute_by_cpu_time

    cpu = [d for d in result.domains if _is_cpu_work(d) and math.isfinite(d.energy_j)]
    machine_j = sum(d.energy_j for d in cpu)
    out: dict[str, Any] = {"cpu_s": tree_cpu_s, "machine_busy_cpu_s": machine_busy_s, "machine_cpu_energy_j": machine_j,
                           "cpu_energy_j": None, "co2e_g": None, "basis": None, "idle_floor_w": None, "note": None}
    if not cpu:
        out["note"] = "no CPU energy figure to split"
        return out
    rapl = [d for d in cpu if d.method == "rapl-powercap"]
    model = [d for d in cpu if d.method != "rapl-powercap"]
    share = 0.0
    if model:
        floor_w = sum(float(d.details.get("idle_power_w", 0.0)) for d in model)
        model_j = sum(d.energy_j for d in model)
        if all(str(d.details.get("scope")) == "process" for d in model):
            share += max(0.0, model_j - floor_w * result.duration_s)
            out["basis"] = "CPU model in process scope: its energy above the idle floor is this process tree's"
        else:
            share += attribute_by_cpu_time(model_j, floor_w * result.duration_s, machine_busy_s, tree_cpu_s)
            out["basis"] = "CPU model: energy above the idle floor x the command's share of busy CPU time"
        out["idle_floor_w"] = floor_w
    if rapl:
        rapl_w, source = rapl_floor
        if rapl_w is None:
            out["note"] = source
            return out
        share += attribute_by_cpu_time(sum(d.energy_j for d in rapl), rapl_w * result.duration_s, machine_busy_s,
                                       tree_cpu_s)
        out["basis"] = f"RAPL packages above an idle floor of {rapl_w:.3g} W ({source}) x the command's share " \
                       "of busy CPU time"
        out["idle_floor_w"] = rapl_w
    out["cpu_energy_j"] = share
    if result.carbon is not None and result.energy_j > 0:
        out["co2e_g"] = result.carbon.co2e_g * share / result.energy_j  # the window's effective factor and PUE
    return out


def _no_counter_reasons(result: Measurement) -> list[str]:
    """Why each hardware sampler could not read here, for an estimate's footer (only probed when needed)."""
    if result.source != "estimated":
        return []
    from energybench.samplers import probe_all

    return [f"{p.name}: {p.reason}" for p in probe_all() if not p.available and p.name in ("powercap", "nvml")]
