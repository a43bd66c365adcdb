"""Plugin registries read from entry-point groups, shared by exporters and intensity sources.

Why one helper: every registry must behave alike for users. Built-ins are declared in ``pyproject.toml``
under the same entry-point group a third party uses (so ``energybench export --list`` shows them side by
side), and also listed in code (``builtins``) so a source checkout that was not re-installed still has them.
A plugin that fails to load is listed with its reason, never hidden and never fatal to the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Plugin:
    """A registry row: where a plugin comes from and, when it could not load, why."""

    name: str
    origin: str  # "builtin" or the entry point's value
    obj: Any = None
    error: str | None = None


def load_spec(spec: str) -> Any:
    """``module:attribute`` -> the attribute (imports the module)."""
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def load_registry(builtins: Mapping[str, str], group: str, check: Callable[[Any], bool],
                  kind: str) -> dict[str, Plugin]:
    """Built-ins first, then the group's entry points (a third party may override a built-in by name).

    ``check`` says whether a loaded object is usable; an entry point may name an instance, a class or a
    zero-argument factory.
    """
    from importlib.metadata import entry_points

    specs: dict[str, tuple[str, str]] = {name: (spec, "builtin") for name, spec in builtins.items()}
    for ep in entry_points(group=group):
        builtin = builtins.get(ep.name) == ep.value
        specs[ep.name] = (ep.value, "builtin" if builtin else ep.value)
    found: dict[str, Plugin] = {}
    for name, (spec, origin) in specs.items():
        try:
            obj = load_spec(spec)
            if not check(obj) and callable(obj):
                obj = obj()
        except (Exception, SystemExit) as exc:  # a plugin must not break the others, even one calling sys.exit
            found[name] = Plugin(name, origin, error=f"{spec} failed to load: {one_line(exc)}")
            continue
        if not check(obj):
            found[name] = Plugin(name, origin, error=f"{spec} is not {kind} (got {type(obj).__name__})")
            continue
        found[name] = Plugin(name, origin, obj)
    return found


def lookup(registry: Mapping[str, Plugin], name: str, kind: str, lister: str) -> Any:
    """The loaded object registered as ``name``; a ``ConfigError`` naming the known ones (and ``lister``, the
    command that lists them) for an unknown name, or saying why a plugin that failed to load cannot be used."""
    from energybench.errors import ConfigError

    entry = registry.get(name)
    if entry is None:
        raise ConfigError(f"unknown {kind} {name!r} (known: {', '.join(sorted(registry))}); `{lister}` lists them")
    if entry.error:
        raise ConfigError(f"{kind} {name!r} cannot be used: {entry.error}")
    return entry.obj
