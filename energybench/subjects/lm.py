"""A small decoder-only transformer LM trained from scratch on the Python standard library's docstrings.

Why this model: it needs no download (the text is on every machine with Python), trains to a useful loss in
seconds on a CPU, and is a real transformer (``nn.TransformerEncoder`` with a causal mask), so pruning,
quantization and distillation act on the same kernels they would in a big model. The corpus is collected
deterministically (sorted files, AST docstrings, a byte budget) and its size and sha256 are recorded with
every run, because a different Python version means different text and different figures.

Tokens are bytes (vocabulary 256): no tokenizer to ship or train.
"""

from __future__ import annotations

import ast
import hashlib
import math
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects.api import (
    Context,
    Distillable,
    Model,
    NotApplicable,
    Quality,
    Subject,
    Workload,
)
from energybench.subjects.cache import baseline_cache, save_baseline

VOCAB = 256


@dataclass(frozen=True)
class LMConfig:
    """Model size, training budget and workload sizes; ``quick`` and tests shrink it."""

    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int = 512
    context: int = 128
    batch: int = 32
    lr: float = 2e-3
    train_steps: int = 1500  # baseline training (cached)
    target_loss: float = 2.2  # nats/byte for the train-to-target workload
    max_target_steps: int = 600
    steps_per_trial: int = 8  # train-step workload
    gen_batch: int = 8
    gen_tokens: int = 32
    score_batches: int = 4
    val_batches: int = 16
    corpus_bytes: int = 1_000_000
    distill_steps: int = 600


# Sized so that ``--quick`` (all methods, both phases) fits in a few minutes on two shared CPU cores.
QUICK = LMConfig(
    d_model=64, n_heads=4, n_layers=4, d_ff=256, context=64, batch=16, lr=3e-3, train_steps=300,
    target_loss=3.0, max_target_steps=120, steps_per_trial=4, gen_batch=8, gen_tokens=16, score_batches=2,
    val_batches=8, corpus_bytes=400_000, distill_steps=150,
)


# --------------------------------------------------------------------------------------------------------
# Corpus


@dataclass(frozen=True)
class Corpus:
    data: bytes
    sha256: str
    files: int
    source: str

    def describe(self) -> dict[str, Any]:
        return {"bytes": len(self.data), "sha256": self.sha256, "files": self.files, "source": self.source}


def collect_docstrings(max_bytes: int, stdlib: str | None = None) -> Corpus:
    """Docstrings of the top-level stdlib modules, in sorted file order, up to ``max_bytes`` of UTF-8."""
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    parts: list[bytes] = []
    total = 0
    files = 0
    for path in sorted(root.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        files += 1
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    chunk = (doc.strip() + "\n\n").encode("utf-8")
                    parts.append(chunk)
                    total += len(chunk)
        if total >= max_bytes:
            break
    data = b"".join(parts)[:max_bytes]
    if len(data) < 10_000:
        raise ConfigError(f"only {len(data)} bytes of docstrings found under {root}: is the stdlib installed?")
    source = f"docstrings of {root}/*.py (Python {sys.version.split()[0]})"
    return Corpus(data, hashlib.sha256(data).hexdigest(), files, source)


# --------------------------------------------------------------------------------------------------------
# Model


def build_model(cfg: LMConfig) -> Any:
    import torch
    from torch import nn

    class TinyLM(nn.Module):
        """Byte-level decoder-only transformer: embeddings, causal ``nn.TransformerEncoder``, LM head."""

        def __init__(self, c: LMConfig) -> None:
            super().__init__()
            self.config = c
            self.tok = nn.Embedding(VOCAB, c.d_model)
            self.pos = nn.Embedding(c.context, c.d_model)
            layer = nn.TransformerEncoderLayer(
                c.d_model, c.n_heads, c.d_ff, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
            )
            self.encoder = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(c.d_model)
            self.head = nn.Linear(c.d_model, VOCAB)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            t = idx.shape[1]
            x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=idx.device), diagonal=1)
            x = self.encoder(x, mask=mask, is_causal=True)
            return self.head(self.norm(x)).float()

    return TinyLM(cfg)


class Batches:
    """Deterministic random windows of the corpus: (inputs, next-byte targets)."""

    def __init__(self, tokens: Any, context: int, batch: int, seed: int, device: str) -> None:
        import torch

        self.tokens = tokens
        self.context = context
        self.batch = batch
        self.device = device
        self.gen = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return self

    def __next__(self) -> tuple[Any, Any]:
        import torch

        starts = torch.randint(0, len(self.tokens) - self.context - 1, (self.batch,), generator=self.gen)
        x = torch.stack([self.tokens[s : s + self.context] for s in starts])
        y = torch.stack([self.tokens[s + 1 : s + self.context + 1] for s in starts])
        return x.to(self.device), y.to(self.device)


def lm_loss(module: Any, x: Any, y: Any) -> Any:
    import torch.nn.functional as F

    logits = module(x)
    return F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))


def train(module: Any, batches: Iterator[tuple[Any, Any]], steps: int, lr: float,
          stop: Any = None) -> int:
    """AdamW for ``steps`` steps (or until ``stop(step)`` is true); returns the steps taken."""
    import torch

    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=0.01)
    for step in range(steps):
        x, y = next(batches)
        loss = lm_loss(module, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if stop is not None and stop(step + 1):
            module.eval()
            return step + 1
    module.eval()
    return steps


def val_loss(module: Any, val: Any, cfg: LMConfig, device: str) -> float:
    """Mean next-byte cross-entropy over fixed, evenly spaced validation windows."""
    import torch

    n = cfg.val_batches * 8
    span = len(val) - cfg.context - 1
    starts = [int(i * span / n) for i in range(n)]
    x = torch.stack([val[s : s + cfg.context] for s in starts]).to(device)
    y = torch.stack([val[s + 1 : s + cfg.context + 1] for s in starts]).to(device)
    module.eval()
    with torch.inference_mode():
        total = 0.0
        for i in range(0, n, 8):
            total += float(lm_loss(module, x[i : i + 8], y[i : i + 8]))
    return total / (n / 8)


# --------------------------------------------------------------------------------------------------------
# Subject


class LMSubject(Subject):
    name = "lm"
    description = "byte-level decoder-only transformer trained from scratch on the stdlib's docstrings"
    default_methods = (
        "prune-l1-0.5", "prune-structured-0.5", "layer-drop-0.5", "int8-dynamic", "int8-dynamic-perchannel",
        "int8-static", "int8-weight-perchannel", "bf16", "fp16", "distill-soft-t2", "distill-hard",
    )

    def __init__(self) -> None:
        self.cfg: LMConfig | None = None
        self.corpus: Corpus | None = None
        self._train_tokens: Any = None
        self._val_tokens: Any = None
        self._baseline_info: dict[str, Any] = {}
        self.device = "cpu"

    # -- set-up ---------------------------------------------------------------------------------------------
    def configure(self, ctx: Context) -> LMConfig:
        base = QUICK if ctx.quick else LMConfig()
        overrides = {k: v for k, v in ctx.options.get("lm", {}).items()}
        unknown = set(overrides) - set(asdict(base))
        if unknown:
            raise ConfigError(f"unknown lm option(s) {sorted(unknown)}; known: {sorted(asdict(base))}")
        cfg = replace(base, **overrides)
        if cfg.d_model % cfg.n_heads:
            raise ConfigError(f"lm: d_model {cfg.d_model} must be a multiple of n_heads {cfg.n_heads}")
        return cfg

    def _load_corpus(self, cfg: LMConfig, ctx: Context) -> None:
        import torch

        if self.corpus is None or len(self.corpus.data) != min(len(self.corpus.data), cfg.corpus_bytes):
            self.corpus = collect_docstrings(cfg.corpus_bytes)
        tokens = torch.frombuffer(bytearray(self.corpus.data), dtype=torch.uint8).long()
        cut = int(len(tokens) * 0.9)
        self._train_tokens, self._val_tokens = tokens[:cut], tokens[cut:]

    def baseline(self, ctx: Context) -> Model:
        import torch

        cfg = self.cfg = self.configure(ctx)
        self.device = ctx.device
        self._load_corpus(cfg, ctx)
        assert self.corpus is not None
        cache = baseline_cache("lm", {"corpus": self.corpus.sha256}, cfg, ctx)
        torch.manual_seed(ctx.seed)
        module = build_model(cfg).to(ctx.device)
        if cache.exists():
            state = torch.load(cache, map_location=ctx.device, weights_only=True)
            module.load_state_dict(state["model"])
            self._baseline_info = {"cache": str(cache), "cached": True, "train_steps": cfg.train_steps,
                                   "val_loss": float(state["val_loss"])}
            ctx.log(f"lm: baseline loaded from cache {cache}")
        else:
            ctx.log(f"lm: training the baseline ({cfg.train_steps} steps; cached afterwards in {cache.parent})")
            batches = Batches(self._train_tokens, cfg.context, cfg.batch, ctx.seed, ctx.device)
            train(module, batches, cfg.train_steps, cfg.lr)
            loss = val_loss(module, self._val_tokens, cfg, ctx.device)
            self._baseline_info = {"cache": str(cache), "cached": False, "train_steps": cfg.train_steps,
                                   "val_loss": loss}
            save_baseline(cache, {"model": module.state_dict(), "val_loss": loss}, ctx, "lm")
        module.eval()
        return Model(module)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"tokenizer": "bytes (vocab 256)"}
        if self.cfg is not None:
            meta["config"] = asdict(self.cfg)
        if self.corpus is not None:
            meta["corpus"] = self.corpus.describe()
        meta["baseline"] = self._baseline_info
        return meta

    # -- workloads ------------------------------------------------------------------------------------------
    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        import torch

        cfg = self._cfg()
        module = model.module
        device = ctx.device
        val = self._val_tokens
        n = cfg.gen_batch
        prompt_starts = [int(i * (len(val) - cfg.context) / n) for i in range(n)]
        prompt = torch.stack([val[s : s + cfg.context // 2] for s in prompt_starts]).to(device)
        score_n = cfg.score_batches * cfg.gen_batch
        score_starts = [int(i * (len(val) - cfg.context) / score_n) for i in range(score_n)]
        score_x = torch.stack([val[s : s + cfg.context] for s in score_starts]).to(device)

        def generate() -> int:
            with torch.inference_mode():
                seq = prompt
                for _ in range(cfg.gen_tokens):
                    logits = module(seq[:, -cfg.context :])
                    nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)
                    seq = torch.cat([seq, nxt], dim=1)
            return n * cfg.gen_tokens

        def score() -> int:
            with torch.inference_mode():
                for i in range(0, score_n, cfg.gen_batch):
                    module(score_x[i : i + cfg.gen_batch])
            return score_n * cfg.context

        work = [
            Workload("inference-generate", "inference", "token", generate,
                     metadata={"batch": n, "new_tokens": cfg.gen_tokens}),
            Workload("inference-score", "inference", "token", score,
                     metadata={"sequences": score_n, "context": cfg.context}),
        ]
        work.append(self._train_step_workload(model, ctx))
        if model.method is None:
            work.append(self._to_target_workload(ctx))
        return work

    def _train_step_workload(self, model: Model, ctx: Context) -> Workload:


        cfg = self._cfg()
        state: dict[str, Any] = {}

        def setup() -> None:
            state["module"], state["opt"] = model.training_copy(cfg.lr * 0.1)
            state["batches"] = Batches(self._train_tokens, cfg.context, cfg.batch, ctx.seed + 7, ctx.device)

        def run() -> int:
            m, opt, batches = state["module"], state["opt"], state["batches"]
            for _ in range(cfg.steps_per_trial):
                x, y = next(batches)
                loss = lm_loss(m, x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return cfg.steps_per_trial

        return Workload("train-step", "train", "step", run, setup, repeatable=True,  # more steps on the copy
                        metadata={"batch": cfg.batch, "context": cfg.context, "optimizer": "AdamW"})

    def _to_target_workload(self, ctx: Context) -> Workload:
        import torch

        cfg = self._cfg()
        state: dict[str, Any] = {}
        check_every = 20

        def setup() -> None:
            torch.manual_seed(ctx.seed)
            state["module"] = build_model(cfg).to(ctx.device)
            state["batches"] = Batches(self._train_tokens, cfg.context, cfg.batch, ctx.seed, ctx.device)

        def run() -> int:
            m = state["module"]

            def reached(step: int) -> bool:
                if step % check_every:
                    return False
                loss = val_loss(m, self._val_tokens, cfg, ctx.device)
                m.train()
                state["loss"] = loss
                return loss <= cfg.target_loss

            steps = train(m, state["batches"], cfg.max_target_steps, cfg.lr, stop=reached)
            state["steps"] = steps
            if state.get("loss", math.inf) > cfg.target_loss:
                ctx.log(f"lm: train-to-target did not reach loss {cfg.target_loss} in {steps} steps")
            return 1

        wl = Workload("train-to-target", "train", "run", run, setup,
                      metadata={"target_val_loss": cfg.target_loss, "max_steps": cfg.max_target_steps},
                      layers=False)  # trains a fresh model: the benchmarked one's layers never run
        wl.metadata["_state"] = state  # the runner copies steps/loss reached into the round
        return wl

    # -- quality ---------------------------------------------------------------------------------------------
    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        cfg = self._cfg()
        loss = val_loss(model.module, self._val_tokens, cfg, ctx.device)
        base = self._baseline_info.get("val_loss")
        if base is None or model.module is not baseline.module:
            base = val_loss(baseline.module, self._val_tokens, cfg, ctx.device)
        return Quality("perplexity", math.exp(loss), higher_is_better=False, baseline=math.exp(base),
                       extra={"val_loss": loss})

    def calibrate(self, module: Any, ctx: Context) -> int:
        """Validation windows halfway between the ones perplexity is measured on: held out from training and
        disjoint from the quality windows (checked), so static quantization never sees what it is scored on."""
        import torch

        cfg = self._cfg()
        val = self._val_tokens
        n = cfg.val_batches * 8
        span = len(val) - cfg.context - 1
        stride = span / n
        if stride < 2 * cfg.context:
            raise NotApplicable(f"lm: the validation split ({len(val)} bytes) is too small for calibration windows "
                                "disjoint from the perplexity windows; raise corpus_bytes")
        starts = [int(i * stride + stride / 2) for i in range(n)]
        x = torch.stack([val[s : s + cfg.context] for s in starts]).to(ctx.device)
        with torch.no_grad():
            for i in range(0, n, 8):
                module(x[i : i + 8])
        return n

    def _cfg(self) -> LMConfig:
        if self.cfg is None:
            raise RuntimeError("lm: baseline() must run before workloads or quality")
        return self.cfg

    # -- structure hooks ------------------------------------------------------------------------------------
    def ffn_pairs(self, module: Any) -> list[tuple[Any, str, Any, str]]:
        return [(layer, "linear1", layer, "linear2") for layer in module.encoder.layers]

    def layer_list(self, module: Any) -> tuple[Any, str]:
        return module.encoder, "layers"

    def on_layers_changed(self, module: Any, n_layers: int) -> None:
        module.encoder.num_layers = n_layers

    def prune_heads(self, module: Any, fraction: float) -> int:
        raise NotApplicable("lm: nn.MultiheadAttention ties head count to the model width; heads are kept")

    def distillation(self) -> Distillable:
        return _LMDistill(self)


class _LMDistill(Distillable):
    def __init__(self, subject: LMSubject) -> None:
        self.subject = subject

    def make_student(self, teacher: Any, width: float, depth: float) -> Any:
        c: LMConfig = teacher.config
        heads = c.n_heads
        d_model = max(heads, int(round(c.d_model * width / heads)) * heads)
        student_cfg = replace(c, d_model=d_model, d_ff=max(1, int(c.d_ff * width)),
                              n_layers=max(1, int(round(c.n_layers * depth))))
        return build_model(student_cfg)

    def batches(self, seed: int) -> Iterator[Any]:
        cfg = self.subject._cfg()
        return Batches(self.subject._train_tokens, cfg.context, cfg.batch, seed, self.subject.device)

    def steps(self) -> int:
        return self.subject._cfg().distill_steps

    def lr(self) -> float:
        return self.subject._cfg().lr

    def logits(self, module: Any, batch: Any) -> Any:
        return module(batch[0].to(next(module.parameters()).device)).reshape(-1, VOCAB)

    def targets(self, batch: Any) -> Any:
        return batch[1].reshape(-1)
