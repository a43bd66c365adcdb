"""Embedding-table compression: row-wise int8 / int4 quantization and row pruning (by frequency or norm).

Why these: in a recommender the embedding tables are nearly all of the model's bytes and its inference is
memory-bound lookups, so the methods that matter shrink the tables, not the MLPs. Both are what production
recommenders ship (FBGEMM's row-wise quantized tables in DLRM/TorchRec; pruned tables with an index remap).

* ``emb-int8`` / ``emb-int4``: every ``nn.EmbeddingBag`` (and ``nn.Embedding``) becomes torch's quantized
  ``EmbeddingBag`` (``torch.ao.nn.quantized``) with one float scale and zero point per row; int4 stores two
  values per byte (``quint4x2``). Lookups dequantize on the fly with FBGEMM's row-wise kernels: CPU only, no
  backward pass. ``nn.Embedding`` tables are served through a bag of one index each, because torch 2.13's
  quantized ``Embedding`` returns wrong shapes for int4.
* ``emb-prune-freq-<fraction>`` / ``emb-prune-norm-<fraction>``: that fraction of every table's rows goes,
  the least used (the subject reports row frequencies) or the smallest by L2 norm. The kept rows are stored
  compactly with an int32 remap from old to new row; removed rows share one fallback row, the mean of what was
  removed, so a pruned user or item still gets an average vector rather than an error.

Each method records every table's rows and serialized bytes before and after (``params["tables"]``), and
the run's model size counts the quantized tables at their stored size (``subjects.api.model_size``).
"""

from __future__ import annotations

import io
import re
import warnings
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import CompressionMethod, Context, Model, NotApplicable, Subject, clone, parse_fraction

_PRUNE = re.compile(r"^(?P<criterion>freq|norm)(?:-(?P<fraction>.+))?$")


def find_tables(module: Any) -> list[tuple[Any, str, str, Any]]:
    """``(owner, attr, qualified name, table)`` for every float ``nn.Embedding`` / ``nn.EmbeddingBag``."""
    from torch import nn

    found = []
    for qual, owner in module.named_modules():
        for attr, child in owner.named_children():
            if type(child) in (nn.Embedding, nn.EmbeddingBag):
                found.append((owner, attr, f"{qual}.{attr}" if qual else attr, child))
    return found


def table_bytes(table: Any) -> int:
    """Serialized bytes of one table's state (the measure ``model_size`` uses for the whole model)."""
    import torch

    buffer = io.BytesIO()
    torch.save(table.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def _no_tables(method: str, subject: Subject) -> NotApplicable:
    return NotApplicable(f"{method}: subject {subject.name!r} has no embedding tables (nn.Embedding / "
                         "nn.EmbeddingBag) to compress")


class QuantizedLookup:
    """Builds the module that serves an ``nn.Embedding``'s lookups from a quantized bag of one index each."""

    @staticmethod
    def wrap(bag: Any, dim: int) -> Any:
        from torch import nn

        class QuantizedEmbeddingLookup(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bag = bag
                self.embedding_dim = dim

            def forward(self, indices: Any) -> Any:
                import torch

                flat = indices.reshape(-1)
                offsets = torch.arange(flat.numel(), device=flat.device)
                return self.bag(flat, offsets).reshape(*indices.shape, self.embedding_dim)

        return QuantizedEmbeddingLookup()


def quantize_table(table: Any, bits: int) -> Any:
    """A row-wise int8 / int4 quantized copy of one float table (see the module docstring)."""
    import torch
    import torch.ao.nn.quantized as nnq
    from torch import nn
    from torch.ao.quantization import float_qparams_weight_only_qconfig, float_qparams_weight_only_qconfig_4bit

    qconfig = float_qparams_weight_only_qconfig if bits == 8 else float_qparams_weight_only_qconfig_4bit
    if isinstance(table, nn.EmbeddingBag):
        bag = table
    else:
        bag = nn.EmbeddingBag(table.num_embeddings, table.embedding_dim, mode="sum")
        with torch.no_grad():
            bag.weight.copy_(table.weight.detach().float())
    bag = bag.float()
    bag.qconfig = qconfig  # type: ignore[assignment]  # torch.ao reads it off the module
    with warnings.catch_warnings():  # torch.ao's deprecation notices; the method's note says it once
        warnings.simplefilter("ignore")
        quantized = nnq.EmbeddingBag.from_float(bag)
    return quantized if isinstance(table, nn.EmbeddingBag) else QuantizedLookup.wrap(quantized, table.embedding_dim)


class _EmbeddingQuant(CompressionMethod):
    bits = 8

    def parse(self, suffix: str) -> dict[str, Any]:
        if suffix not in ("", "rowwise"):
            raise ConfigError(f"{self.name}: unknown variant {suffix!r}; the quantization is row-wise, use {self.name}")
        return {"bits": self.bits, "granularity": "per-row"}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        if ctx.device != "cpu":
            raise NotApplicable(f"{self.name}: torch's quantized embedding kernels (FBGEMM) run on CPU only")
        module = clone(baseline).float().eval()
        found = find_tables(module)
        if not found:
            raise _no_tables(self.name, subject)
        tables: dict[str, Any] = {}
        for owner, attr, qual, table in found:
            before = table_bytes(table)
            quantized = quantize_table(table, self.bits)
            setattr(owner, attr, quantized)
            tables[qual] = {"rows": int(table.num_embeddings), "dim": int(table.embedding_dim),
                            "bytes_before": before, "bytes": table_bytes(quantized)}
        total = sum(t["bytes"] for t in tables.values())
        return Model(module, params={**params, "tables": tables, "embedding_bytes": total,
                                     "embedding_bytes_before": sum(t["bytes_before"] for t in tables.values())},
                     notes=[f"embedding tables {total / 1e3:.1f} kB at int{self.bits} (row-wise scale and zero point); "
                            "torch.ao.quantization is deprecated upstream (torchao is its successor)"],
                     trainable=False, dtype=f"int{self.bits}-embedding")


class EmbeddingInt8(_EmbeddingQuant):
    name = "emb-int8"
    description = "row-wise int8 quantization of embedding tables (torch.ao quantized EmbeddingBag, FBGEMM)"
    example = "emb-int8"
    bits = 8


class EmbeddingInt4(_EmbeddingQuant):
    name = "emb-int4"
    description = "row-wise int4 quantization of embedding tables, two values per byte (torch.ao quint4x2)"
    example = "emb-int4"
    bits = 4


class EmbeddingPrune(CompressionMethod):
    """``emb-prune-freq-<fraction>`` or ``emb-prune-norm-<fraction>``: remove that fraction of every table's
    rows (least used, or smallest L2 norm), serving the rest through a compact table and an index remap."""

    name = "emb-prune"
    description = "embedding row pruning: the least used (freq) or smallest (norm) rows removed, index remapped"
    example = "emb-prune-freq-0.5, emb-prune-norm-0.5"

    def parse(self, suffix: str) -> dict[str, Any]:
        m = _PRUNE.match(suffix or "freq")
        if not m:
            raise ConfigError(f"emb-prune: unknown criterion in {suffix!r}; use emb-prune-freq-<fraction> or "
                              "emb-prune-norm-<fraction> (e.g. emb-prune-freq-0.5)")
        fraction = parse_fraction(m["fraction"] or "0.5", "fraction", f"emb-prune-{m['criterion']}")
        return {"criterion": "frequency" if m["criterion"] == "freq" else "l2-norm", "fraction": fraction}

    def apply(self, baseline: Model, subject: Subject, params: dict[str, Any], ctx: Context) -> Model:
        module = clone(baseline)
        found = find_tables(module)
        if not found:
            raise _no_tables("emb-prune", subject)
        counts: dict[str, Any] = {}
        if params["criterion"] == "frequency":
            report = getattr(subject, "embedding_frequencies", None)
            if report is None:
                raise NotApplicable(f"emb-prune-freq: subject {subject.name!r} does not report how often each "
                                    "embedding row is used; use emb-prune-norm")
            counts = report(module)
        tables: dict[str, Any] = {}
        for owner, attr, qual, table in found:
            if params["criterion"] == "l2-norm":
                importance = table.weight.detach().float().norm(dim=1)
            elif (importance := counts.get(qual)) is None:
                raise NotApplicable(f"emb-prune-freq: subject {subject.name!r} gives no row frequencies for "
                                    f"table {qual!r}")
            pruned = prune_table(table, importance, params["fraction"])
            setattr(owner, attr, pruned)
            tables[qual] = {"rows": int(table.num_embeddings), "rows_kept": int(pruned.weight.shape[0] - 1),
                            "bytes_before": table_bytes(table), "bytes": table_bytes(pruned)}
        total = sum(t["bytes"] for t in tables.values())
        return Model(module, params={**params, "tables": tables, "embedding_bytes": total,
                                     "embedding_bytes_before": sum(t["bytes_before"] for t in tables.values())},
                     notes=[f"embedding tables {total / 1e3:.1f} kB after pruning (kept rows plus an int32 remap); "
                            "removed rows share their mean as a fallback row"])


def prune_table(table: Any, importance: Any, fraction: float) -> Any:
    """A compact copy of ``table`` keeping its most important ``1 - fraction`` rows (ties: lower index first),
    plus one fallback row (the mean of the removed rows) that every removed index maps to."""
    import torch
    from torch import nn

    rows = table.num_embeddings
    keep_n = max(1, int(round(rows * (1.0 - fraction))))
    order = torch.argsort(torch.as_tensor(importance, dtype=torch.float64).cpu(), descending=True, stable=True)
    keep = torch.sort(order[:keep_n]).values
    removed = torch.sort(order[keep_n:]).values
    weight = table.weight.detach()
    fallback = weight[removed].mean(dim=0, keepdim=True) if len(removed) else torch.zeros_like(weight[:1])
    remap = torch.full((rows,), keep_n, dtype=torch.int32)
    remap[keep] = torch.arange(keep_n, dtype=torch.int32)
    bag = isinstance(table, nn.EmbeddingBag)
    mode: str = table.mode if bag else "sum"

    class PrunedEmbedding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.cat([weight[keep], fallback]).clone())
            self.register_buffer("remap", remap.to(weight.device))
            self.num_embeddings = rows
            self.embedding_dim = table.embedding_dim

        def forward(self, indices: Any, offsets: Any = None) -> Any:
            import torch.nn.functional as F

            remap: Any = self.remap
            compact = remap[indices].long()
            if bag:
                return F.embedding_bag(compact, self.weight, offsets, mode=mode)
            return F.embedding(compact, self.weight)

    return PrunedEmbedding()
