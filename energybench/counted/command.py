"""``energybench measure --meter counted -- CMD``: the whole command counted under callgrind, then priced.

The command runs under valgrind with every instruction simulated (a plain run is not needed and not made),
its own output untouched; the report goes to stderr and, with ``--json``, to a file that keeps the raw
counts so the run can be re-priced later. A run that broke a rule of the counted meter (it started other
processes, it used a GPU) still prints and saves what was counted, then exits 2 with the fix.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from energybench.counted.errors import CountedError
from energybench.counted.profile import resolve_profile
from energybench.counted.report import format_counted
from energybench.counted.result import CountedResult
from energybench.counted.runner import command_result, run_command
from energybench.errors import EXIT_NOT_SAVED


def measure_counted(cmd: Sequence[str], *, name: str, profile_path: str | None, json_path: Path | None,
                    carbon_options: Mapping[str, Any]) -> int:
    """Run ``cmd`` counted; the exit code is the command's own, else 2 for a broken rule, 73 if not saved."""
    from energybench.carbon import resolve_provider

    profile = resolve_profile(profile_path)  # a malformed profile fails before the slow run, not after
    provider = resolve_provider(**carbon_options)
    run = run_command(cmd, profile=profile)
    error: CountedError | None = None
    try:
        result = command_result(run, profile, name)
    except CountedError as exc:
        if exc.result is None:
            raise
        result, error = exc.result, exc
    carbon = _carbon(provider, result)
    code = run.returncode if run.returncode >= 0 else 128 - run.returncode
    print(format_counted(result, cmd, code, carbon, run.interrupted), file=sys.stderr)
    saved = json_path is None or _save(json_path, cmd, code, run.interrupted, result, carbon, error)
    if error is not None:
        kept = "" if json_path is None else f" in {json_path}"
        raise CountedError(f"{error} (the counts above were kept{kept})")
    if code:
        return code
    return 0 if saved else EXIT_NOT_SAVED


def _carbon(provider: Any, result: CountedResult) -> Any:
    """CO2e of the modeled joules at the factor in force over the run's wall time."""
    if provider is None:
        return None
    return provider.carbon([(result.start_time, result.start_time + result.wall_s, result.energy_j)])


def _save(path: Path, cmd: Sequence[str], code: int, interrupted: bool, result: CountedResult, carbon: Any,
          error: CountedError | None) -> bool:
    from dataclasses import asdict

    from energybench.atomic import write_error, write_text_atomic

    payload = {"command": list(cmd), "exit_code": code, "interrupted": interrupted, "meter": "counted",
               "counted": result.to_dict(), "carbon": asdict(carbon) if carbon is not None else None,
               "measurement": result.to_measurement(carbon).to_dict(), "error": str(error) if error else None}
    try:
        write_text_atomic(path, json.dumps(payload, indent=2, default=str))
    except OSError as exc:
        print(f"energybench: error: {write_error('--json file', path, exc, 'the report above is all that was kept')}",
              file=sys.stderr)
        return False
    return True
