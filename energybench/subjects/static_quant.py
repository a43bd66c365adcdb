"""Static int8 quantization: weights AND activations in int8, activation ranges calibrated on held-out data.

Dynamic int8 (``int8-dynamic``) quantizes activations on the fly at every call; static quantization fixes
their scales once, from a calibration pass over data the model was neither trained nor tested on, so the
kernels take int8 in and give int8 out. The calibration is energy spent once, measured in its own window
(``subjects.one_off``) and reported with the break-even point, like distillation's training.

Two ways, chosen by what the subject offers, recorded in ``params["graph"]``:

* whole graph (``torch.ao.quantization.quantize_fx``): for a model that traces with ``torch.fx`` and a
  subject that gives ``example_inputs``: conv+ReLU and linear+ReLU fused, int8 flowing from layer to layer
  (the CNN);
* module by module (``torch.ao.quantization`` eager mode): every ``nn.Linear`` wrapped in
  ``QuantWrapper`` (quantize, int8 linear, dequantize) with its own calibrated input and output scales, for
  models that do not trace (transformers: ``nn.TransformerEncoder``, Hugging Face BERT). Attention
  projections that ``nn.MultiheadAttention`` calls as raw weights (``in_proj_weight``, ``out_proj``) stay fp32.

The x86 backend's defaults are used: a histogram observer for activations (per tensor, reduced range) and
per-channel weight scales; ``int8-static-pertensor`` uses one scale per weight tensor. ``torch.ao.quantization``
is deprecated upstream in favour of torchao's PT2E flow, which on a CPU needs ``torch.compile`` to lower to
int8 kernels; this module uses the eager/FX kernels that run as they are in torch 2.13 (recorded in notes).
"""

from __future__ import annotations

import warnings
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import CompressionMethod, Context, Model, NotApplicable, Subject, clone
from energybench.subjects.one_off import measure_one_off

DEPRECATION_NOTE = "torch.ao.quantization is deprecated upstream (torchao is its successor)"


def qconfig(granularity: str) -> Any:
    """The x86 backend's static qconfig, with per-channel (default) or per-tensor weight scales."""
    from torch.ao.quantization import QConfig, default_weight_observer, get_default_qconfig
    from torch.ao.quantization.observer import HistogramObserver

    if granularity == "per-channel":
        return get_default_qconfig("x86")
    return QConfig(activation=HistogramObserver.with_args(reduce_range=True), weight=default_weight_observer)


def wrap_linears(module: Any, config: Any) -> int:
    """Wrap every plain ``nn.Linear`` (not the ``out_proj`` that attention reads as raw weights) in a
    ``QuantWrapper`` carrying ``config``; returns how many were wrapped."""
    from torch import nn
    from torch.ao.quantization import QuantWrapper

    targets = [(parent, name, child) for parent in module.modules() for name, child in parent.named_children()
               if type(child) is nn.Linear]
    for parent, name, child in targets:
        wrapped = QuantWrapper(child)
        wrapped.qconfig = config
        setattr(parent, name, wrapped)
    return len(targets)


class StaticInt8(CompressionMethod):
    """``int8-static`` (per-channel weight scales) or ``int8-static-pertensor``, calibrated on held-out data."""

    name = "int8-static"
    description = "static int8 quantization of weights and activations (torch.ao), calibrated on held-out data"
    example = "int8-static, int8-static-pertensor"

    def parse(self, suffix: str) -> dict[str, Any]:
        if suffix in ("", "perchannel"):
            return {"granularity": "per-channel"}
        if suffix == "pertensor":
            return {"granularity": "per-tensor"}
        raise ConfigError(f"int8-static: unknown variant {suffix!r}; use int8-static or int8-static-pertensor")

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        import torch

        if ctx.device != "cpu":
            raise NotApplicable("int8-static: torch.ao static quantized kernels run on CPU only")
        if type(subject).calibrate is Subject.calibrate:
            subject.calibrate(baseline.module, ctx)  # raises the subject's NotApplicable: no held-out data
        config = qconfig(params["granularity"])
        notes = [DEPRECATION_NOTE]
        info: dict[str, Any] = {}

        def quantize_once() -> Any:
            """Copy, observe, calibrate, convert: self-contained, so it can be measured again."""
            module = clone(baseline).float().eval()
            with warnings.catch_warnings():  # torch.ao's deprecation notices; recorded once in notes instead
                warnings.simplefilter("ignore")
                prepared = _prepare_graph(module, subject, config, info, notes)
                if prepared is None:
                    wrap_linears(module, config)
                    info["graph"] = "module by module (QuantWrapper around each nn.Linear)"
                    prepared = torch.ao.quantization.prepare(module, inplace=False)
                info["calibration_samples"] = subject.calibrate(prepared, ctx)
                if info["graph"].startswith("whole graph"):
                    from torch.ao.quantization.quantize_fx import convert_fx

                    converted = convert_fx(prepared)
                else:
                    converted = torch.ao.quantization.convert(prepared, inplace=False)
            info["layers_quantized"] = sum(1 for m in converted.modules() if type(m).__module__.startswith(
                ("torch.ao.nn.quantized.modules", "torch.ao.nn.intrinsic.quantized")) and hasattr(m, "weight"))
            return converted

        quantized, one_off = measure_one_off(ctx, "static int8 quantization (calibration on held-out data)",
                                             quantize_once)
        one_off.update(calibration_samples=info["calibration_samples"], graph=info["graph"])
        return Model(quantized, params={**params, **info, "engine": torch.backends.quantized.engine},
                     notes=notes, trainable=False, dtype="int8-static",
                     one_off_energy_j=one_off.get("energy_j"), one_off=one_off, one_off_work=quantize_once)


def _prepare_graph(module: Any, subject: Subject, config: Any, info: dict[str, Any], notes: list[str]) -> Any:
    """``prepare_fx`` for subjects that give example inputs and models that trace; ``None`` otherwise (with
    a note saying why when tracing was tried and failed)."""
    try:
        example = subject.example_inputs(module)
    except NotApplicable:
        return None
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    mapping = get_default_qconfig_mapping("x86").set_global(config)
    try:
        prepared = prepare_fx(module, mapping, example_inputs=example)
    except Exception as exc:  # torch.fx cannot trace every model; the module-by-module way still applies
        text = str(exc).strip().splitlines()
        note = (f"torch.fx could not trace the model ({type(exc).__name__}: {text[0] if text else ''}); "
                "quantized module by module instead")
        if note not in notes:  # the work may be run again (a repeated one-off measurement)
            notes.append(note)
        return None
    info["graph"] = "whole graph (torch.ao FX: fused conv/linear + ReLU, int8 between layers)"
    return prepared
