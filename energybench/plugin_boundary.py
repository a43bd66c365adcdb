"""The one boundary between energybench and plugin code (subjects, methods, samplers): whatever that code does,
it is named as its own.

Why: plugin code is somebody else's, and its failures used to surface as energybench's. A workload that
called ``sys.exit(5)`` ended ``energybench run`` with exit 5, no message and a cell with no status (``SystemExit``
is not an ``Exception``, so nothing caught it); a sampler that raised was reported as "internal error ... a
bug in energybench" (exit 70; 3 in pytest) without naming the sampler. ``call`` runs plugin code and turns
any failure (an exception or ``sys.exit``) into the caller's error type with one line that names the code
(``module:Class.method``: the plugin) and what it did. Our own errors (``EnergybenchError``) and Ctrl-C
(``KeyboardInterrupt``, SIGTERM's ``Terminated``) pass through unchanged.

What the callers do with that error (``docs/failure-modes.md``): a subject's or method's cell stops with
status ``failed`` and the reason, and the run goes on with the other cells (``run.state.plugin_call``); a
sampler that fails while measuring is left out of the windows with a warning naming it, so the other
samplers' figures are kept (``measuring.meter``); a sampler factory that fails while creating its samplers is
a one-line error naming it, before anything is measured (``samplers.detect_samplers``).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from energybench.errors import EnergybenchError


def origin(fn: Any) -> str:
    """Where the code behind ``fn`` lives: ``module:Qualname`` (a bound method as ``module:Class.method``;
    a ``functools.partial`` as the function it wraps)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        cls = owner if isinstance(owner, type) else type(owner)
        return f"{cls.__module__}:{cls.__qualname__}.{getattr(fn, '__name__', '?')}"
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    return f"{getattr(target, '__module__', '?')}:{target.__qualname__}"


def failure(exc: BaseException) -> str:
    """What plugin code did, in a few words: ``called sys.exit(5)`` or ``raised ValueError: bad shape``."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    text = str(exc).strip().splitlines()
    return f"raised {type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def call(what: str, fn: Callable[..., Any], *args: Any, error: type[Exception],
         passthrough: tuple[type[BaseException], ...] = ()) -> Any:
    """``fn(*args)``; any failure but ours, Ctrl-C and ``passthrough`` becomes ``error("<what> <failure> (in
    <origin>)")``, chained to the original (its traceback stays behind ``ENERGYBENCH_DEBUG=1``)."""
    ours: tuple[type[BaseException], ...] = (EnergybenchError, KeyboardInterrupt, *passthrough)
    try:
        return fn(*args)
    except ours:
        raise
    except (Exception, SystemExit) as exc:
        raise error(f"{what} {failure(exc)} (in {origin(fn)})") from exc
