"""A tiny external energybench plugin: one subject (a small MLP) and two methods (one that raises).

Installed by the tests into a temporary ``--target`` directory; it only uses the public plugin API.
"""

from __future__ import annotations

from typing import Any

from energybench.subjects.api import CompressionMethod, Context, Model, Quality, Subject, Workload, clone


class ToySubject(Subject):
    name = "toy"
    description = "toy MLP from an external plugin package"
    default_methods = ("toy-scale-0.5",)

    def baseline(self, ctx: Context) -> Model:
        import torch

        torch.manual_seed(ctx.seed)
        self.opts = ctx.options.get("toy", {})
        self.calls = 0
        self.setups: dict[int, int] = {}
        self.x = torch.randn(64, 32)
        return Model(torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)))

    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        import torch

        def infer() -> int:
            self.calls += 1
            fail_after = self.opts.get("fail_after")
            if fail_after is not None and self.calls > fail_after:
                raise RuntimeError("toy plugin exploded on purpose")
            fail_at_setup = self.opts.get("fail_at_setup")
            if fail_at_setup is not None and model.params and self.setups.get(id(model), 0) >= fail_at_setup:
                # counts the runner's setup() calls (one per warm-up, calibration and trial), not runs:
                # the failing trial is the same whatever the machine's speed
                raise RuntimeError("toy plugin exploded on purpose")
            with torch.inference_mode():
                for _ in range(20):
                    model.module(self.x)
            return 20 * len(self.x)

        def setup() -> None:
            self.setups[id(model)] = self.setups.get(id(model), 0) + 1

        return [Workload("inference", "inference", "row", infer, setup=setup, repeatable=True)]

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        import torch

        with torch.inference_mode():
            err = float((model.module(self.x) - baseline.module(self.x)).pow(2).mean())
        return Quality("mse", err, higher_is_better=False)


class ScaleWeights(CompressionMethod):
    name = "toy-scale"
    description = "multiplies every weight by a factor (a stand-in for a real method)"
    example = "toy-scale-0.5"

    def parse(self, suffix: str) -> dict[str, Any]:
        return {"factor": float(suffix or 0.5)}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        import torch

        module = clone(baseline)
        with torch.no_grad():
            for p in module.parameters():
                p.mul_(params["factor"])
        return Model(module, params=params)


class Boom(CompressionMethod):
    name = "toy-boom"
    description = "a method whose apply raises, to test error handling"

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        raise ValueError("boom from the toy plugin")
