"""Small subjects for runner tests, registered by monkeypatching ``BUILTIN_SUBJECTS`` (tests only).

``fast``: a ~1 ms matmul workload, much shorter than a GPU energy counter's 0.1 s update period.
``fresh``: the same work behind a ``setup()`` that the runner may not repeat inside a window (like training
to a target from scratch), so its trials cannot be lengthened.
"""

from __future__ import annotations

from energybench.subjects.api import Context, Model, Quality, Subject, Workload


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
