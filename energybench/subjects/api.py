"""The plugin API for benchmark subjects and compression methods, and their registries.

A *subject* is a model family with its workloads (training steps, inference batches) and a quality metric;
a *compression method* turns the family's baseline model into a compressed one. Both are plugins: the
built-ins below and third-party ones from the ``energybench.subjects`` / ``energybench.methods`` entry-point
groups go through the same registry, so an external package is a first-class citizen and a broken one
produces one clear line instead of a traceback.

Subjects expose the *structure* methods need (FFN pairs, the layer list, attention heads) through small
hooks instead of methods knowing every architecture: a new model family supports structured pruning by
answering three questions, and a method that a family cannot support says so by name.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from energybench.errors import ConfigError, EnergybenchError
from energybench.record import Quality
from energybench.registry import Plugin, load_registry

SUBJECTS_GROUP = "energybench.subjects"
METHODS_GROUP = "energybench.methods"

PHASES = ("train", "inference")


class PluginError(EnergybenchError):
    """A subject or method plugin that failed to load or raised while running."""

    exit_code = 3


class NotApplicable(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by a method or workload that does not apply to a subject (int8 has no backward pass).

    The runner records the reason as a note and moves on; it is not an error the user made.
    """


# --------------------------------------------------------------------------------------------------------
# Records


@dataclass
class Workload:
    """One measurable unit of work: ``run()`` does one trial's worth and returns how many items it did.

    ``setup()`` (optional) runs outside the measurement window before every trial (copying a model for a
    training step, resetting an optimiser), so set-up cost is never billed to the subject.

    ``repeatable`` says whether ``run()`` may be called several times after one ``setup()`` inside one
    window, each call doing the same kind of work: the runner repeats a workload that is faster than the
    slowest energy counter's updates (a GPU's ~0.1 s) so its device is not missing from the trial. ``None``
    means "when there is no setup" (a training step on a copy may continue; training to a target from
    scratch may not, as its second run would start trained).

    ``layers`` says whether the run's per-layer attribution pass applies: ``False`` for work that does not run
    the benchmarked model (the LM's train-to-target trains a fresh one), where it would say nothing.
    """

    name: str
    phase: str
    item_unit: str
    run: Callable[[], float]
    setup: Callable[[], None] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    repeatable: bool | None = None
    layers: bool = True

    @property
    def can_repeat(self) -> bool:
        return self.repeatable if self.repeatable is not None else self.setup is None


@dataclass
class Model:
    """A model ready to benchmark plus what was done to it.

    ``one_off_energy_j`` is energy a method spent making it (distillation's training, static quantization's
    calibration): the runner reports it and the break-even point in items instead of hiding it.
    ``one_off_work`` is that work as a self-contained function (``subjects.one_off.measure_one_off`` measured
    it), so the runner can measure it again and give the cost an interval: one measurement of a training
    run is one sample of a noisy figure (146 J in one run, 402 J in the next).
    """

    module: Any
    method: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    one_off_energy_j: float | None = None
    one_off: dict[str, Any] = field(default_factory=dict)
    trainable: bool = True
    dtype: str = "float32"
    one_off_work: Callable[[], Any] | None = None

    def training_copy(self, lr: float) -> tuple[Any, Any]:
        """A copy of the module in train mode and an AdamW optimiser over it, for a training workload's setup:
        training steps must not change the model the other workloads measure. ``NotApplicable`` when the
        method left no backward pass (int8 kernels), which makes that cell "not applicable", not "failed"."""
        import torch

        if not self.trainable:
            raise NotApplicable(f"{self.method}: the model has no backward pass (inference-only kernels)")
        module = copy.deepcopy(self.module)
        module.train()
        return module, torch.optim.AdamW(module.parameters(), lr=lr)


@dataclass
class Context:
    """What a subject needs from the run: device, seeds, quick mode, cache dir, the meter."""

    device: str = "cpu"
    seed: int = 0
    quick: bool = False
    cache_dir: str | None = None
    meter: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda _msg: None


# --------------------------------------------------------------------------------------------------------
# Base classes


class Subject:
    """A model family: baseline, workloads, quality, and the structure hooks compression methods use.

    Subclasses set ``name``/``description`` and implement ``baseline``, ``workloads`` and ``quality``.
    ``unavailable_reason`` lets an optional family (MiniLM without its extra) be listed and skipped with a note.
    """

    name: str = "subject"
    description: str = ""
    default_methods: tuple[str, ...] = ()

    def unavailable_reason(self) -> str | None:
        return None

    def baseline(self, ctx: Context) -> Model:
        raise NotImplementedError

    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        raise NotImplementedError

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """Identity worth recording (corpus hash, config, model path)."""
        return {}

    # --- structure hooks (optional) ----------------------------------------------------------------------
    def ffn_pairs(self, module: Any) -> list[tuple[Any, str, Any, str]]:
        """``(up_owner, up_attr, down_owner, down_attr)`` per feed-forward block: up maps d->h, down h->d."""
        raise NotApplicable(f"subject {self.name!r} does not expose feed-forward blocks")

    def layer_list(self, module: Any) -> tuple[Any, str]:
        """``(owner, attr)`` where ``getattr(owner, attr)`` is the ``nn.ModuleList`` of transformer layers."""
        raise NotApplicable(f"subject {self.name!r} does not expose its layer list")

    def on_layers_changed(self, module: Any, n_layers: int) -> None:
        """Called after layer dropping, to update configs that record the layer count."""

    def prune_heads(self, module: Any, fraction: float) -> int:
        """Remove ``fraction`` of attention heads per layer physically; return how many were removed."""
        raise NotApplicable(f"subject {self.name!r} cannot remove attention heads")

    def prune_channels(self, module: Any, fraction: float) -> int:
        """Remove ``fraction`` of every conv layer's output channels physically, shrinking whatever reads
        them; return how many channels were removed."""
        raise NotApplicable(f"subject {self.name!r} has no conv channels to remove")

    def calibrate(self, module: Any, ctx: Context) -> int:
        """Run held-out data (neither trained nor tested on) through ``module`` so static quantization's
        observers see real activations; return how many samples went through."""
        raise NotApplicable(f"subject {self.name!r} has no held-out calibration data")

    def example_inputs(self, module: Any) -> tuple[Any, ...]:
        """Inputs for tracing the model with ``torch.fx`` (whole-graph static quantization); subjects whose
        models do not trace leave it out and are quantized module by module."""
        raise NotApplicable(f"subject {self.name!r} gives no example inputs for torch.fx")

    def distillation(self) -> Distillable:
        raise NotApplicable(f"subject {self.name!r} does not support distillation")


class Distillable:
    """What distillation needs from a subject: a smaller student, batches, the outputs to match, and a loss.

    ``outputs = "logits"`` (the default): ``logits`` returns ``[N, classes]`` and the methods use KL at a
    temperature (soft) or cross-entropy on the teacher's argmax (hard). ``outputs = "embeddings"``: ``logits``
    returns ``[N, dim]`` sentence (or image) embeddings, and soft distillation matches them with
    ``embedding_loss`` (1 - cosine plus MSE by default); hard labels have no meaning there.
    """

    outputs: str = "logits"

    def embedding_loss(self, student: Any, teacher: Any) -> Any:
        """Loss between student and teacher embeddings: ``1 - cosine`` (direction) plus MSE (scale)."""
        import torch.nn.functional as F

        return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean() + F.mse_loss(student, teacher)

    def make_student(self, teacher: Any, width: float, depth: float) -> Any:
        raise NotImplementedError

    def batches(self, seed: int) -> Iterator[Any]:
        raise NotImplementedError

    def logits(self, module: Any, batch: Any) -> Any:
        raise NotImplementedError

    def targets(self, batch: Any) -> Any:
        raise NotImplementedError

    def steps(self) -> int:
        """Default number of distillation steps."""
        raise NotImplementedError

    def lr(self) -> float:
        raise NotImplementedError


class CompressionMethod:
    """Turns a baseline into a compressed model; its knobs are encoded in the spec (``prune-l1-0.5``).

    ``name`` is the spec prefix; ``parse(suffix)`` turns the rest of the spec into parameters (raising
    ``ConfigError`` on bad values), ``apply`` does the work on a deep copy of the baseline.
    """

    name: str = "method"
    description: str = ""
    example: str = ""

    def parse(self, suffix: str) -> dict[str, Any]:
        if suffix:
            raise ConfigError(f"method {self.name!r} takes no parameters, got {suffix!r} (use {self.name!r})")
        return {}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------------
# Helpers shared by methods and subjects


def clone(model: Model) -> Any:
    """A deep copy of the baseline's module, so methods never touch the shared baseline."""
    return copy.deepcopy(model.module)


def parse_fraction(text: str, what: str, method: str) -> float:
    """A fraction strictly inside (0, 1) from a spec fragment, or one clear error line."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{method}: {what} must be a number in (0, 1), got {text!r} (e.g. {method}-0.5)") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{method}: {what} must be strictly between 0 and 1, got {value:g} (e.g. {method}-0.5)")
    return value


def model_size(module: Any) -> dict[str, int]:
    """Parameters, non-zero parameters and serialized bytes (``torch.save`` of the state dict).

    Quantized modules keep their weights in packed params, not ``parameters()``: they are counted from the
    state dict so an int8 model is not reported as having no weights (torchao's weight tensors likewise).
    """
    import torch

    params = 0
    nonzero = 0
    for value in module.state_dict().values():
        tensors: list[Any] = []
        if isinstance(value, torch.Tensor):
            tensors = [value]
        elif isinstance(value, tuple):  # packed (weight, bias) of dynamic quantized Linear
            tensors = [v for v in value if isinstance(v, torch.Tensor)]
        for t in tensors:
            if type(t) not in (torch.Tensor, torch.nn.Parameter) and hasattr(t, "dequantize"):
                data = t.dequantize()  # a torchao tensor subclass: int8 data plus scales, counted as weights
            elif t.is_quantized:
                data = t.dequantize()
            elif t.is_floating_point():
                data = t
            else:
                continue
            params += data.numel()
            nonzero += int(torch.count_nonzero(data).item())
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return {"params": params, "nonzero_params": nonzero, "bytes": buffer.getbuffer().nbytes}


# --------------------------------------------------------------------------------------------------------
# Registries

BUILTIN_SUBJECTS = {
    "lm": "energybench.subjects.lm:LMSubject",
    "minilm": "energybench.subjects.minilm:MiniLMSubject",
    "cnn": "energybench.subjects.cnn:CNNSubject",
    "speech": "energybench.subjects.speech:SpeechSubject",
    "recsys": "energybench.subjects.recsys:RecsysSubject",
}

BUILTIN_METHODS = {
    "prune-l1": "energybench.subjects.pruning:L1Unstructured",
    "prune-structured": "energybench.subjects.pruning:StructuredPruning",
    "layer-drop": "energybench.subjects.pruning:LayerDrop",
    "int8-dynamic": "energybench.subjects.quantization:DynamicInt8",
    "int8-static": "energybench.subjects.static_quant:StaticInt8",
    "int8-weight": "energybench.subjects.weight_only:Int8WeightOnly",
    "int4-weight": "energybench.subjects.weight_only:Int4WeightOnly",
    "bf16": "energybench.subjects.quantization:BF16",
    "fp16": "energybench.subjects.quantization:FP16",
    "distill-soft": "energybench.subjects.distillation:SoftDistillation",
    "distill-hard": "energybench.subjects.distillation:HardDistillation",
    "emb-int8": "energybench.subjects.embedding:EmbeddingInt8",
    "emb-int4": "energybench.subjects.embedding:EmbeddingInt4",
    "emb-prune": "energybench.subjects.embedding:EmbeddingPrune",
}


def subjects() -> dict[str, Plugin]:
    """Every known subject family: built-ins, then entry-point plugins (which may override by name)."""
    return load_registry(BUILTIN_SUBJECTS, SUBJECTS_GROUP, lambda o: isinstance(o, Subject), "a Subject")


def methods() -> dict[str, Plugin]:
    """Every known compression method, keyed by spec prefix."""
    return load_registry(BUILTIN_METHODS, METHODS_GROUP, lambda o: isinstance(o, CompressionMethod),
                         "a CompressionMethod")


def get_subject(name: str, registry: dict[str, Plugin] | None = None) -> Subject:
    registry = registry if registry is not None else subjects()
    entry = registry.get(name)
    if entry is None:
        known = ", ".join(sorted(registry)) or "none"
        raise ConfigError(f"unknown subject {name!r} (known: {known}); run 'energybench subjects' to list them")
    if entry.error:
        raise PluginError(f"subject {name!r} cannot be used: {entry.error}")
    return entry.obj


_SPEC_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def resolve_method(spec: str, registry: dict[str, Plugin] | None = None) -> tuple[CompressionMethod, dict[str, Any]]:
    """``prune-l1-0.5`` -> (the ``prune-l1`` method, ``{"amount": 0.5}``): longest registered prefix wins."""
    registry = registry if registry is not None else methods()
    if not _SPEC_RE.match(spec):
        raise ConfigError(f"bad method spec {spec!r}: use lower-case names like 'prune-l1-0.5' or 'int8-dynamic'")
    for name in sorted(registry, key=len, reverse=True):
        if spec == name or spec.startswith(name + "-"):
            entry = registry[name]
            if entry.error:
                raise PluginError(f"method {name!r} cannot be used: {entry.error}")
            method = entry.obj
            suffix = spec[len(name) + 1 :]
            return method, method.parse(suffix)
    known = ", ".join(sorted(registry)) or "none"
    raise ConfigError(f"unknown compression method {spec!r} (known: {known}); run 'energybench subjects'")
