"""Results files: versioned JSON, one per run, saved atomically and loaded with validation.

Why the care: a CI job and a developer (or two xdist workers) may save into the same directory at once, and
a crash mid-write must never leave half a file that later breaks a comparison. A run's number is claimed
with ``O_CREAT | O_EXCL`` (exactly one writer wins each number); the content goes to a temp file in the same
directory and is moved into place with ``os.replace``, so readers see either nothing or the whole file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from energybench.atomic import write_text_atomic
from energybench.errors import ResultsError

SCHEMA = "energybench/run"
VERSION = 1
DEFAULT_DIR = "results"

_RUN_FILE = re.compile(r"^(?P<num>\d{4,})_(?P<name>.+)\.json$")
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_CLAIM_TRIES = 1000


def slug(name: str) -> str:
    """A run name safe for a file name (``feature/x y`` -> ``feature-x-y``)."""
    cleaned = _NAME_OK.sub("-", name.strip()).strip("-.")
    return cleaned or "run"


def list_runs(directory: str | os.PathLike[str] = DEFAULT_DIR) -> list[Path]:
    """Run files in ``directory`` ordered by their counter (oldest first); none if it does not exist."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m["num"]), p) for p in d.iterdir() if (m := _RUN_FILE.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def _numbers_in_use(d: Path) -> set[int]:
    used = set()
    for p in d.iterdir():
        m = _RUN_FILE.match(p.name)
        if m:
            used.add(int(m["num"]))
        elif p.name.startswith(".claim-") and p.name[7:].isdigit():
            used.add(int(p.name[7:]))
    return used


def _claim_number(d: Path) -> tuple[int, Path]:
    """Reserve the next free counter with an exclusive-create marker; retry on collision."""
    for _ in range(_MAX_CLAIM_TRIES):
        used = _numbers_in_use(d)
        num = max(used, default=0) + 1
        marker = d / f".claim-{num:04d}"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        # A writer may have finished (file in place, marker removed) between our listing and our claim.
        if any(_RUN_FILE.match(p.name) and int(_RUN_FILE.match(p.name)["num"]) == num for p in d.iterdir()):
            marker.unlink(missing_ok=True)
            continue
        return num, marker
    raise ResultsError(f"could not claim a run number in {d}: too many concurrent writers; retry")


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths turn up in params/extra; store them as plain JSON.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, set):
        return sorted(obj, key=repr)
    # anything else (a user's object in extra_info...) is kept as its repr: losing a run's figures to one
    # unserialisable value would be far worse than a string
    return repr(obj)


def write_json_atomic(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write ``data`` to ``path`` through a temp file + ``os.replace`` (readers never see a partial file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, default=_json_default, allow_nan=True) + "\n"
    return write_text_atomic(target, text)


def save_run(run: Mapping[str, Any], directory: str | os.PathLike[str] = DEFAULT_DIR, name: str | None = None) -> Path:
    """Save ``run`` as ``<directory>/NNNN_<name>.json`` and return the path.

    ``schema``, ``version``, ``name`` and ``run_id`` are filled in; the run is validated first so a bad
    record is refused before anything touches the disk.
    """
    record = dict(run)
    record["schema"] = SCHEMA
    record["version"] = VERSION
    record["name"] = slug(name or record.get("name") or "run")
    validate_run(record, where="run to save")
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot create results directory {d}: {exc.strerror}; pick another directory") from None
    num, marker = _claim_number(d)
    try:
        record["run_id"] = f"{num:04d}_{record['name']}"
        return write_json_atomic(d / f"{record['run_id']}.json", record)
    finally:
        marker.unlink(missing_ok=True)


def validate_run(data: Any, where: str = "results") -> None:
    """Raise ``ResultsError`` (one line) unless ``data`` is a run of a schema version we understand."""
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: not an energybench results file (top level is not an object)")
    if data.get("schema") != SCHEMA:
        raise ResultsError(
            f"{where}: not an energybench results file (schema {data.get('schema')!r}, expected {SCHEMA!r})"
        )
    version = data.get("version")
    if version != VERSION:
        raise ResultsError(
            f"{where}: results schema version {version!r} is not supported (this energybench reads version "
            f"{VERSION}); upgrade energybench or re-run the benchmarks"
        )
    benches = data.get("benchmarks")
    if not isinstance(benches, list):
        raise ResultsError(f"{where}: malformed results file: 'benchmarks' must be a list")
    for i, b in enumerate(benches):
        if not isinstance(b, dict) or not isinstance(b.get("name"), str):
            raise ResultsError(f"{where}: malformed results file: benchmarks[{i}] has no 'name'")
        rounds = b.get("rounds")
        if not isinstance(rounds, list):
            raise ResultsError(f"{where}: malformed results file: benchmark {b['name']!r} has no 'rounds' list")
        for j, r in enumerate(rounds):
            if not isinstance(r, dict):
                raise ResultsError(f"{where}: malformed results file: {b['name']!r} round {j} is not an object")
            for key in ("energy_j", "duration_s"):
                v = r.get(key)
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise ResultsError(
                        f"{where}: malformed results file: {b['name']!r} round {j} has no numeric {key!r}"
                    )


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate one results file; every failure is a one-line ``ResultsError``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"results file {p} does not exist; check the path or run id") from None
    except IsADirectoryError:
        raise ResultsError(f"{p} is a directory; name a results file, a run id or 'latest'") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read results file {p}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{p}: corrupt results file (invalid JSON at line {exc.lineno} column {exc.colno}); delete or re-run"
        ) from None
    validate_run(data, where=str(p))
    data.setdefault("run_id", p.stem)
    data["_path"] = str(p)
    return data


def resolve_run(ref: str | os.PathLike[str], directory: str | os.PathLike[str] = DEFAULT_DIR) -> Path:
    """Turn a file path, a run id (``0003_main``), a counter (``3`` / ``0003``), a run name or ``latest``
    (``latest-1`` for the one before) into a path; ``ResultsError`` if nothing matches."""
    text = os.fspath(ref)
    p = Path(text)
    if p.is_file() or text.endswith(".json") or os.sep in text:
        return p
    runs = list_runs(directory)
    m = re.fullmatch(r"latest(?:-(\d+))?", text)
    if m:
        back = int(m.group(1) or 0)
        if len(runs) <= back:
            raise ResultsError(f"no run {text!r} in {directory}: it holds {len(runs)} run(s); save one first")
        return runs[-1 - back]
    if text.isdigit():
        hits = [r for r in runs if int(_RUN_FILE.match(r.name)["num"]) == int(text)]
    else:
        hits = [r for r in runs if r.stem == text] or [r for r in runs if _RUN_FILE.match(r.name)["name"] == text]
    if not hits:
        known = ", ".join(r.stem for r in runs[-5:]) or "none"
        raise ResultsError(f"no run {text!r} in {directory} (latest: {known}); give a file, run id or 'latest'")
    return hits[-1]


def benchmark_source(bench: Mapping[str, Any]) -> str:
    """A benchmark's provenance from its rounds: ``measured`` only when every round was, as for a single
    ``Measurement``; ``estimated`` as soon as one was; ``none`` without rounds. Every table asks here."""
    sources = {r.get("source") for r in bench.get("rounds") or []} - {None}
    if not sources:
        return "none"
    return "measured" if sources == {"measured"} else "estimated"
