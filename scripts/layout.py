"""Print the package's layout, as docs/development.md shows it: every folder of ``energybench/`` with the first
sentence of its docstring, and every module, read from the code so the page cannot drift.

    python scripts/layout.py            # print it
    python scripts/layout.py --write    # replace the tree in docs/development.md
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "energybench"
PAGE = ROOT / "docs" / "development.md"
START, END = "<!-- layout: scripts/layout.py -->\n```text\n", "```\n<!-- /layout -->"
WIDTH = 118


def summary(path: Path) -> str:
    """The first sentence of a module's docstring, on one line (``-`` when it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "-"
    first = " ".join(doc.split("\n\n", 1)[0].split())
    return first.split(". ", 1)[0].rstrip(".")


def _modules(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.py") if p.name != "__init__.py")


def _packages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def _block(folder: Path, depth: int) -> list[str]:
    """A folder: its name and summary, then its modules wrapped under them, then its sub-folders."""
    indent = "  " * depth
    out = [f"{indent}{folder.name}/  {summary(folder / '__init__.py')}"[:WIDTH]]
    names, line = _modules(folder), indent + "    "
    for name in names:
        if len(line) + len(name) + 1 > WIDTH and line.strip():
            out.append(line.rstrip())
            line = indent + "    "
        line += name + " "
    if line.strip():
        out.append(line.rstrip())
    for sub in _packages(folder):
        out += _block(sub, depth + 1)
    return out


def tree() -> str:
    top = ["energybench/  " + " ".join(["__init__", *_modules(PACKAGE)])]
    return "\n".join(top + [line for sub in _packages(PACKAGE) for line in _block(sub, 1)]) + "\n"


def replace_tree(page: str) -> str:
    start = page.index(START) + len(START)
    end = page.index(END, start)
    return page[:start] + tree() + page[end:]


if __name__ == "__main__":
    if "--write" in sys.argv:
        PAGE.write_text(replace_tree(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(tree(), end="")
