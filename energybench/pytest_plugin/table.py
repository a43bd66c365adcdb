"""What a pytest session prints: the energy table (its options, as pytest-benchmark's), the comparison and
gate lines, notes and errors at the end, and progress lines while it runs.

* ``--energy-sort``, ``--energy-columns`` and ``--energy-group-by`` shape the table as pytest-benchmark's
  ``--benchmark-sort/-columns/-group-by`` do; a bad value is a usage error (exit 4) naming the valid ones.
* Progress: a long energy session says how many benchmarks are done, the time elapsed and about how long is
  left (``render.progress``), as plain lines between pytest's own output (pytest owns the terminal line, so
  nothing is redrawn in place), at most every ``PROGRESS_EVERY_S`` seconds, so a short session prints none;
  under torchrun only rank 0 prints.
"""

from __future__ import annotations

import io
import math
import time
from typing import Any

import pytest

from energybench.distributed.launcher import is_nonzero_rank
from energybench.render.progress import Progress
from energybench.render.pytest_table import COLUMNS, GROUPS, SORTS, parse_columns, parse_group_by, parse_sort
from energybench.render.tables import DEFAULT_WIDTH

#: A progress line at most this often (seconds): a session shorter than this prints none.
PROGRESS_EVERY_S = 10.0


def add_table_options(group: Any) -> None:
    group.addoption("--energy-sort", metavar="COL", default="energy",
                    help=f"sort the energy table by one of {', '.join(SORTS)} (default: energy, lowest first)")
    group.addoption("--energy-columns", metavar="LIST", default=None,
                    help=f"comma list of the energy table's columns: {', '.join(COLUMNS)} (default: all that fit)")
    group.addoption("--energy-group-by", metavar="LIST", default=None,
                    help=f"group the energy table by a comma list of {', '.join(GROUPS)}, param:NAME")
    group.addoption("--energy-progress", metavar="S", default=None,
                    help=f"a progress line (done, elapsed, left) at most every S seconds (default "
                         f"{PROGRESS_EVERY_S:g}; 0: after every energy benchmark; off: never)")


def table_settings(config: pytest.Config) -> dict[str, Any]:
    """The table options, parsed; a bad one is a ``pytest.UsageError`` naming it and the valid values."""
    opt = config.getoption
    out: dict[str, Any] = {}
    for flag, key, parse, raw in (("--energy-sort", "sort", parse_sort, opt("energy_sort")),
                                  ("--energy-columns", "columns", parse_columns, opt("energy_columns")),
                                  ("--energy-group-by", "group_by", parse_group_by, opt("energy_group_by"))):
        if raw is None:
            continue
        try:
            out[key] = parse(raw)
        except ValueError as exc:
            raise pytest.UsageError(f"energybench: {flag} {raw!r}: {exc}") from None
    return out


def table_width(tr: Any) -> int:
    """The terminal's width when pytest writes to one, else ``DEFAULT_WIDTH`` (a CI log, a file)."""
    if getattr(tr, "isatty", False):
        return int(tr.config.get_terminal_writer().fullwidth)
    return DEFAULT_WIDTH


def progress_every(raw: str | None) -> float:
    """``--energy-progress``: seconds between progress lines (``off``: never)."""
    if raw is None:
        return PROGRESS_EVERY_S
    if str(raw).strip().lower() in ("off", "no", "never"):
        return math.inf
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise pytest.UsageError(f"energybench: --energy-progress {raw!r}: give seconds >= 0 (e.g. 30), or off")
    return value


class SessionProgress:
    """Counts the session's energy benchmarks down and prints, now and then, how long the rest will take."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.every_s = progress_every(config.getoption("energy_progress"))
        self.progress: Progress | None = None
        self.last_line = time.monotonic()
        self.quiet = is_nonzero_rank() or config.getoption("verbose", 0) <= -2

    def planned(self, nodeids: list[str]) -> None:
        if nodeids:
            self.progress = Progress(nodeids, 1, io.StringIO(), False, what="energy benchmarks")
            self.last_line = time.monotonic()

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """pytest's hook after a test's report is written (outside output capture)."""
        self.finished(nodeid)

    def finished(self, nodeid: str) -> None:
        """An energy benchmark's test is done; print the status if the last line is old enough."""
        p = self.progress
        if p is None or nodeid not in p.count:
            return
        p.step(nodeid)
        now = time.monotonic()
        if self.quiet or now - self.last_line < self.every_s or p.done >= p.total:
            return
        self.last_line = now
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"energybench: {p.status()}")


def headline_lines(records: list[Any], budget: float, width: int) -> list[str]:
    """Tests that compare methods (``@pytest.mark.energy(method=...)`` with ``energy.quality``) get the same
    headlines as a report: the biggest significant saving within the quality budget (``--energy-quality-budget``)."""
    from energybench.record import Run
    from energybench.render.headlines import text_lines
    from energybench.render.report_lines import wrap
    from energybench.report import build_report

    if not any(not b.is_baseline for b in records):
        return []
    run = Run(name="pytest", created="", benchmarks=tuple(records), kind="pytest")
    lines = text_lines(build_report([run], regions=(), quality_budget=budget))
    return ["headlines:", *(part for line in lines for part in wrap(line, width, "  "))] if lines else []


def show(es: Any, tr: Any) -> None:
    """The energy table, comparison, notes and errors of session ``es``; an unexpected failure here is one
    line and exit 3, never a lost figure."""
    from energybench.errors import debug_enabled, internal_error_line
    from energybench.render.printable import printable

    try:
        _show(es, tr)
    except Exception as exc:
        if debug_enabled():
            raise
        es.outcome.internal_errors.append(internal_error_line(exc))
        if es.session is not None:
            es.set_exit_status(es.session)
    for err in dict.fromkeys(es.outcome.internal_errors):  # once each, however many tests hit it
        tr.write_line(f"energybench: {printable(err)}", red=True, bold=True)


def _show(es: Any, tr: Any) -> None:
    from energybench.render.printable import printable

    o, out, width = es.options, es.outcome, table_width(tr)
    if o.disabled:
        tr.write_line("energy benchmarks ran once each, unmeasured (--energy-disable)")
    if es.records:
        _records(es, tr, width)
    if es.tapped:
        _tapped(es, tr)
    if out.saved_path:
        tr.write_line(f"energy results saved to {out.saved_path}")
    if out.comparison is not None:
        from energybench.render.comparison import format_table

        tr.write_sep("-", "energy comparison")
        for line in format_table(out.comparison, width=width).splitlines():
            red = line.startswith("FAIL") or "regression(s)" in line
            tr.write_line(line, red=red, bold=red)
    for note in [*es.meter.notes, *out.notes]:
        tr.write_line(printable(f"note: {note}"))
    for err in [*out.write_errors, *out.errors]:
        tr.write_line(printable(f"energybench: error: {err}"), red=True, bold=True)


def _records(es: Any, tr: Any, width: int) -> None:
    from energybench.render.printable import printable
    from energybench.render.pytest_table import summary_table
    from energybench.render.report_lines import wrap

    tr.write_sep("-", "energy benchmarks")
    fitted = summary_table(es.records, width=width, **es.options.table)
    for line in fitted.lines:
        tr.write_line(line)
    if fitted.dropped:
        tr.write_line(f"(left out to fit the terminal: {', '.join(fitted.dropped)}; choose with --energy-columns)")
    for line in headline_lines(es.records, es.options.quality_budget, width):
        tr.write_line(line)
    for rec in es.records:
        for w in ([rec.stability_warning] if rec.stability_warning else []) + list(rec.warnings):
            for line in wrap(printable(f"warning: {rec.name}: {w}"), width, more="  "):
                tr.write_line(line, yellow=True)
    if es.provider is None:
        tr.write_line("note: no CO2e: pass --energy-region (e.g. FRA) to convert joules to grams")


def _tapped(es: Any, tr: Any) -> None:
    from energybench import units
    from energybench.render.printable import printable

    tr.write_sep("-", "energy of pytest-benchmark rounds (--energy)")
    for name, info in es.tapped:
        tr.write_line(printable(f"{name}: {units.joules(info['energy_per_call_j'])}/call, "
                                f"{units.watts(info['energy_power_w'])} ({info['energy_source']})"))
