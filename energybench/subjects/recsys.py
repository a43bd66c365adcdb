"""Recommendation: a two-tower recommender (embedding tables + small MLPs) on synthetic interactions.

Why this model: recommenders are a large share of data-centre inference, and their cost is unlike a CNN's:
nearly all the bytes are in sparse embedding tables and serving a query is mostly memory-bound lookups, so
the compression that matters is to the tables (``subjects.embedding``: row-wise int8/int4, row pruning). The
towers are the DLRM/YouTube shape: ``nn.EmbeddingBag`` tables (users, items), each followed by a residual
two-layer MLP; a query's score for an item is the dot product of the two towers' vectors.

The data are synthetic (``recsys_data``, generator v1, a fixed seed): no package on PyPI ships a public
interaction log. The planted clusters give recall@10 a known floor (chance) and ceiling (an oracle that knows
the generator's probabilities), both recorded next to the model's figure. Every figure from this subject is
on synthetic data, and its records say so.

Workloads: ``inference-query`` scores each query's candidate set (random catalogue items) and takes the top
k, per query; ``train-step`` is one full-softmax AdamW step over the catalogue, per step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from energybench.errors import ConfigError
from energybench.measuring.threads import one_thread
from energybench.subjects.api import Context, Distillable, Model, NotApplicable, Quality, Subject, Workload
from energybench.subjects.cache import cached_baseline
from energybench.subjects.embedding import table_bytes
from energybench.subjects.recsys_data import GeneratorConfig, Interactions, generate, ranking_scores, reference_scores


@dataclass(frozen=True)
class RecsysConfig:
    """The synthetic catalogue, the towers, the training budget and the workload sizes."""

    users: int = 20000
    items: int = 5000
    clusters: int = 50
    interactions: int = 30
    zipf: float = 1.0
    noise: float = 0.1
    holdout: int = 2
    data_seed: int = 0  # the data stay the same under --seed; the model's initialisation follows it
    dim: int = 64
    hidden: int = 128
    batch: int = 512
    lr: float = 1e-2
    epochs: int = 4  # baseline training over the training interactions (cached)
    steps_per_trial: int = 4  # train-step workload
    queries: int = 256  # inference-query: queries per trial
    candidates: int = 500  # items scored per query
    k: int = 10

    def generator(self) -> GeneratorConfig:
        return GeneratorConfig(self.users, self.items, self.clusters, self.interactions, self.zipf, self.noise,
                               self.holdout)


QUICK = RecsysConfig(users=2000, items=1000, clusters=20, interactions=20, dim=32, hidden=64, batch=256, epochs=2,
                     steps_per_trial=2, queries=128, candidates=200)


def build_model(cfg: RecsysConfig) -> Any:
    """Two towers over ``nn.EmbeddingBag`` tables (bags of one id: the layout FBGEMM's kernels serve)."""
    import torch
    from torch import nn

    class TwoTower(nn.Module):
        def __init__(self, c: RecsysConfig) -> None:
            super().__init__()
            self.config = c
            self.users = nn.EmbeddingBag(c.users, c.dim, mode="sum")
            self.items = nn.EmbeddingBag(c.items, c.dim, mode="sum")
            for table in (self.users, self.items):
                nn.init.normal_(table.weight, std=0.1)
            self.user_up, self.user_down = nn.Linear(c.dim, c.hidden), nn.Linear(c.hidden, c.dim)
            self.item_up, self.item_down = nn.Linear(c.dim, c.hidden), nn.Linear(c.hidden, c.dim)
            self.relu = nn.ReLU()

        @staticmethod
        def lookup(table: Any, ids: Any) -> Any:
            flat = ids.reshape(-1)
            return table(flat, torch.arange(flat.numel(), device=flat.device)).reshape(*ids.shape, -1)

        def user_vectors(self, ids: Any) -> Any:
            e = self.lookup(self.users, ids)
            return e + self.user_down(self.relu(self.user_up(e)))

        def item_vectors(self, ids: Any) -> Any:
            e = self.lookup(self.items, ids)
            return e + self.item_down(self.relu(self.item_up(e)))

        def forward(self, users: Any, items: Any) -> Any:
            """Scores ``[queries, candidates]`` for users ``[queries]`` and their candidates ``[queries, C]``."""
            return (self.item_vectors(items) * self.user_vectors(users)[:, None, :]).sum(dim=-1)

    return TwoTower(cfg)


def train(module: Any, pairs: Any, steps: int, lr: float, seed: int) -> None:
    """Full-softmax training: each step scores a batch of users against the whole catalogue."""
    import torch

    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=1e-5)
    batches = pair_batches(pairs, module.config.batch, seed)
    for _ in range(steps):
        loss = softmax_loss(module, *next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    module.eval()


def softmax_loss(module: Any, users: Any, items: Any) -> Any:
    import torch
    import torch.nn.functional as F

    catalogue = torch.arange(module.config.items, device=users.device)
    logits = module.user_vectors(users).float() @ module.item_vectors(catalogue).float().T
    return F.cross_entropy(logits, items)


def pair_batches(pairs: tuple[Any, Any], batch: int, seed: int) -> Any:
    """Endless shuffled ``(users, items)`` batches of training interactions."""
    import torch

    users, items = pairs
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(users), generator=gen).to(users.device)
        for i in range(0, len(users) - batch + 1, batch):
            idx = order[i : i + batch]
            yield users[idx], items[idx]


def catalogue_scores(module: Any, data: Interactions, device: str = "cpu") -> Any:
    """``[eval users, items]`` scores as numpy, for the ranking metrics."""
    import torch

    with torch.inference_mode():
        u = module.user_vectors(torch.as_tensor(data.eval_users, device=device)).float()
        v = module.item_vectors(torch.arange(data.cfg.items, device=device)).float()
        return (u @ v.T).cpu().numpy()


def embedding_bytes(module: Any) -> int:
    """Bytes of the two tables as stored (float, quantized or pruned alike)."""
    return table_bytes(module.users) + table_bytes(module.items)


class RecsysSubject(Subject):
    name = "recsys"
    description = ("two-tower recommender (embedding tables + MLPs) on SYNTHETIC interactions (generator v1, planted "
                   "clusters): inference-query per query, train-step per step; quality: recall@10 vs chance/oracle")
    default_methods = ("emb-int8", "emb-int4", "emb-prune-freq-0.5", "emb-prune-norm-0.5", "int8-dynamic")

    def __init__(self) -> None:
        self.cfg: RecsysConfig | None = None
        self.data: Interactions | None = None
        self.references: dict[str, float] = {}
        self._baseline_info: dict[str, Any] = {}
        self._tensors: dict[str, Any] = {}

    def configure(self, ctx: Context) -> RecsysConfig:
        base = QUICK if ctx.quick else RecsysConfig()
        overrides = dict(ctx.options.get("recsys", {}))
        unknown = set(overrides) - set(asdict(base))
        if unknown:
            raise ConfigError(f"unknown recsys option(s) {sorted(unknown)}; known: {sorted(asdict(base))}")
        cfg = replace(base, **overrides)
        if cfg.clusters < 1 or cfg.items < 2 * cfg.clusters or cfg.users < 1:
            raise ConfigError(f"recsys: need users >= 1 and items >= 2 x clusters, got {cfg.users} users, "
                              f"{cfg.items} items, {cfg.clusters} clusters")
        if not 0 <= cfg.noise <= 1 or cfg.holdout < 1 or cfg.k < 1 or cfg.candidates > cfg.items:
            raise ConfigError("recsys: noise must be in [0, 1], holdout and k >= 1, candidates <= items "
                              f"(got noise {cfg.noise}, holdout {cfg.holdout}, k {cfg.k}, candidates {cfg.candidates})")
        return cfg

    def baseline(self, ctx: Context) -> Model:
        import torch

        cfg = self.cfg = self.configure(ctx)
        data = self.data = generate(cfg.generator(), cfg.data_seed)
        self.references = reference_scores(data, cfg.k)
        self._prepare_tensors(cfg, data, ctx.device)
        pairs = self._tensors["pairs"]
        steps = max(1, cfg.epochs * (len(pairs[0]) // cfg.batch))
        torch.manual_seed(ctx.seed)
        module = build_model(cfg).to(ctx.device)

        def train_now() -> None:
            with one_thread():
                train(module, pairs, steps, cfg.lr, ctx.seed)

        info = cached_baseline("recsys", data.sha256, cfg, ctx, module, steps, train_now)
        scores = ranking_scores(catalogue_scores(module, data, ctx.device), data, cfg.k)
        self._baseline_info = {**info, f"recall@{cfg.k}": scores["recall"], f"ndcg@{cfg.k}": scores["ndcg"]}
        return Model(module)

    def _prepare_tensors(self, cfg: RecsysConfig, data: Interactions, device: str) -> None:
        """Training pairs, and the inference queries: the first evaluated users, each with a fixed random
        candidate set (the calibration queries come from the next users, never the measured ones)."""
        import numpy as np
        import torch

        rng = np.random.default_rng(cfg.data_seed + 1)
        n = min(cfg.queries, len(data.eval_users))
        cands = np.stack([rng.choice(cfg.items, cfg.candidates, replace=False) for _ in range(2 * n)])
        users = np.arange(2 * n) % cfg.users
        t = lambda a: torch.as_tensor(a, dtype=torch.int64, device=device)  # noqa: E731
        self._tensors = {"pairs": (t(data.train_users), t(data.train_items)), "query_users": t(users[:n]),
                         "query_items": t(cands[:n]), "calib_users": t(users[n:]), "calib_items": t(cands[n:])}

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"baseline": self._baseline_info, "synthetic": True,
                                "references": self.references}
        if self.cfg is not None:
            meta["config"] = asdict(self.cfg)
        if self.data is not None:
            meta["data"] = self.data.describe()
        return meta

    def _ready(self) -> tuple[RecsysConfig, Interactions]:
        if self.cfg is None or self.data is None:
            raise RuntimeError("recsys: baseline() must run before workloads, quality or calibration")
        return self.cfg, self.data

    # -- workloads ------------------------------------------------------------------------------------------
    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        import torch

        cfg, _ = self._ready()
        module, tensors = model.module, self._tensors
        users, items = tensors["query_users"], tensors["query_items"]
        state: dict[str, Any] = {}

        def query() -> int:
            with torch.inference_mode():
                module(users, items).topk(cfg.k, dim=1)
            return int(len(users))

        def setup_train() -> None:
            state["module"], state["opt"] = model.training_copy(cfg.lr * 0.1)
            state["batches"] = pair_batches(tensors["pairs"], cfg.batch, ctx.seed + 7)

        def train_steps() -> int:
            m, opt = state["module"], state["opt"]
            for _ in range(cfg.steps_per_trial):
                loss = softmax_loss(m, *next(state["batches"]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return cfg.steps_per_trial

        synthetic = "synthetic data (generator v1)"
        return [
            Workload("inference-query", "inference", "query", query,
                     metadata={"queries": int(len(users)), "candidates_per_query": cfg.candidates, "top_k": cfg.k,
                               "embedding_bytes": embedding_bytes(module), "data": synthetic}),
            Workload("train-step", "train", "step", train_steps, setup_train, repeatable=True,
                     metadata={"batch": cfg.batch, "loss": "full softmax over the catalogue", "optimizer": "AdamW",
                               "data": synthetic}),
        ]

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        cfg, data = self._ready()
        scores = ranking_scores(catalogue_scores(model.module, data, ctx.device), data, cfg.k)
        base = self._baseline_info.get(f"recall@{cfg.k}")
        if base is None or model.module is not baseline.module:
            base = ranking_scores(catalogue_scores(baseline.module, data, ctx.device), data, cfg.k)["recall"]
        return Quality(f"recall@{cfg.k}", scores["recall"], higher_is_better=True, baseline=base,
                       extra={f"ndcg@{cfg.k}": scores["ndcg"], **self.references, "synthetic_data": 1.0,
                              "embedding_bytes": float(embedding_bytes(model.module))})

    def embedding_frequencies(self, module: Any) -> dict[str, Any]:
        """How often each table row occurs in the training interactions (for ``emb-prune-freq``)."""
        import numpy as np

        cfg, data = self._ready()
        return {"users": np.bincount(data.train_users, minlength=cfg.users),
                "items": np.bincount(data.train_items, minlength=cfg.items)}

    def calibrate(self, module: Any, ctx: Context) -> int:
        """Runs held-out queries (users and candidates never measured) through ``module``'s towers."""
        import torch

        with torch.no_grad():
            module(self._tensors["calib_users"], self._tensors["calib_items"])
        return int(len(self._tensors["calib_users"]))

    # -- structure hooks ------------------------------------------------------------------------------------
    def ffn_pairs(self, module: Any) -> list[tuple[Any, str, Any, str]]:
        return [(module, "user_up", module, "user_down"), (module, "item_up", module, "item_down")]

    def layer_list(self, module: Any) -> tuple[Any, str]:
        raise NotApplicable("recsys: the towers are single MLP blocks over embedding tables, with no stack of "
                            "layers to drop")

    def distillation(self) -> Distillable:
        raise NotApplicable("recsys: distillation is not wired for the recommender (a student would have to learn "
                            "the teacher's ranking over the catalogue); use emb-int8/emb-int4/emb-prune to shrink "
                            "its tables")
