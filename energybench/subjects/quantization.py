"""Quantization methods: dynamic int8 Linear layers (per-tensor or per-channel) and half-precision weights.

Dynamic int8 uses ``torch.ao.quantization.quantize_dynamic``: weights are stored int8, activations are
quantized on the fly, and the kernels (fbgemm/qnnpack) are CPU-only and have no backward pass, so the
training phase is reported as not applicable rather than silently run in fp32. ``torch.ao.quantization`` is
deprecated in favour of torchao; it still works in torch 2.13 and needs no extra dependency.
"""

from __future__ import annotations

import warnings
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import CompressionMethod, Context, Model, NotApplicable, Subject, clone


class DynamicInt8(CompressionMethod):
    """``int8-dynamic`` (per-tensor weight scales) or ``int8-dynamic-perchannel`` (one scale per output row)."""

    name = "int8-dynamic"
    description = "dynamic int8 quantization of nn.Linear (torch.ao quantize_dynamic), per-tensor or per-channel"
    example = "int8-dynamic, int8-dynamic-perchannel"

    def parse(self, suffix: str) -> dict[str, Any]:
        if suffix in ("", "pertensor"):
            return {"granularity": "per-tensor"}
        if suffix == "perchannel":
            return {"granularity": "per-channel"}
        raise ConfigError(f"int8-dynamic: unknown variant {suffix!r}; use int8-dynamic or int8-dynamic-perchannel")

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        import torch
        from torch import nn

        if ctx.device != "cpu":
            raise NotApplicable("int8-dynamic: torch.ao dynamic quantized kernels run on CPU only")
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        qconfig = per_channel_dynamic_qconfig if params["granularity"] == "per-channel" else default_dynamic_qconfig
        module = clone(baseline).float()
        with warnings.catch_warnings():  # deprecation notices of torch.ao; recorded once below instead
            warnings.simplefilter("ignore")
            quantized = quantize_dynamic(module, {nn.Linear: qconfig}, dtype=torch.qint8)
        n = sum(1 for m in quantized.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic"))
        return Model(quantized, params={**params, "linear_layers_quantized": n, "engine":
                                         torch.backends.quantized.engine},
                     notes=["torch.ao.quantization is deprecated upstream (torchao is its successor)"],
                     trainable=False, dtype="int8-dynamic")


class HalfWeights(CompressionMethod):
    """``bf16`` / ``fp16``: every parameter and buffer cast to that dtype (inputs follow the weights)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = f"weights and activations in {'bfloat16' if name == 'bf16' else 'float16'}"
        self.example = name

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        import torch

        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        module = clone(baseline).to(dtype)
        notes = []
        if ctx.device == "cpu" and self.name == "fp16":
            notes.append("fp16 matmuls on CPU are often emulated: expect little or negative saving")
        return Model(module, params={**params, "dtype": str(dtype).replace("torch.", "")}, notes=notes,
                     dtype=str(dtype).replace("torch.", ""))


BF16 = HalfWeights("bf16")
FP16 = HalfWeights("fp16")
