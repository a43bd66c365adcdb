"""Pruning methods: unstructured L1 magnitude, structured (neurons, heads, conv channels removed), layer dropping.

They differ in what the hardware sees. Unstructured pruning zeroes weights but leaves every dense kernel
the same size, so on a CPU it usually saves nothing (the report must say so). Structured pruning and layer
dropping rebuild smaller ``nn.Linear`` / ``nn.Conv2d`` layers and shorter layer lists, so the kernels
really shrink: a conv channel that goes takes its filter, its bias and the next layer's inputs with it.
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
    """``prune-l1-<sparsity>``: ``torch.nn.utils.prune.l1_unstructured`` on every Linear / Conv2d / attention
    projection, then ``prune.remove`` so no forward-pre-hooks stay attached (hooks change the MHA fast-path
    decision and cost time of their own)."""

    name = "prune-l1"
    description = "unstructured L1 magnitude pruning of Linear, Conv2d and attention weights (zeros, same shapes)"
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
            if isinstance(sub, nn.Linear | nn.Conv2d):
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
    of the up-projection row plus the down-projection column) and, where the subject can, of attention heads
    and of conv channels (lowest filter L1 norm), rebuilding smaller ``nn.Linear`` / ``nn.Conv2d`` layers."""

    name = "prune-structured"
    description = "structured pruning: removes FFN neurons, attention heads and conv channels where possible"
    example = "prune-structured-0.5"

    def parse(self, suffix: str) -> dict[str, Any]:
        return {"fraction": parse_fraction(suffix or "0.5", "fraction", self.name)}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        module = clone(baseline)
        fraction = params["fraction"]
        removed: dict[str, int] = {}
        notes: list[str] = []
        try:
            pairs = subject.ffn_pairs(module)
        except NotApplicable as why:
            pairs = []
            notes.append(str(why))
        removed["ffn_neurons_removed"] = sum(shrink_ffn(*pair, fraction) for pair in pairs)
        skipped: dict[str, str] = {}
        for key, hook in (("channels_removed", subject.prune_channels), ("heads_removed", subject.prune_heads)):
            try:
                removed[key] = hook(module, fraction)
            except NotApplicable as why:
                removed[key] = 0
                skipped[key] = str(why)
        if "heads_removed" in skipped and not removed["channels_removed"]:
            notes.append(skipped["heads_removed"])  # a transformer that keeps its heads says why; a CNN has none
        if not any(removed.values()):
            raise NotApplicable(f"prune-structured: {subject.name!r} exposes no FFN blocks, heads or conv channels")
        return Model(module, params={**params, **removed}, notes=notes)


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


def conv_subset(conv: Any, out_idx: Any = None, in_idx: Any = None) -> Any:
    """A new, physically smaller ``nn.Conv2d`` holding the selected output filters / input channels."""
    import torch
    from torch import nn

    weight = conv.weight.detach()
    if out_idx is not None:
        weight = weight[out_idx]
    if in_idx is not None:
        weight = weight[:, in_idx]
    bias = conv.bias.detach() if conv.bias is not None else None
    if bias is not None and out_idx is not None:
        bias = bias[out_idx]
    new = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    dilation=conv.dilation, bias=bias is not None, padding_mode=conv.padding_mode,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None and new.bias is not None:
            new.bias.copy_(bias)
    return new


def shrink_conv_channels(convs: list[tuple[Any, str]], head: tuple[Any, str], features_per_channel: int,
                         fraction: float) -> int:
    """Remove ``fraction`` of the output channels of each conv in a chain (lowest filter L1 norm, as in Li et
    al. 2017, "Pruning Filters for Efficient ConvNets"); the next conv loses the same input channels, and the
    linear layer after the last conv (``head``) loses the ``features_per_channel`` flattened inputs of each
    removed channel. ``convs`` are ``(owner, attr)`` in forward order, with only element-wise layers and
    pooling between them. Returns how many channels went."""
    import torch

    removed = 0
    keep_prev = None
    for i, (owner, attr) in enumerate(convs):
        conv = getattr(owner, attr)
        n = conv.out_channels
        keep_n = max(1, int(round(n * (1.0 - fraction))))
        norms = conv.weight.detach().abs().sum(dim=(1, 2, 3))
        keep = torch.sort(torch.topk(norms, keep_n).indices).values
        setattr(owner, attr, conv_subset(conv, out_idx=keep, in_idx=keep_prev))
        removed += n - keep_n
        keep_prev = keep
        if i == len(convs) - 1:
            h_owner, h_attr = head
            cols = (keep[:, None] * features_per_channel + torch.arange(features_per_channel)[None, :]).reshape(-1)
            setattr(h_owner, h_attr, linear_subset(getattr(h_owner, h_attr), cols=cols.to(keep.device)))
    return removed


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
