"""Atomic file writes: a temp file in the target's directory, fsync, then ``os.replace``.

A reader (or a crash, or a second run writing the same file) never sees half a results file or report:
until ``os.replace`` the old file is untouched, so a full disk or a killed writer leaves whatever was saved
before intact.

A writer that is killed (SIGKILL, OOM, power loss) between creating its temp file and ``os.replace`` leaves
the temp file behind. Every temp file is ``flock``-ed by its writer until it is moved into place, and the
kernel drops that lock when the writer dies, so the next write into the same directory removes the temp
files nobody holds (``clean_stale_temps``) and never one that a concurrent writer is still filling. If a
cleaner wins the instant between a writer's ``mkstemp`` and its lock, the writer finds its temp gone at
``os.replace`` and simply writes again.

``mkstemp`` creates files 0600; results and reports are meant to be shared, so the final file gets the
permissions the user's umask gives any new file. Temp names are kept short (the target's name is cut), so a
target name that is itself legal never fails for its temp file's length.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, so no cleanup of other writers' temps
    fcntl = None  # type: ignore[assignment]

from energybench.errors import WriteError

#: Every temp file this module creates ends with this, so cleanup never touches another tool's files.
TEMP_SUFFIX = ".energybench-tmp"
_TEMP_NAME_CHARS = 60
_ATTEMPTS = 3


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically; ``OSError`` propagates for the caller to phrase
    (``write_error`` turns it into one line)."""
    target = Path(path)
    if target.is_dir():  # os.replace onto a directory fails only after the temp file was written
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    directory = target.parent
    clean_stale_temps(directory)
    data = text.encode("utf-8")
    for attempt in range(_ATTEMPTS):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:_TEMP_NAME_CHARS]}.", suffix=TEMP_SUFFIX, dir=directory)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held until the file is in place: "this temp is alive"
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
            try:
                os.replace(tmp, target)
            except FileNotFoundError:
                if attempt + 1 < _ATTEMPTS and directory.is_dir() and not os.path.exists(tmp):
                    continue  # a cleaner took our temp before we locked it: write it again
                raise
            return target
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)
    raise AssertionError("unreachable")  # pragma: no cover


def clean_stale_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove temp files of writers that died before moving them into place; return what was removed.

    A temp file is stale when nobody holds its lock: a live writer holds it from creation to ``os.replace``.
    Problems (an unreadable directory, a file that vanished meanwhile) are ignored: cleanup is a courtesy and
    must never cost the write it precedes.
    """
    if fcntl is None:  # pragma: no cover
        return []
    removed: list[Path] = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(".") and n.endswith(TEMP_SUFFIX)]
    except OSError:
        return removed
    for name in names:
        path = Path(directory, name)
        if unlink_if_unlocked(path):
            removed.append(path)
    return removed


def unlink_if_unlocked(path: Path) -> bool:
    """Delete ``path`` if no process holds an ``flock`` on it (its owner died); ``True`` if deleted."""
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        try:
            same = os.path.samestat(os.fstat(fd), os.lstat(path))
        except OSError:
            return False
        if not same:
            return False  # replaced meanwhile by a new file of the same name: not ours to judge
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True
    finally:
        os.close(fd)


#: Why a write failed, in words a user can act on (errno -> the fix); the OS's own text comes first.
_FIXES = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free space or write elsewhere",
    errno.EFBIG: "the file size limit was reached (ulimit -f): raise it or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or fix the directory's permissions",
    errno.EPERM: "not permitted: write elsewhere or fix the directory's permissions",
    errno.ENAMETOOLONG: "the file name is too long: use a shorter name or directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory: pick another path",
    errno.EISDIR: "it is a directory: give a file name",
    errno.ENOENT: "the directory does not exist: create it or pick another path",
    errno.EIO: "the device reported an I/O error: check the disk",
}


def describe_os_error(exc: OSError) -> str:
    """``No space left on device (the disk is full: free space or write elsewhere)``."""
    reason = exc.strerror or type(exc).__name__
    fix = _FIXES.get(exc.errno or 0)
    return f"{reason} ({fix})" if fix else reason


def write_error(what: str, path: str | os.PathLike[str], exc: OSError, kept: str = "") -> WriteError:
    """One line naming what could not be written, where, why, and what was kept instead."""
    tail = f"; {kept}" if kept else ""
    return WriteError(f"could not write {what} {os.fspath(path)}: {describe_os_error(exc)}{tail}")
