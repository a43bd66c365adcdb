"""The package's shape, checked: one concept a folder, small pieces, imports that run one way, and a
development page whose tree is the code's."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "energybench"
SOURCES = sorted(PACKAGE.rglob("*.py"))

MAX_TOP_MODULES = 12
MAX_MODULE_LINES = 550
MAX_FUNCTION_LINES = 60
MAX_INIT_ATTRIBUTES = 15


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def test_the_top_level_holds_few_modules_besides_its_folders():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_no_module_function_or_class_outgrows_its_limit():
    too_big = []
    for path in SOURCES:
        rel = path.relative_to(ROOT)
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{rel}: {lines} lines")
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{rel}:{node.lineno} {node.name}: {length} lines")
            elif isinstance(node, ast.ClassDef):
                count = len(_init_attributes(node))
                if count > MAX_INIT_ATTRIBUTES:
                    too_big.append(f"{rel}:{node.lineno} {node.name}: {count} attributes set in __init__")
    assert not too_big, too_big


def _init_attributes(cls: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            for node in ast.walk(item):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                    node, ast.AnnAssign | ast.AugAssign) else []
                for target in targets:
                    for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                            names.add(t.attr)
    return names


def _room(module: str) -> str:
    """The folder (or top-level module) a dotted module name lives in."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports_between_rooms() -> dict[str, set[str]]:
    arrows: dict[str, set[str]] = defaultdict(set)
    for path in SOURCES:
        rel = path.relative_to(ROOT).with_suffix("")
        here = _room(".".join(rel.parts)) if len(rel.parts) > 2 else rel.parts[-1]
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("energybench"):
                names = ([f"energybench.{a.name}" for a in node.names] if node.module == "energybench"
                         else [node.module])
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("energybench")]
            else:
                continue
            for name in names:
                there = _room(name)
                if there != here and ((PACKAGE / there).is_dir() or (PACKAGE / f"{there}.py").exists()):
                    arrows[here].add(there)
    return arrows


def test_folders_import_each_other_one_way_only():
    """No two folders (or top-level modules) reach each other, directly or round a loop: data flows one way."""
    arrows = _imports_between_rooms()
    sys.setrecursionlimit(10_000)
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(room: str) -> None:
        order[room] = low[room] = len(order)
        stack.append(room)
        for other in arrows.get(room, ()):
            if other not in order:
                visit(other)
                low[room] = min(low[room], low[other])
            elif other in stack:
                low[room] = min(low[room], order[other])
        if low[room] == order[room]:
            loop = []
            while True:
                other = stack.pop()
                loop.append(other)
                if other == room:
                    break
            if len(loop) > 1:
                loops.append(sorted(loop))

    for room in list(arrows):
        if room not in order:
            visit(room)
    detail = [f"{a} -> {b}" for loop in loops for a in loop for b in arrows[a] if b in loop]
    assert not loops, detail


def test_the_development_page_shows_the_tree_of_the_code():
    sys.path.insert(0, str(ROOT / "scripts"))
    from layout import PAGE, replace_tree

    page = PAGE.read_text(encoding="utf-8")
    assert replace_tree(page) == page, "docs/development.md is stale: run python scripts/layout.py --write"
