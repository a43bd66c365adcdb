"""``energybench measure -- CMD``: like ``/usr/bin/time``, for joules and grams of CO2e.

The command runs without a shell, its own output untouched; the report goes to stderr. Ctrl-C is
forwarded to the child and whatever was measured up to then is still printed and written, because an
interrupted training run has still cost energy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from energybench.atomic import write_text_atomic
from energybench.cli._options import (
    add_carbon_arguments,
    add_sampler_arguments,
    carbon_kwargs,
    positive_float,
    sampler_options,
)
from energybench.errors import ConfigError, SamplerError
from energybench.measurement import Measurement, format_joules
from energybench.report_line import carbon_line


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "measure",
        help="run a command and report its energy, power and CO2e",
        description="Run CMD (no shell) and report energy per domain, duration, mean power and CO2e on stderr.",
    )
    add_carbon_arguments(parser)
    add_sampler_arguments(parser)
    parser.add_argument("--interval", type=positive_float, default=0.1, help="polling period of power-only sources, s")
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
    meter = Meter(interval=args.interval, options=sampler_options(args), **carbon_kwargs(args))
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
    except (FileNotFoundError, PermissionError) as exc:
        forwarder.restore()
        meter.end(name)
        meter.close()
        if isinstance(exc, FileNotFoundError):
            print(f"energybench: command not found: {cmd[0]} (check the name and PATH)", file=sys.stderr)
            return 127
        print(f"energybench: permission denied running {cmd[0]} (is it executable?)", file=sys.stderr)
        return 126
    interrupted = forwarder.wait(child)
    result = meter.end(name)
    meter.close()
    rusage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree_cpu = (rusage_after.ru_utime - rusage_before.ru_utime) + (rusage_after.ru_stime - rusage_before.ru_stime)
    attribution = _attribution(result, tree_cpu, _machine_busy_cpu_s() - cpu_before)
    code = child.returncode if child.returncode >= 0 else 128 - child.returncode
    print(format_report(result, cmd, code, attribution, interrupted, _no_counter_reasons(result)), file=sys.stderr)
    failed = False
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
            print(f"energybench: error: cannot write --json {json_path}: {exc.strerror}; the report above is all "
                  "that was kept", file=sys.stderr)
            failed = True
    if math.isnan(result.energy_j):
        print("energybench: error: no energy figure for this command (see the warnings above)", file=sys.stderr)
        failed = True
    return code if code or not failed else 1


def _check_writable(path: Path) -> None:
    """Refuse an unusable --json path before the command runs, not after it has spent its energy."""
    if path.is_dir():
        raise ConfigError(f"cannot write --json {path}: it is a directory; give a file name")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write --json {path}: directory {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"cannot write --json {path}: permission denied; choose a writable path")


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


def format_report(
    result: Measurement,
    cmd: list[str],
    code: int,
    attribution: dict[str, Any],
    interrupted: bool,
    no_counter: list[str] | None = None,
) -> str:
    status = "interrupted" if interrupted else f"exited {code}"
    lines = [f"energybench: {' '.join(cmd)} {status}"]
    lines.append(f"  energy      {format_joules(result.energy_j)} ({result.source})")
    for d in result.domains:
        note = "" if d.counted else "  (inside another domain, not added)"
        lines.append(f"    {d.key:<18} {format_joules(d.energy_j):>10}  {d.source:<9} {d.method}{note}")
    lines.append(f"  duration    {result.duration_s:.3f} s")
    lines.append(f"  mean power  {result.mean_power_w:.3g} W")
    no_co2e = next((w.removeprefix("no CO2e: ") for w in result.warnings if w.startswith("no CO2e: ")), None)
    lines.append(f"  CO2e        {carbon_line(result.carbon, no_co2e)}")
    if attribution["machine_cpu_energy_j"] > 0:
        lines.append(
            f"  this command {attribution['cpu_s']:.2f} CPU-s of the machine's {attribution['machine_busy_cpu_s']:.2f} "
            f"busy CPU-s: {format_joules(attribution['cpu_energy_j'])} of the CPU energy above idle is its share"
        )
    if result.source == "estimated":
        why = "; ".join(no_counter or []) or "no hardware counter covers these domains"
        lines.append(f"  estimated = from a power model, not a hardware counter ({why})")
    lines.extend(f"  warning: {w}" for w in result.warnings if not w.startswith("no CO2e: "))
    return "\n".join(lines)
