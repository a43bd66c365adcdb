"""Pruning methods: unstructured L1 magnitude, structured (neurons and heads removed), layer dropping.

They differ in what the hardware sees. Unstructured pruning zeroes weights but leaves every dense kernel
the same size, so on a CPU it usually saves nothing (the report must say so). Structured pruning and layer
dropping rebuild smaller ``nn.Linear`` layers / shorter layer lists, so the kernels really shrink.
"""

from __future__ import annotations

from typing import Any

from energybench.subjects.api import (
    CompressionMethod,
    Context,
    Model,
    NotApplicable,
    Subject,
    clone,
    parse_fraction,
)


class L1Unstructured(CompressionMethod):
    """``prune-l1-<sparsity>``: ``torch.nn.utils.prune.l1_unstructured`` on every Linear / attention
    projection, then ``prune.remove`` so no forward-pre-hooks stay attached (hooks change the MHA fast-path
    decision and cost time of their own)."""

    name = "prune-l1"
    description = "unstructured L1 magnitude pruning of Linear and attention weights (zeros, same shapes)"
    example = "prune-l1-0.5"

    def parse(self, suffix: str) -> dict[str, Any]:
        return {"sparsity": parse_fraction(suffix or "0.5", "sparsity", self.name)}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        from torch import nn
        from torch.nn.utils import prune

        module = clone(baseline)
        count = 0
        for sub in module.modules():
            targets = []
            if isinstance(sub, nn.Linear):
                targets.append("weight")
            if isinstance(sub, nn.MultiheadAttention) and sub.in_proj_weight is not None:
                targets.append("in_proj_weight")
            for attr in targets:
                prune.l1_unstructured(sub, attr, amount=params["sparsity"])
                prune.remove(sub, attr)
                count += 1
        return Model(module, params={**params, "tensors_pruned": count},
                     notes=["unstructured zeros keep dense kernel shapes: expect no saving on dense CPU kernels"])


class StructuredPruning(CompressionMethod):
    """``prune-structured-<fraction>``: removes that fraction of feed-forward neurons (lowest L1 importance
    of the up-projection row plus the down-projection column) and, where the subject can, of attention heads,
    rebuilding smaller ``nn.Linear`` layers."""

    name = "prune-structured"
    description = "structured pruning: removes FFN neurons (and attention heads where possible), smaller kernels"
    example = "prune-structured-0.5"

    def parse(self, suffix: str) -> dict[str, Any]:
        return {"fraction": parse_fraction(suffix or "0.5", "fraction", self.name)}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        module = clone(baseline)
        fraction = params["fraction"]
        removed = 0
        for up_owner, up_attr, down_owner, down_attr in subject.ffn_pairs(module):
            removed += shrink_ffn(up_owner, up_attr, down_owner, down_attr, fraction)
        notes: list[str] = []
        try:
            heads = subject.prune_heads(module, fraction)
        except NotApplicable as why:
            heads = 0
            notes.append(str(why))
        return Model(module, params={**params, "ffn_neurons_removed": removed, "heads_removed": heads}, notes=notes)


def shrink_ffn(up_owner: Any, up_attr: str, down_owner: Any, down_attr: str, fraction: float) -> int:
    """Keep the most important ``1 - fraction`` hidden neurons of ``up -> down``; returns how many went."""
    import torch

    up = getattr(up_owner, up_attr)
    down = getattr(down_owner, down_attr)
    hidden = up.out_features
    keep_n = max(1, int(round(hidden * (1.0 - fraction))))
    importance = up.weight.detach().abs().sum(dim=1) + down.weight.detach().abs().sum(dim=0)
    keep = torch.sort(torch.topk(importance, keep_n).indices).values
    setattr(up_owner, up_attr, linear_subset(up, rows=keep))
    setattr(down_owner, down_attr, linear_subset(down, cols=keep))
    return hidden - keep_n


def linear_subset(layer: Any, rows: Any = None, cols: Any = None) -> Any:
    """A new, physically smaller ``nn.Linear`` holding the selected output rows / input columns."""
    import torch
    from torch import nn

    weight = layer.weight.detach()
    if rows is not None:
        weight = weight[rows]
    if cols is not None:
        weight = weight[:, cols]
    bias = layer.bias.detach() if layer.bias is not None else None
    if bias is not None and rows is not None:
        bias = bias[rows]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


class LayerDrop(CompressionMethod):
    """``layer-drop-<fraction>``: removes that fraction of transformer layers, keeping evenly spaced ones
    (the first always), like the layer-dropping studies on BERT."""

    name = "layer-drop"
    description = "drops a fraction of transformer layers (evenly spaced layers are kept)"
    example = "layer-drop-0.5"

    def parse(self, suffix: str) -> dict[str, Any]:
        return {"fraction": parse_fraction(suffix or "0.5", "fraction", self.name)}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        from torch import nn

        module = clone(baseline)
        owner, attr = subject.layer_list(module)
        layers = getattr(owner, attr)
        n = len(layers)
        keep_n = max(1, int(round(n * (1.0 - params["fraction"]))))
        keep = sorted({int(i * n / keep_n) for i in range(keep_n)})
        setattr(owner, attr, nn.ModuleList([layers[i] for i in keep]))
        subject.on_layers_changed(module, len(keep))
        return Model(module, params={**params, "layers_kept": keep, "layers_before": n})
