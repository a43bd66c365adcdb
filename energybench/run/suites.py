"""What ``energybench run`` runs: ``Suite`` declarations, found in a benchmarks directory and filtered.

A benchmarks directory declares what to run with modules that assign ``SUITES`` (a list of ``Suite``) at
top level; other files there (pytest-benchmark scripts, tools) are never executed, which is checked with
``ast`` before anything is imported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError, EnergybenchError
from energybench.subjects.api import get_subject, methods, resolve_method, subjects


@dataclass
class Suite:
    """One subject family and the compression specs to compare against its baseline.

    ``methods=None`` means the subject's own ``default_methods``; ``options`` are passed to the subject
    (e.g. ``{"lm": {"d_model": 32}}`` to shrink the LM). ``skip_quick`` names methods ``--quick`` leaves out
    (one of two methods that measure the same thing on the CPU, at several times the baseline's cost).
    """

    subject: str
    methods: Sequence[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    skip_quick: Sequence[str] = ()


def load_suites(path: str | Path) -> list[Suite]:
    """``SUITES`` from every ``*.py`` in a directory (sorted, ``_*`` skipped) or from one file."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"benchmarks path {str(p)!r} does not exist; pass a directory like benchmarks/")
    files = sorted(f for f in p.glob("*.py") if not f.name.startswith("_")) if p.is_dir() else [p]
    suites: list[Suite] = []
    for f in files:
        if p.is_dir() and not _declares_suites(f):
            continue  # other benchmark scripts (pytest-benchmark files, tools) are not executed
        spec = importlib.util.spec_from_file_location(f"energybench_suites_{f.stem}", f)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except EnergybenchError:
            raise
        except Exception as exc:
            raise ConfigError(f"cannot load benchmarks file {f}: {type(exc).__name__}: {exc}") from None
        for s in getattr(module, "SUITES", []):
            suites.append(s if isinstance(s, Suite) else Suite(**s))
    if not suites:
        raise ConfigError(f"no SUITES found in {p} (define SUITES = [Suite('lm'), ...] in a benchmarks/*.py)")
    return suites


def _declares_suites(path: Path) -> bool:
    """Whether a file assigns ``SUITES`` at top level (checked with ``ast``, without running it)."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "SUITES" for t in targets):
            return True
    return False


def select(suites: list[Suite], wanted: Sequence[str] | None) -> list[Suite]:
    """Apply ``--subjects``: ``lm`` (whole family), ``lm/int8-dynamic`` (one spec) or ``int8-dynamic`` (that
    spec in every family). A registered family that no suite mentions is run with its defaults."""
    if not wanted:
        return suites
    by_name = {s.subject: s for s in suites}
    chosen: dict[str, Suite] = {}
    known_subjects = subjects()
    known_methods = methods()
    for item in wanted:
        fam, _, spec = item.partition("/")
        if fam in known_subjects or fam in by_name:
            base = by_name.get(fam) or Suite(fam)
            cur = chosen.setdefault(fam, Suite(fam, [] if spec else base.methods, base.options,
                                               () if spec else base.skip_quick))
            if spec:
                if cur.methods is not None:
                    cur.methods = [*cur.methods, spec] if spec != "baseline" else list(cur.methods)
            continue
        if not spec:
            try:
                resolve_method(fam, known_methods)
            except ConfigError:
                known = ", ".join(sorted(known_subjects))
                raise ConfigError(
                    f"unknown subject or method {item!r} (subjects: {known}); run 'energybench subjects'"
                ) from None
            for s in suites:
                cur = chosen.setdefault(s.subject, Suite(s.subject, [], s.options))
                cur.methods = [*(cur.methods or []), fam]
            continue
        get_subject(fam, known_subjects)  # raises the one-line unknown-subject error
    return list(chosen.values())
