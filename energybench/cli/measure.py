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
from pathlib import Path
from typing import Any

from energybench.atomic import write_error, write_text_atomic
from energybench.errors import EXIT_NOT_SAVED, ConfigError, SamplerError
from energybench.measurement import Measurement
from energybench.options import (
    CARBON_OPTIONS,
    SAMPLER_OPTIONS,
    add_to_argparse,
    carbon_kwargs,
    from_namespace,
    positive_seconds,
    sampler_options,
)
from energybench.render.measurement import format_report
from energybench.render.printable import printable


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "measure",
        help="run a command and report its energy, power and CO2e",
        description="Run CMD (no shell) and report energy per domain, duration, mean power and CO2e on stderr.",
    )
    add_to_argparse(parser, CARBON_OPTIONS, "carbon")
    add_to_argparse(parser, SAMPLER_OPTIONS, "samplers")
    parser.add_argument("--interval", type=_seconds, default=0.1, help="polling period of power-only sources, s")
    parser.add_argument("--json", metavar="PATH", help="also write the measurement as JSON (atomically)")
    parser.add_argument("--name", default=None, help="window name (default: the command's name)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from energybench.meter import Meter

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise ConfigError("no command given: use `energybench measure [OPTIONS] -- CMD [ARGS...]`")
    json_path = Path(args.json) if args.json else None
    if json_path is not None:
        _check_writable(json_path)
    values = from_namespace(args, [*CARBON_OPTIONS, *SAMPLER_OPTIONS])
    meter = Meter(interval=args.interval, options=sampler_options(values), **carbon_kwargs(values))
    if not meter.samplers:
        meter.close()
        raise SamplerError("no energy sampler can read here with these options; `energybench sensors` says why")
    name = args.name or Path(cmd[0]).name
    cpu_before = _machine_busy_cpu_s()
    rusage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    attribution = _attribution(result, tree_cpu, _machine_busy_cpu_s() - cpu_before)
    code = child.returncode if child.returncode >= 0 else 128 - child.returncode
    print(format_report(result, cmd, code, attribution, interrupted, _no_counter_reasons(result)), file=sys.stderr)
    failed = not_saved = False
    if json_path is not None:
        payload = {
            "command": cmd,
            "exit_code": code,
            "interrupted": interrupted,
            "process_tree": attribution,
            "measurement": result.to_dict(),
        }
        try:
            write_text_atomic(json_path, json.dumps(payload, indent=2, default=str))
        except OSError as exc:
            error = write_error("--json file", json_path, exc, "the report above is all that was kept")
            print(f"energybench: error: {error}", file=sys.stderr)
            not_saved = True
    if math.isnan(result.energy_j):
        print("energybench: error: no energy figure for this command (see the warnings above)", file=sys.stderr)
        failed = True
    if code:
        return code  # the command's own failure comes first, as with /usr/bin/time
    return 1 if failed else EXIT_NOT_SAVED if not_saved else 0


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
    """Refuse an unusable --json path before the command runs, not after it has spent its energy."""
    from energybench.cli.report import check_writable

    check_writable(str(path), "--json file")


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


def _machine_busy_cpu_s() -> float:
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _attribution(result: Measurement, tree_cpu_s: float, machine_busy_s: float) -> dict[str, Any]:
    """Share of the machine-wide figure due to the command's process tree, by CPU time.

    Only the estimated CPU domains are machine-wide here; the child's CPU seconds come from the kernel
    (rusage of reaped children), so they are exact even for short-lived grandchildren.
    """
    from energybench.samplers.cpu_model import attribute_by_cpu_time

    # DRAM draws by memory held, not CPU time: only the CPU domains are split by CPU seconds
    cpu = [d for d in result.domains if d.device == "cpu" and d.counted and "dram" not in d.key]
    machine_j = sum(d.energy_j for d in cpu)
    idle_j = sum(float(d.details.get("idle_power_w", 0.0)) for d in cpu) * result.duration_s
    share = attribute_by_cpu_time(machine_j, idle_j, machine_busy_s, tree_cpu_s)
    return {
        "cpu_s": tree_cpu_s,
        "machine_busy_cpu_s": machine_busy_s,
        "cpu_energy_j": share,
        "machine_cpu_energy_j": machine_j,
    }


def _no_counter_reasons(result: Measurement) -> list[str]:
    """Why each hardware sampler could not read here, for an estimate's footer (only probed when needed)."""
    if result.source != "estimated":
        return []
    from energybench.samplers import probe_all

    return [f"{p.name}: {p.reason}" for p in probe_all() if not p.available and p.name in ("powercap", "nvml")]
