"""What the two small conv classifiers share: the digits CNN (``cnn``) and the keyword spotter (``speech``).

Why one module: both are a few 3x3 conv blocks and two linear layers trained from scratch with AdamW on a fixed
split, scored by held-out accuracy, calibrated on a held-out split and distilled into a narrower, shallower
student. Their data and their item units differ (images; seconds of audio), so each subject keeps its data,
its network and its workloads' counts; the options, the training loop, the accuracy, the training workload and
the distillation hooks are this one code (the cached baseline is ``cache.cached_baseline``), so a fix to one
subject is a fix to both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import Context, Distillable, Model

Batches = Iterator[tuple[Any, ...]]  # ``(inputs, labels, ...)``: a subject may add what a batch counts


def configured(base: Any, ctx: Context, family: str) -> Any:
    """``base`` (a frozen config with a ``channels`` tuple) with the suite's ``options[family]`` applied; an
    unknown option is a ``ConfigError`` that names the known ones."""
    overrides = dict(ctx.options.get(family, {}))
    unknown = set(overrides) - set(asdict(base))
    if unknown:
        raise ConfigError(f"unknown {family} option(s) {sorted(unknown)}; known: {sorted(asdict(base))}")
    if "channels" in overrides:
        overrides["channels"] = tuple(int(c) for c in overrides["channels"])
    return replace(base, **overrides)


def train(module: Any, data: Batches, steps: int, lr: float) -> None:
    """``steps`` AdamW steps of cross-entropy over ``data``'s batches; the module is left in eval mode."""
    import torch
    import torch.nn.functional as F

    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        batch = next(data)
        loss = F.cross_entropy(module(batch[0]), batch[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    module.eval()


def cast(x: Any, dtype: str) -> Any:
    """Inputs follow the weights for bf16/fp16 (the contract: methods cast the model, subjects the inputs)."""
    import torch

    return x.to(getattr(torch, dtype)) if dtype in ("bfloat16", "float16") else x


def accuracy(module: Any, x: Any, y: Any, dtype: str = "float32") -> float:
    import torch

    with torch.inference_mode():
        pred = module(cast(x, dtype)).float().argmax(dim=1)
    return float((pred == y).float().mean())


def accuracies(model: Model, baseline: Model, x: Any, y: Any, baseline_info: dict[str, Any]) -> tuple[float, float]:
    """The model's held-out accuracy and the baseline's (measured once when the baseline was made)."""
    acc = accuracy(model.module, x, y, model.dtype)
    base = baseline_info.get("test_accuracy")
    if base is None or model.module is not baseline.module:
        base = accuracy(baseline.module, x, y)
    return acc, base


def training_workload(model: Model, cfg: Any, batches: Callable[[int], Batches], seed: int,
                      counts: Callable[[tuple[Any, ...]], float]) -> tuple[Callable[[], None], Callable[[], float]]:
    """The ``train-step`` workload's setup and run: ``cfg.steps_per_trial`` AdamW steps on a training copy (at a
    tenth of the baseline's rate: the measured model never changes), counting ``counts(batch)`` items a step."""
    import torch.nn.functional as F

    state: dict[str, Any] = {}

    def setup() -> None:
        state["module"], state["opt"] = model.training_copy(cfg.lr * 0.1)
        state["batches"] = batches(seed)

    def steps() -> float:
        m, opt = state["module"], state["opt"]
        done: float = 0
        for _ in range(cfg.steps_per_trial):
            batch = next(state["batches"])
            loss = F.cross_entropy(m(cast(batch[0], model.dtype)).float(), batch[1])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += counts(batch)
        return done

    return setup, steps


def calibrate_on(module: Any, x: Any, batch: int = 64) -> int:
    """Runs the held-out calibration inputs ``x`` (never trained or tested on) through ``module``."""
    import torch

    with torch.no_grad():
        for i in range(0, len(x), batch):
            module(x[i : i + batch])
    return int(len(x))


def prune_conv_channels(module: Any, cells_per_channel: int, fraction: float) -> int:
    """Remove ``fraction`` of every conv layer's filters (lowest L1 norm) in ``module.features``; the next
    conv and ``fc1`` (``cells_per_channel`` flattened inputs per channel) shrink with them."""
    from energybench.subjects.pruning import shrink_conv_channels

    convs = [(module.features, str(i)) for i, m in enumerate(module.features) if hasattr(m, "out_channels")]
    return shrink_conv_channels(convs, (module, "fc1"), cells_per_channel, fraction)


class ConvDistill(Distillable):
    """Student: ``width`` x the channels and hidden units, ``depth`` x the conv blocks; trained on the
    training split with the teacher's logits. ``config`` is the subject's config once its baseline exists."""

    def __init__(self, build_model: Callable[[Any], Any], batches: Callable[[int], Batches],
                 config: Callable[[], Any]) -> None:
        self.build_model, self._batches, self.config = build_model, batches, config

    def make_student(self, teacher: Any, width: float, depth: float) -> Any:
        c = teacher.config
        n = max(1, int(round(len(c.channels) * depth)))
        channels = tuple(max(1, int(round(ch * width))) for ch in c.channels[:n])
        return self.build_model(replace(c, channels=channels, hidden=max(1, int(round(c.hidden * width)))))

    def batches(self, seed: int) -> Iterator[Any]:
        return self._batches(seed)

    def logits(self, module: Any, batch: Any) -> Any:
        return module(batch[0])

    def targets(self, batch: Any) -> Any:
        return batch[1]

    def steps(self) -> int:
        return int(self.config().distill_steps)

    def lr(self) -> float:
        return float(self.config().lr)
