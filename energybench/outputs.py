"""Where a command may write a file it was asked for: never over a saved run, never over its own input.

Why one guard: every output option (``report --html/--markdown/--csv``, ``compare --markdown``, ``export -o``,
``measure --json``, ``calibrate --out``, pytest's ``--energy-json``) used to replace whatever was at its path,
so a slip of the tab key (``--csv results/0001_good.json``) destroyed a saved run with exit 0. Each of them
now asks ``check_outputs`` before any work: a path that is a saved run, or an input of the same command, or
clearly unwritable, is refused in one line naming the path and the fix (exit 2), and nothing is written.

A *saved run* is a file named like one (``NNNN_name.json``) in the results directory, whether it exists yet
or not (a report there would be read back as a run), or any file whose content is an energybench results
file. The one exception is an output that is itself a copy of a run (``--energy-json``): it may replace an
earlier copy, which is a results file too, as long as that copy is not named or stored like a saved run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from energybench.atomic import write_error, write_text_atomic
from energybench.errors import ConfigError

#: How many bytes of an existing file are read to tell whether it is a results file: ``Run.to_json`` writes
#: ``schema`` first, so a run saved by energybench is recognised from its first line.
_HEAD_BYTES = 64 * 1024
#: Files up to this size that are JSON objects are parsed whole when their head does not decide it.
_PARSE_MAX_BYTES = 64 * 1024 * 1024
_SCHEMA_RE = re.compile(r'"schema"\s*:\s*"energybench/run"')


def check_outputs(outputs: Sequence[tuple[str | None, str]], *, inputs: Iterable[str | os.PathLike[str]] = (),
                  results: str | os.PathLike[str] | None = None, run_copy: bool = False) -> None:
    """Refuse, before any work, every output path that would destroy something or cannot be written.

    ``outputs`` are (path, what) pairs (a ``None`` or ``"-"`` path is standard output and skipped);
    ``inputs`` the files the command reads; ``results`` its results directory (default ``results``, for
    commands without ``--results``); ``run_copy`` says the outputs are copies of a run (they may replace an
    earlier copy, see the module docstring).
    """
    if results is None:
        from energybench.record.storage import DEFAULT_DIR

        results = DEFAULT_DIR
    given = [(p, what) for p, what in outputs if p and p != "-"]
    ins = [Path(i) for i in inputs]
    for i, (path, what) in enumerate(given):
        for other, other_what in given[:i]:
            if _same_file(Path(path), Path(other)):
                raise ConfigError(f"cannot write the {what} to {path}: the {other_what} goes there too; give each "
                                  "output its own path")
        refuse_saved_run(path, what, inputs=ins, results=results, run_copy=run_copy)
        check_writable(path, what)


def refuse_saved_run(path: str | os.PathLike[str], what: str, *, inputs: Iterable[Path] = (),
                     results: str | os.PathLike[str] | None = None, run_copy: bool = False) -> None:
    """``ConfigError`` (exit 2) when writing ``what`` to ``path`` would replace a saved run or an input."""
    reason = saved_run_reason(Path(path), inputs=inputs, results=results, run_copy=run_copy)
    if reason is not None:
        raise ConfigError(f"refusing to write the {what} to {os.fspath(path)}: {reason} (nothing was written); "
                          "give another path")


def saved_run_reason(path: Path, *, inputs: Iterable[Path] = (), results: str | os.PathLike[str] | None = None,
                     run_copy: bool = False) -> str | None:
    """Why ``path`` must not be written (it is an input, a saved run, a results file), or ``None``."""
    from energybench.record.storage import is_run_file_name

    for source in inputs:
        if _same_file(path, source):
            return "it is an input of this command"
    run_name = is_run_file_name(path.name)
    # a run copy may replace a results file not named like a saved run: its own earlier copy (--energy-json)
    if (run_name or not run_copy) and is_results_file(path):
        return "it is a saved energybench run"
    if run_name and results is not None and _same_file(path.parent, Path(results)):
        return (f"it is named like a saved run in the results directory {os.fspath(results)}, where it would be "
                "read as one")
    return None


def is_results_file(path: Path) -> bool:
    """Whether ``path`` is an existing file whose content is an energybench results file (even a damaged one:
    its schema line is enough, since it is still somebody's run)."""
    try:
        if not path.is_file():
            return False
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return False
    if not head.lstrip().startswith("{"):
        return False
    if _SCHEMA_RE.search(head[:1024]):
        return True
    if size > _PARSE_MAX_BYTES:
        return _SCHEMA_RE.search(head) is not None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return _SCHEMA_RE.search(head) is not None
    return isinstance(data, dict) and data.get("schema") == "energybench/run"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.abspath(a) == os.path.abspath(b)


def check_writable(path: str, what: str) -> None:
    """Fail early, before any work, when ``path`` clearly cannot be written (a directory, a missing or
    non-directory parent, a name the file system refuses, a read-only file system, no permission). What only
    a write can reveal (a full disk, a size limit) is reported after the figures are printed (``write_output``).
    """
    if "\x00" in path or not path.strip():
        raise ConfigError(f"cannot write the {what} to {path!r}: give a file name (no NUL characters)")
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ConfigError(f"cannot write the {what} to {p}: it is a directory; give a file name")
    if not parent.is_dir():
        blocker = _first_file(parent)
        if blocker is not None:
            raise ConfigError(f"cannot write the {what} to {p}: {blocker} is a file, not a directory; pick another "
                              "path")
        raise ConfigError(f"cannot write the {what} to {p}: directory {parent} does not exist; create it first")
    if len(os.fsencode(p.name)) > _name_max(parent):
        raise ConfigError(f"cannot write the {what} to {p}: the file name is too long for this file system; "
                          "use a shorter name")
    if _read_only(parent):
        raise ConfigError(f"cannot write the {what} to {p}: the file system is read-only; write elsewhere")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ConfigError(f"cannot write the {what} to {p}: permission denied; choose a writable path")


def write_output(path: str | os.PathLike[str], text: str, what: str, kept: str = "") -> None:
    """Atomic write; a failure is one ``WriteError`` line (exit 73) naming the file, the reason and the fix."""
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise write_error(f"the {what}", path, exc, kept) from None


def _first_file(p: Path) -> Path | None:
    """The first component of ``p`` that exists and is not a directory (``report.html/x`` -> ``report.html``)."""
    for q in reversed((p, *p.parents)):
        if q.exists() and not q.is_dir():
            return q
    return None


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False
