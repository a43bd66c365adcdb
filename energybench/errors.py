"""Error types whose message is the whole story.

Every error a user can cause (bad region, unreadable counter, malformed file) is an ``EnergybenchError``:
its ``str()`` is one line that names the problem and the fix, and the CLI prints exactly that line and exits
with ``exit_code`` instead of showing a traceback.
"""

from __future__ import annotations

#: Exit codes shared by every command (docs/failure-modes.md). 1 is a verdict (a regression, a failed command)
#: and 2 is bad input; the codes below are for what is neither, so CI can never mistake them for a verdict.
EXIT_BAD_INPUT = 2
EXIT_PLUGIN = 3
#: An internal error (a bug in energybench): sysexits' EX_SOFTWARE.
EXIT_INTERNAL = 70
#: Figures were measured and printed but a file could not be written: sysexits' EX_CANTCREAT.
EXIT_NOT_SAVED = 73
#: Stopped by Ctrl-C (SIGINT) or by a CI timeout's SIGTERM, after keeping what was finished: 128 + signal.
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

#: Set to 1 to see the traceback of an internal error (and to let it propagate) instead of the one-line message.
DEBUG_ENV = "ENERGYBENCH_DEBUG"


class EnergybenchError(Exception):
    """A problem the user can fix; the message says how."""

    exit_code: int = 2


class ConfigError(EnergybenchError):
    """Bad option or argument (interval, PUE, intensity, gate expression...)."""


class UnknownRegionError(ConfigError):
    """A grid region that the intensity data does not know."""


class IntensityDataError(ConfigError):
    """An intensity time series that is malformed or does not cover the window."""


class SamplerError(EnergybenchError):
    """A sampler that cannot read its hardware (permission, missing driver, vanished device)."""

    exit_code = 1


class ResultsError(EnergybenchError):
    """A results file that is missing, malformed, or of an unknown schema version."""


class WindowError(EnergybenchError):
    """Misuse of measurement windows (ending one that was never begun, ...)."""


class WriteError(EnergybenchError):
    """An output file (run file, ``--json``, a report) that could not be written. The figures were printed
    and whatever was saved before is intact; the message names the file, the reason and the fix."""

    exit_code = EXIT_NOT_SAVED


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI timeout, ``kill``), raised where Ctrl-C would be so the same code keeps finished work."""

    exit_code = EXIT_SIGTERM


def debug_enabled() -> bool:
    """Whether ``ENERGYBENCH_DEBUG`` asks for tracebacks of internal errors."""
    import os

    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def bug_tracker() -> str:
    """Where to report a bug: the package's ``Issues``/``Bug Tracker`` project URL when its metadata has one."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls = metadata("energybench").get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):  # pragma: no cover - running from a bare source tree
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("issues", "bug tracker", "bugs") and url.strip():
            return url.strip()
    return "the energybench issue tracker (see docs/failure-modes.md, 'Reporting an internal error')"


def internal_error_line(exc: BaseException) -> str:
    """The one line an unexpected exception becomes: what it was, that it is a bug and not a verdict, and
    where to report it with the traceback (kept behind ``ENERGYBENCH_DEBUG=1``)."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return (f"internal error ({what}): this is a bug in energybench, not a verdict; rerun with {DEBUG_ENV}=1 "
            f"for the traceback and report it to {bug_tracker()}")
