"""Weight-only quantization with torchao: int8 per tensor, per channel or per group, and int4 per group.

Weights are stored in int8 with their scales and dequantized inside each matmul; activations stay fp32. It
saves memory and bandwidth, not arithmetic, so on a CPU with small models the energy may well go up: the
point is to see the three scale granularities side by side with dynamic and static int8 (more scales,
better accuracy, more work per call).

Specs: ``int8-weight-pertensor``, ``int8-weight-perchannel`` (one scale per output row),
``int8-weight-pergroup-g<N>`` (one scale per ``N`` consecutive input weights of a row) and
``int4-weight-pergroup-g<N>``. Only plain ``nn.Linear`` layers whose input width is a multiple of ``N`` are
quantized (the count is recorded), like ``int8-dynamic`` they are inference-only here.

torchao (the ``quant`` extra) is the library; without it the methods are not applicable, with the hint. In
torchao 0.18 with torch 2.13 on a CPU there is no packed int4 layout (``Int4WeightOnlyConfig`` needs the
``mslk`` CUDA kernels), so int4 values are stored one per byte (``IntxWeightOnlyConfig``): the accuracy of
int4 with the memory of int8, and the model's size column says so.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import CompressionMethod, Context, Model, NotApplicable, Subject, clone

EXTRA_HINT = "install the extra: pip install 'energybench[quant]' (torchao)"
_GROUP = re.compile(r"^pergroup-g(?P<size>[0-9]+)$")


class _TorchaoEnumNotice(logging.Filter):
    """torchao registers its enums with torch's pytree, lazily, as its ops first run, and torch 2.13 logs a
    deprecation line for each: a note about torchao's code that would land in every run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "register_constant() on Enum subclasses" not in record.getMessage()


_NOTICE = _TorchaoEnumNotice()


@contextmanager
def quiet_torchao() -> Iterator[None]:
    """While torchao may be imported (by us, or by transformers when it loads a model and finds torchao
    installed): its import logs one line per CUDA-only extension it cannot load on a CPU build, which says
    nothing about the run. torch's pytree notices about torchao's enums are filtered for good, since
    torchao registers them lazily, as its ops first run."""
    pytree = logging.getLogger("torch.utils._pytree")
    if _NOTICE not in pytree.filters:
        pytree.addFilter(_NOTICE)
    quiet = [logging.getLogger(name) for name in ("torchao", "")]
    levels = [lg.level for lg in quiet]
    try:
        for lg in quiet:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)


def import_torchao() -> Any:
    """torchao, quietly (``quiet_torchao``), or ``NotApplicable`` with the install hint."""
    try:
        with quiet_torchao():
            import torchao
            import torchao.quantization  # noqa: F401
    except ImportError as exc:
        raise NotApplicable(f"{exc.name or 'torchao'} is not installed; {EXTRA_HINT}") from None
    return torchao


class _WeightOnly(CompressionMethod):
    bits = 8

    def parse(self, suffix: str) -> dict[str, Any]:
        suffix = suffix or ("perchannel" if self.bits == 8 else "pergroup-g32")
        if self.bits == 8 and suffix in ("pertensor", "perchannel"):
            return {"granularity": suffix.replace("per", "per-"), "bits": 8}
        m = _GROUP.match(suffix)
        if m:
            size = int(m["size"])
            if size < 2 or size & (size - 1):
                raise ConfigError(f"{self.name}: group size must be a power of two >= 2, got {size} "
                                  f"(e.g. {self.name}-pergroup-g32)")
            return {"granularity": "per-group", "group_size": size, "bits": self.bits}
        variants = "pertensor, perchannel or pergroup-g<N>" if self.bits == 8 else "pergroup-g<N>"
        raise ConfigError(f"{self.name}: unknown variant {suffix!r}; use {variants} (e.g. {self.example})")

    def config(self, params: dict[str, Any]) -> Any:
        import torch
        from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig
        from torchao.quantization.granularity import PerGroup, PerRow, PerTensor

        granularity = {"per-tensor": PerTensor, "per-channel": PerRow}.get(params["granularity"])
        if self.bits == 4:
            int4 = getattr(torch, "int4")  # noqa: B009 - a torch dtype the stubs do not list
            return IntxWeightOnlyConfig(weight_dtype=int4, granularity=PerGroup(params["group_size"]))
        if granularity is None:
            return Int8WeightOnlyConfig(granularity=PerGroup(params["group_size"]), version=2)
        return Int8WeightOnlyConfig(granularity=granularity(), version=2)

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        from torch import nn

        torchao = import_torchao()
        from torchao.quantization import quantize_

        group = params.get("group_size")
        module = clone(baseline).float().eval()
        linears = [m for m in module.modules() if type(m) is nn.Linear]
        fits = [m for m in linears if group is None or m.in_features % group == 0]
        if not fits:
            raise NotApplicable(f"{self.name}: no nn.Linear with an input width divisible by the group size {group}")
        chosen = {id(m) for m in fits}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_(module, self.config(params), filter_fn=lambda m, fqn: id(m) in chosen, device=ctx.device)
        notes = []
        if len(fits) < len(linears):
            notes.append(f"{len(linears) - len(fits)} nn.Linear layer(s) kept in fp32: input width not a multiple "
                         f"of the group size {group}")
        if self.bits == 4:
            notes.append("int4 values stored one per byte (torchao IntxWeightOnlyConfig): no packed int4 CPU layout "
                         "in torchao 0.18 with torch 2.13")
        return Model(module, params={**params, "linear_layers_quantized": len(fits), "torchao": torchao.__version__},
                     notes=notes, trainable=False, dtype=f"int{self.bits}-weight")


class Int8WeightOnly(_WeightOnly):
    name = "int8-weight"
    description = "int8 weight-only quantization of nn.Linear (torchao): per-tensor, per-channel or per-group scales"
    example = "int8-weight-perchannel, int8-weight-pergroup-g32"
    bits = 8


class Int4WeightOnly(_WeightOnly):
    name = "int4-weight"
    description = "int4 weight-only quantization of nn.Linear (torchao), per-group scales"
    example = "int4-weight-pergroup-g32"
    bits = 4
