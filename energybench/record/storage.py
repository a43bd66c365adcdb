"""Results files on disk: one per run, numbered, saved atomically; their content is ``energybench.record``'s.

Why the care: a CI job and a developer (or two xdist workers) may save into the same directory at once, and
a crash mid-write must never leave half a file that later breaks a comparison. A run's number is claimed
with ``O_CREAT | O_EXCL`` (exactly one writer wins each number); the content goes to a temp file in the same
directory and is moved into place with ``os.replace``, so readers see either nothing or the whole file.

A write that fails (full disk, read-only or missing directory, a name the file system refuses) is one
``WriteError`` naming the file and the fix; the file saved before, if any, is left as it was. Claim markers
and temp files of a writer that was killed are removed by the next save into the directory.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from energybench.atomic import fcntl, unlink_if_unlocked, write_error, write_text_atomic
from energybench.errors import ResultsError
from energybench.record import Run

DEFAULT_DIR = "results"

_RUN_FILE = re.compile(r"^(?P<num>\d{4,})_(?P<name>.+)\.json$")
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_CLAIM_TRIES = 1000
#: Longest run name kept in a file name: ``NNNN_<name>.json`` and its temp file stay far below the 255-byte
#: limit of common file systems, so no run name can make a save fail.
MAX_NAME_CHARS = 120


def slug(name: str) -> str:
    """A run name safe for a file name (``feature/x y`` -> ``feature-x-y``), cut to ``MAX_NAME_CHARS``."""
    cleaned = _NAME_OK.sub("-", name.strip()).strip("-.")
    return cleaned[:MAX_NAME_CHARS].rstrip("-.") or "run"


def list_runs(directory: str | os.PathLike[str] = DEFAULT_DIR) -> list[Path]:
    """Run files in ``directory`` ordered by their counter (oldest first); none if it does not exist."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m["num"]), p) for p in d.iterdir() if (m := _RUN_FILE.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def is_run_file_name(name: str) -> bool:
    """Whether ``name`` is how a saved run's file is named (``NNNN_name.json``)."""
    return _RUN_FILE.match(name) is not None


def _run_number(path: Path) -> int | None:
    m = _RUN_FILE.match(path.name)
    return int(m["num"]) if m else None


def _numbers_in_use(d: Path) -> set[int]:
    used = set()
    for p in d.iterdir():
        m = _RUN_FILE.match(p.name)
        if m:
            used.add(int(m["num"]))
        elif p.name.startswith(".claim-") and p.name[7:].isdigit():
            if unlink_if_unlocked(p):  # its writer died before writing the run: the number is free again
                continue
            used.add(int(p.name[7:]))
    return used


def _claim_number(d: Path) -> tuple[int, Path, int]:
    """Reserve the next free counter with an exclusive-create marker, ``flock``-ed while the run is written
    (so a later save can tell a dead writer's marker from a live one); retry on collision."""
    for _ in range(_MAX_CLAIM_TRIES):
        used = _numbers_in_use(d)
        num = max(used, default=0) + 1
        marker = d / f".claim-{num:04d}"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:  # a cleanup removed it before we locked it: claim again
                os.close(fd)
                continue
        # A writer may have finished (file in place, marker removed) between our listing and our claim.
        if any(_run_number(p) == num for p in d.iterdir()):
            _release(marker, fd)
            continue
        return num, marker, fd
    raise ResultsError(f"could not claim a run number in {d}: too many concurrent writers; retry")


def _release(marker: Path, fd: int) -> None:
    marker.unlink(missing_ok=True)
    os.close(fd)


class RunFile:
    """A run's file in a results directory: numbered once, then rewritten atomically as the run grows.

    ``energybench run`` saves after every trial, so Ctrl-C or a crash keeps every finished trial; each
    write replaces the whole file through a temp file and ``os.replace``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, run: Run, directory: str | os.PathLike[str] = DEFAULT_DIR, name: str | None = None) -> tuple[
            RunFile, Run]:
        """Claim ``<directory>/NNNN_<name>.json`` and write ``run`` there; returns the file and the run as saved
        (with its ``run_id``, ``name`` and ``path``)."""
        d = Path(directory)
        run = replace(run, name=slug(name or run.name or "run"))
        try:
            d.mkdir(parents=True, exist_ok=True)
            num, marker, fd = _claim_number(d)
        except OSError as exc:
            raise write_error("a run file in results directory", d, exc) from None
        try:
            run = replace(run, run_id=f"{num:04d}_{run.name}")
            path = d / f"{run.run_id}.json"
            saved = cls(path).write(run)
        finally:
            with contextlib.suppress(OSError):
                _release(marker, fd)
        return cls(path), saved

    def write(self, run: Run) -> Run:
        """Rewrite the file with ``run``; ``WriteError`` if that fails (the previous version stays intact)."""
        try:
            write_text_atomic(self.path, run.to_json())
        except OSError as exc:
            raise write_error("the run file", self.path, exc) from None
        return replace(run, path=str(self.path))


def save_run(run: Run, directory: str | os.PathLike[str] = DEFAULT_DIR, name: str | None = None) -> Path:
    """Save ``run`` as ``<directory>/NNNN_<name>.json`` and return the path."""
    return RunFile.create(run, directory, name)[0].path


def write_run(path: str | os.PathLike[str], run: Run) -> Path:
    """Write ``run`` to an exact path (``--energy-json``), atomically."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(target, run.to_json())
    except OSError as exc:
        raise write_error("the run JSON", target, exc) from None


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read one results file (any supported schema version); every failure is a one-line ``ResultsError``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"results file {p} does not exist; check the path or run id") from None
    except IsADirectoryError:
        raise ResultsError(f"{p} is a directory; name a results file, a run id or 'latest'") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ResultsError(f"cannot read results file {str(p)!r}: {exc}") from None
    run = Run.from_json(text, where=str(p))
    return replace(run, run_id=run.run_id or p.stem, path=str(p))


def resolve_run(ref: str | os.PathLike[str], directory: str | os.PathLike[str] = DEFAULT_DIR) -> Path:
    """Turn a file path, a run id (``0003_main``), a counter (``3`` / ``0003``), a run name or ``latest``
    (``latest-1`` for the one before) into a path; ``ResultsError`` if nothing matches."""
    text = os.fspath(ref)
    if "\x00" in text:
        raise ResultsError(f"no run {text!r}: a run reference cannot contain a NUL character")
    p = Path(text)
    if p.is_file() or text.endswith(".json") or os.sep in text:
        return p
    if not Path(directory).is_dir():  # not "it holds 0 runs": a mistyped --results must say so
        what = "is not a directory" if Path(directory).exists() else "does not exist"
        raise ResultsError(f"no run {text!r}: results directory {os.fspath(directory)} {what}; pass --results DIR "
                           "naming the directory the runs were saved in (default: results)")
    runs = list_runs(directory)
    m = re.fullmatch(r"latest(?:-(\d+))?", text)
    if m:
        back = int(m.group(1) or 0)
        if len(runs) <= back:
            raise ResultsError(f"no run {text!r} in {directory}: it holds {len(runs)} run(s); save one first")
        return runs[-1 - back]
    if text.isdigit():
        hits = [r for r in runs if _run_number(r) == int(text)]
    else:
        hits = [r for r in runs if r.stem == text] or [r for r in runs if r.stem.split("_", 1)[-1] == text]
    if not hits:
        known = ", ".join(r.stem for r in runs[-5:]) or "none"
        raise ResultsError(f"no run {text!r} in {directory} (latest: {known}); give a file, run id or 'latest'")
    return hits[-1]


def runs_named(name: str, directory: str | os.PathLike[str] = DEFAULT_DIR,
               before: int | None = None) -> Iterator[Run]:
    """Saved runs named ``name``, newest first (only those numbered below ``before`` when given), loaded one by
    one as the caller iterates. Unreadable files are skipped, not fatal: a history is read for context."""
    for path in reversed(list_runs(directory)):
        number = _run_number(path)
        if number is None or (before is not None and number >= before) or path.stem.split("_", 1)[-1] != name:
            continue
        try:
            yield load_run(path)
        except ResultsError:
            continue


def history_runs(baseline: Run, directory: str | os.PathLike[str] = DEFAULT_DIR, limit: int = 10) -> list[Run]:
    """Up to ``limit`` saved runs of the baseline's name (``main``, ``main``, ...) older than the baseline, newest
    first: the run-to-run spread a gate compares against. Unreadable files are skipped, not fatal."""
    if limit <= 0 or baseline.path is None:
        return []
    own = _run_number(Path(baseline.path))
    if own is None:
        return []
    return list(itertools.islice(runs_named(baseline.name, directory, before=own), max(limit - 1, 1)))


def load_readable(paths: Sequence[Path]) -> tuple[list[Run], list[str]]:
    """The runs of ``paths`` that load, in order, and one line for each file that does not (naming it, with
    why): one bad file in a directory must not cost the report or the history of all the others."""
    runs, skipped = [], []
    for path in paths:
        try:
            runs.append(load_run(path))
        except ResultsError as exc:
            skipped.append(f"skipped {exc}")
    return runs, skipped


def load_latest(ref: str, directory: str | os.PathLike[str] = DEFAULT_DIR) -> tuple[Run, list[str]] | None:
    """``latest`` / ``latest-N`` counted over the runs of ``directory`` that load, and a line for each newer file
    skipped because it does not; ``None`` when ``ref`` is no such reference (or names a file)."""
    m = re.fullmatch(r"latest(?:-(\d+))?", os.fspath(ref))
    if m is None or Path(ref).is_file():
        return None
    back, seen, skipped = int(m.group(1) or 0), 0, []
    for path in reversed(list_runs(directory)):
        try:
            run = load_run(path)
        except ResultsError as exc:
            skipped.append(f"skipped {exc}")
            continue
        if seen == back:
            return run, skipped
        seen += 1
    raise ResultsError(f"no run {ref!r} in {directory}: it holds {seen} readable run(s); save one first")
