"""Every ``energybench`` command the README and the manual show runs, and exits as the page says.

The convention (docs/development.md): each ``$ energybench ...`` line of a ```console block runs, from a
scratch directory holding saved runs that a real set-up made first (``energybench run`` of a tiny LM suite,
three times: 0001_main, 0002_pr, 0003_quick) and the files the pages name (train.py, bench.py, grid.csv).
HTML comments on the lines right before a fence change that:

* ``<!-- not runnable: WHY -->`` leaves the block out, ``<!-- not runnable (run, ab main): WHY -->`` only
  the lines whose command starts with one of those words; WHY is required, and a prefix must match a line;
* ``<!-- exit (compare): 0, 1, 6 -->`` lets those lines exit so (a gate's verdict on real measurements: pass,
  regression, blind); every other line must exit 0;
* ``<!-- runnable -->`` makes another fence's ``energybench`` lines run too (the CI workflow's YAML).

Each command runs once (a command on two pages is checked against both) in its own copy of the scratch
directory, so one that saves runs never changes another's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from exporter_fixtures import TINY

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", flags=re.S | re.M)
MARKER = re.compile(r"^<!--\s*(?P<text>.*?)\s*-->\s*$")
NOT_RUNNABLE = re.compile(r"not runnable(?:\s*\((?P<which>[^)]*)\))?\s*:\s*(?P<why>.*)")
EXIT = re.compile(r"exit\s*\((?P<which>[^)]*)\)\s*:\s*(?P<codes>[\d,\s]+)")
COMMAND = re.compile(r"^\s*(?:\$\s+)?energybench\s+(?P<args>.*)$")
RUN_NAMES = ("main", "pr", "quick")  # the set-up's runs, in order: 0001_main, 0002_pr, 0003_quick
SUITE = f"from energybench import Suite\nSUITES = [Suite('lm', methods=['int8-dynamic'], options={{'lm': {TINY!r}}})]\n"
SCRIPT = "total = sum(i * i for i in range({n}))\nprint(total)\n"
TIMEOUT_S = 120


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    commands: list[tuple[int, str]]  # (line number, the words after "energybench")
    markers: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # prefix ("" for the block) -> why
    codes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # prefix -> allowed exit codes

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"

    def runnable(self) -> bool:
        return self.lang == "console" or "runnable" in self.markers

    def skip_reason(self, args: str) -> str | None:
        return next((why for prefix, why in self.skipped.items() if _starts(args, prefix)), None)

    def allowed(self, args: str) -> tuple[int, ...]:
        return next((codes for prefix, codes in self.codes.items() if _starts(args, prefix)), (0,))


def _starts(args: str, prefix: str) -> bool:
    return args.split()[: len(prefix.split())] == prefix.split()


def _markers(lines: list[str], fence_index: int) -> list[str]:
    """The HTML comments on the lines right above a fence (nearest last)."""
    found: list[str] = []
    i = fence_index - 1
    while i >= 0 and (m := MARKER.match(lines[i])):
        found.insert(0, m["text"])
        i -= 1
    return found


def _blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    lines = text.split("\n")
    out = []
    for m in FENCE.finditer(text):
        first = text.count("\n", 0, m.start())
        commands = [(first + 2 + i, c["args"].strip()) for i, line in enumerate(m["body"].split("\n"))
                    if (c := COMMAND.match(line))]
        block = Block(page, first + 1, m["lang"], commands, _markers(lines, first))
        for marker in block.markers:
            if (skip := NOT_RUNNABLE.fullmatch(marker)) is not None:
                for prefix in (skip["which"] or "").split(",") if skip["which"] else [""]:
                    block.skipped[prefix.strip()] = skip["why"].strip()
            elif (ex := EXIT.fullmatch(marker)) is not None:
                codes = tuple(int(c) for c in re.split(r"[,\s]+", ex["codes"].strip()) if c)
                for prefix in ex["which"].split(","):
                    block.codes[prefix.strip()] = codes
        out.append(block)
    return out


def _commands(blocks: list[Block]) -> dict[tuple[str, ...], list[tuple[Block, int, str]]]:
    """Each runnable command once (``energybench subjects`` is on two pages), with every place it is shown."""
    found: dict[tuple[str, ...], list[tuple[Block, int, str]]] = {}
    for b in blocks:
        if b.runnable():
            for line, args in b.commands:
                if b.skip_reason(args) is None:
                    found.setdefault(tuple(shlex.split(args, comments=True)), []).append((b, line, args))
    return found


BLOCKS = [b for page in PAGES for b in _blocks(page)]
COMMANDS = _commands(BLOCKS)


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


# ------------------------------------------------------------------------------------------------ the markers
def test_the_docs_show_commands_that_run():
    assert len(COMMANDS) >= 20, list(COMMANDS)
    pages = {_rel(b.page) for shown in COMMANDS.values() for b, _, _ in shown}
    assert {"README.md", "docs/ci.md", "docs/reports.md", "docs/carbon.md"} <= pages, pages


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.markers], ids=lambda b: b.where)
def test_markers_say_why_and_match_their_block(block: Block):
    """A block left out says why; a marker naming a command the block does not show is stale."""
    for marker in block.markers:
        known = NOT_RUNNABLE.fullmatch(marker) or EXIT.fullmatch(marker) or marker == "runnable" or (
            marker.startswith("layout:") or marker.startswith("/layout"))
        assert known, f"{block.where}: unknown marker <!-- {marker} -->"
    for prefix, why in block.skipped.items():
        assert len(why) >= 10, f"{block.where}: say why the block does not run: <!-- not runnable: WHY -->"
        if prefix:
            assert any(_starts(a, prefix) for _, a in block.commands), f"{block.where}: no command {prefix!r}"
    for prefix in block.codes:
        assert any(_starts(a, prefix) for _, a in block.commands), f"{block.where}: no command {prefix!r}"
    if block.skipped or block.codes:
        assert block.runnable() and block.commands, f"{block.where}: a marker on a block with no command"


# ------------------------------------------------------------------------------------------------ running them
def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENERGYBENCH_", "MLFLOW_"))}
    env.update({"HOME": str(home), "ENERGYBENCH_CACHE": str(home / "cache"), "COLUMNS": "100",
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])})
    return env


def _energybench(args: list[str], cwd: Path, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "energybench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env(cwd), stdin=subprocess.DEVNULL)


def _grid_csv() -> str:
    """Hourly factors from two hours ago to two hours ahead: covers any command the test runs."""
    hour = int(time.time()) // 3600 * 3600
    return "timestamp,gCO2e/kWh\n" + "".join(f"{hour + h * 3600},{200 + 10 * h}\n" for h in range(-2, 3))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The set-up every page's commands share: three real saved runs of a tiny LM suite (baseline and
    int8-dynamic, inference), and the scripts and files the pages name."""
    base = tmp_path_factory.mktemp("docs_commands")
    (base / "benchmarks").mkdir()
    (base / "benchmarks" / "suite.py").write_text(SUITE)
    (base / "train.py").write_text(SCRIPT.format(n=300_000))
    (base / "bench.py").write_text(SCRIPT.format(n=1_000))
    (base / "old.py").write_text(SCRIPT.format(n=100_000))
    (base / "new.py").write_text(SCRIPT.format(n=100_000))
    (base / "grid.csv").write_text(_grid_csv())
    for name in RUN_NAMES:
        proc = _energybench(["run", "benchmarks/", "--phase", "inference", "--trials", "4", "--idle", "0",
                             "--no-layers", "--threads", "1", "--region", "FRA", "--name", name], base, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    saved = sorted(p.name for p in (base / "results").iterdir())
    assert saved == [f"{i + 1:04d}_{n}.json" for i, n in enumerate(RUN_NAMES)], saved
    return base


@pytest.mark.parametrize("argv", list(COMMANDS), ids=[f"{_rel(s[0][0].page)}:{s[0][1]}" for s in COMMANDS.values()])
def test_documented_command_runs(argv: tuple[str, ...], scratch: Path, tmp_path: Path):
    where = tmp_path / "here"
    shutil.copytree(scratch, where, symlinks=True)
    proc = _energybench(list(argv), where)
    for block, line, args in COMMANDS[argv]:
        allowed = block.allowed(args)
        assert proc.returncode in allowed, (
            f"{_rel(block.page)}:{line}: `energybench {args}` exited {proc.returncode}, the page says "
            f"{' or '.join(map(str, allowed))}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
