"""Call shapes of a vendor binding, read from its source without importing it, to check a fake against.

Some bindings cannot be imported where tests run (amdsmi needs ROCm's ``libamd_smi.so`` at import time;
zeus-apple-silicon only builds on macOS), so ``inspect.signature`` on the real module is impossible. Their
Python source (or a recorded copy of its signatures) still says each function's parameters: names, kinds and
which have defaults, which is what a fake must match for the sampler's calls to be the real calls.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Shape = list[list[Any]]  # [[name, kind, has_default], ...]


def installed_source(package: str, module: str) -> Path | None:
    """Where an installed package's module source lies, found without executing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / f"{module}.py"
    return path if path.exists() else None


def _shape(args: ast.arguments) -> Shape:
    out: Shape = []
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    for i, a in enumerate(positional):
        out.append([a.arg, "positional", i >= first_default])
    if args.vararg:
        out.append([args.vararg.arg, "var_positional", False])
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append([a.arg, "keyword_only", d is not None])
    if args.kwarg:
        out.append([args.kwarg.arg, "var_keyword", False])
    return out


def source_shapes(path: Path, names: Iterable[str]) -> dict[str, Shape]:
    """Top-level functions and ``Class.method`` (``self`` dropped) named in ``names``, from source."""
    tree = ast.parse(path.read_text())
    wanted = set(names)
    found: dict[str, Shape] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in wanted:
            found[node.name] = _shape(node.args)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                qual = f"{node.name}.{item.name}" if isinstance(item, ast.FunctionDef) else ""
                if qual in wanted and isinstance(item, ast.FunctionDef):
                    found[qual] = _shape(item.args)[1:]
    return found


def source_constants(path: Path, prefix: str) -> dict[str, int]:
    """Top-level ``NAME = <int>`` assignments whose name starts with ``prefix``."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.startswith(prefix) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int):
                out[name] = node.value.value
    return out


def object_shape(fn: Any) -> Shape:
    """The same shape from a live callable (a fake's bound method: ``self`` is already gone)."""
    kinds = {inspect.Parameter.POSITIONAL_ONLY: "positional", inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
             inspect.Parameter.VAR_POSITIONAL: "var_positional", inspect.Parameter.KEYWORD_ONLY: "keyword_only",
             inspect.Parameter.VAR_KEYWORD: "var_keyword"}
    return [[p.name, kinds[p.kind], p.default is not inspect.Parameter.empty]
            for p in inspect.signature(fn).parameters.values()]
