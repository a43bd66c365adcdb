"""Small subjects for runner tests, registered by monkeypatching ``BUILTIN_SUBJECTS`` (tests only).

``fast``: a ~1 ms matmul workload, much shorter than a GPU energy counter's 0.1 s update period.
``fresh``: the same work behind a ``setup()`` that the runner may not repeat inside a window (like training
to a target from scratch), so its trials cannot be lengthened.
"""

from __future__ import annotations

from pathlib import Path

from energybench.subjects.api import Context, Model, Quality, Subject, Workload

#: A tiny LM (seconds to train) for runner tests.
TINY = {
    "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "context": 16, "batch": 4, "train_steps": 20,
    "target_loss": 5.0, "max_target_steps": 20, "steps_per_trial": 1, "gen_batch": 2, "gen_tokens": 2,
    "score_batches": 1, "val_batches": 1, "corpus_bytes": 20_000, "distill_steps": 5,
}


def write_suite(directory: Path, methods: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "suite.py").write_text(
        "from energybench import Suite\n"
        f"SUITES = [Suite('lm', methods={methods!r}, options={{'lm': {TINY!r}}}),\n"
        "          Suite('toy', methods=['toy-scale-0.5'])]\n"
    )
    (directory / "bench_other.py").write_text("raise SystemExit('must not be executed')\n")
    return directory


class FastSubject(Subject):
    name = "fast"
    description = "a ~1 ms matmul (runner tests)"
    default_methods = ()

    def baseline(self, ctx: Context) -> Model:
        import torch

        torch.manual_seed(ctx.seed)
        self.x = torch.randn(64, 64)
        return Model(torch.nn.Linear(64, 64))

    def _work(self, model: Model) -> int:
        import torch

        with torch.inference_mode():
            for _ in range(5):
                model.module(self.x)
        return 5 * len(self.x)

    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        return [Workload("infer", "inference", "row", lambda: self._work(model))]

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        return Quality("mse", 0.0, higher_is_better=False)


class FreshSubject(FastSubject):
    name = "fresh"
    description = "fast work that needs a fresh setup before every run (runner tests)"

    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        def setup() -> None:
            self.ready = True

        return [Workload("infer", "inference", "row", lambda: self._work(model), setup)]
