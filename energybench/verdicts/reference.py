"""Which saved run a comparison is against, and what a missing one means: the one baseline policy that
``energybench compare`` and the pytest plugin (``--energy-compare``) share.

A first CI run has nothing to compare with and must pass, but a gate that passes because its baseline was
misspelt never fails again. So a missing baseline passes (with a note) only when the store holds no run at
all, or when the user says a missing one is expected (``--allow-missing-baseline``); a name that matches no
run while runs of other names are saved is a typo, and so is a run id or counter that matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from energybench.errors import ResultsError
from energybench.record import Run
from energybench.record.storage import list_runs, load_run, resolve_run

#: A reference that names one file (a run id or a counter), never a run name.
_RUN_ID = re.compile(r"\d+|\d{4,}_.+")


@dataclass(frozen=True)
class Reference:
    """The baseline run, or ``None`` with the note that says why the comparison passes without one."""

    run: Run | None
    note: str | None = None


#: How the options that change the policy are spelt on the command line (pytest adds ``energy-``).
CLI_FLAGS = ("--require-baseline", "--allow-missing-baseline")
PYTEST_FLAGS = ("--energy-require-baseline", "--energy-allow-missing-baseline")


def resolve_baseline(ref: str, directory: str, *, require: bool = False, allow_missing: bool = False,
                     flags: tuple[str, str] = CLI_FLAGS) -> Reference:
    """The baseline ``ref`` names in ``directory``; a ``ResultsError`` when it is missing and that cannot be a
    first run (see the module docstring). ``require`` makes any missing baseline an error; ``flags`` name the
    two options in messages."""
    try:
        path = resolve_run(ref, directory)
    except ResultsError as exc:
        return _missing(str(exc), ref, directory, require, allow_missing, flags)
    if not Path(path).exists():  # a file named by its path: the store is the folder it would be in
        return _missing(f"baseline file {path} does not exist", ref, str(Path(path).parent), require,
                        allow_missing, flags, named_file=True)
    return Reference(load_run(path))


def _missing(why: str, ref: str, directory: str, require: bool, allow_missing: bool, flags: tuple[str, str],
             named_file: bool = False) -> Reference:
    if require:
        raise ResultsError(f"{why}, and a baseline is required ({flags[0]}): save a baseline run first")
    if allow_missing:
        return Reference(None, f"{why}; passing as a first run with no baseline ({flags[1]})")
    saved = list_runs(directory)
    if _RUN_ID.fullmatch(ref) and not named_file:
        raise ResultsError(why)  # a run id or counter that matches nothing is never a first run
    if saved:
        names = sorted({p.stem.split("_", 1)[-1] for p in saved})
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise ResultsError(f"no baseline {ref!r} in {directory}, which holds {len(saved)} run(s) named {shown}: "
                           f"fix the name, or pass {flags[1]} if this is its first run")
    return Reference(None, f"{why}; passing as a first run with no baseline (the store is empty; {flags[0]} "
                           "makes it an error)")
