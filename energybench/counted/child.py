"""The program ``runner.count_targets`` starts under callgrind: set up targets, count their calls, write results.

``python -m energybench.counted.child TARGET... --iterations N --warmup W --result FILE``, where a TARGET is
``module:factory`` or ``path/to/file.py:factory`` and ``factory()`` returns the zero-argument callable to count.
The factory runs uninstrumented, so model construction, imports and data loading never reach the counts.
Several targets share one process (one valgrind start-up); each is set up just before it is counted. A rule
the calls broke (a fork, a GPU) is written next to the counts, not instead of them, and stops the run there.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from energybench.counted.errors import CountedError
from energybench.counted.window import count_calls


def load_target(target: str) -> Callable[[], Any]:
    """The callable a ``module:factory`` or ``file.py:factory`` target's factory returns."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise CountedError(f"target {target!r} must be MODULE:FACTORY or FILE.py:FACTORY")
    if where.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(where).stem, where)
        if spec is None or spec.loader is None or not Path(where).is_file():
            raise CountedError(f"target file {where} not found: give a path to a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise CountedError(f"{where} has no callable {attr!r}: the factory returns the callable to count")
    fn = factory()
    if not callable(fn):
        raise CountedError(f"{target}() returned {type(fn).__name__}, not the callable to count")
    return fn


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m energybench.counted.child")
    parser.add_argument("targets", nargs="+")
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--name", action="append", default=[])
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    names = args.name + args.targets[len(args.name):]
    payload: dict[str, Any] = {"results": []}
    for target, name in zip(args.targets, names, strict=True):
        fn = load_target(target)
        try:
            result = count_calls(fn, args.iterations, warmup=args.warmup, name=name)
        except CountedError as exc:
            if exc.result is None:
                raise
            payload["results"].append(exc.result.to_dict())
            payload["error"] = str(exc)
            break
        payload["results"].append(result.to_dict())
    Path(args.result).write_text(json.dumps(payload), encoding="utf-8")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CountedError as exc:
        print(f"energybench: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
