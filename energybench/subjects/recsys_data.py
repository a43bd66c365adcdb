"""Synthetic user-item interactions with planted structure (generator v1), and the metrics they are scored by.

Why synthetic: no package on PyPI ships a public interaction log (MovieLens and friends are downloaded at run
time), and a generator whose structure is known gives the quality figure a floor and a ceiling: a trained
recommender's recall@10 means something only next to what chance and a model that knows the truth reach.

Generator v1 (everything from one ``numpy`` seed):

* items are dealt evenly into ``clusters`` taste clusters; inside a cluster, item popularity follows Zipf
  (weight ``1 / rank^zipf``, ranks shuffled);
* each user belongs to one cluster (uniformly at random) and has an activity drawn log-normally around
  ``interactions`` (clipped to ``[holdout + 2, 4 x interactions]``), so rows of the user table are used
  unevenly, like real ones;
* a user's interaction probabilities are ``(1 - noise) x`` their cluster's popularity plus ``noise`` spread
  uniformly over the catalogue; their items are drawn without replacement (Gumbel top-k);
* ``holdout`` of each user's items, chosen at random, are held out for testing; the rest is training data.

Scores on the held-out items, over the whole catalogue less the user's training items: ``chance`` (a random
ranking: ``k / candidates`` per user, exactly), ``popularity`` (global training counts) and ``oracle`` (the
generator's own probabilities: the ceiling a model can approach).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

GENERATOR_VERSION = "v1"


@dataclass(frozen=True)
class GeneratorConfig:
    users: int = 2000
    items: int = 1000
    clusters: int = 20
    interactions: int = 20  # median interactions per user
    zipf: float = 1.0
    noise: float = 0.1
    holdout: int = 2


@dataclass(frozen=True)
class Interactions:
    """Training pairs ``(user, item)``, each user's held-out items, and the generator's truth."""

    cfg: GeneratorConfig
    seed: int
    train_users: Any  # int64 [n]
    train_items: Any  # int64 [n]
    test_items: Any  # int64 [users, holdout]
    probabilities: Any  # float32 [users, items] only for the evaluated users (the oracle's ranking)
    eval_users: Any  # int64 [e]: the users quality is measured on
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"source": f"synthetic, generator {GENERATOR_VERSION}, seed {self.seed} "
                          "(energybench.subjects.recsys_data; no public data set involved)",
                "generator": {"version": GENERATOR_VERSION, **asdict(self.cfg)}, "seed": self.seed,
                "train_interactions": int(len(self.train_users)), "eval_users": int(len(self.eval_users)),
                "sha256": self.sha256}


def generate(cfg: GeneratorConfig, seed: int, eval_users: int = 2000) -> Interactions:
    """Draw the catalogue, the users and their interactions (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    item_cluster = rng.permutation(cfg.items) % cfg.clusters
    weight = np.empty(cfg.items)
    for c in range(cfg.clusters):
        members = np.flatnonzero(item_cluster == c)
        weight[members] = 1.0 / (rng.permutation(len(members)) + 1.0) ** cfg.zipf
        weight[members] /= weight[members].sum()
    user_cluster = rng.integers(cfg.clusters, size=cfg.users)
    activity = np.clip(np.rint(rng.lognormal(np.log(cfg.interactions), 0.5, cfg.users)), cfg.holdout + 2,
                       min(4 * cfg.interactions, cfg.items // 2)).astype(np.int64)
    users, items, held = [], [], np.empty((cfg.users, cfg.holdout), dtype=np.int64)
    n_eval = min(eval_users, cfg.users)
    probs = np.empty((n_eval, cfg.items), dtype=np.float32)
    for start in range(0, cfg.users, 512):
        rows = np.arange(start, min(start + 512, cfg.users))
        in_cluster = item_cluster[None, :] == user_cluster[rows, None]
        p = (1 - cfg.noise) * weight[None, :] * in_cluster + cfg.noise / cfg.items
        keys = np.log(p) + rng.gumbel(size=p.shape)
        order = np.argsort(-keys, axis=1)
        for r, u in enumerate(rows):
            drawn = rng.permutation(order[r, : activity[u]])
            held[u] = drawn[: cfg.holdout]
            users.append(np.full(len(drawn) - cfg.holdout, u))
            items.append(drawn[cfg.holdout :])
        keep = rows[rows < n_eval]
        probs[keep] = p[: len(keep)]
    train_users, train_items = np.concatenate(users), np.concatenate(items)
    sha = hashlib.sha256(train_users.tobytes() + train_items.tobytes() + held.tobytes()).hexdigest()
    return Interactions(cfg, seed, train_users, train_items, held, probs, np.arange(n_eval), sha)


def seen_mask(data: Interactions) -> Any:
    """``[eval users, items]`` booleans: True where the user has the item in training (never recommended)."""
    import numpy as np

    mask = np.zeros((len(data.eval_users), data.cfg.items), dtype=bool)
    rows = data.train_users < len(data.eval_users)
    mask[data.train_users[rows], data.train_items[rows]] = True
    return mask


def ranking_scores(scores: Any, data: Interactions, k: int) -> dict[str, float]:
    """Recall@k and NDCG@k of ``scores`` ``[eval users, items]`` on the held-out items, over the catalogue
    less each user's training items."""
    import numpy as np

    s = np.array(scores, dtype=np.float64, copy=True)
    s[seen_mask(data)] = -np.inf
    top = np.argsort(-s, axis=1)[:, :k]
    held = data.test_items[data.eval_users]
    hits = (top[:, :, None] == held[:, None, :]).any(axis=2)  # [users, k]
    recall = hits.sum(axis=1) / min(k, held.shape[1])
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, held.shape[1])].sum()
    ndcg = (hits * discounts).sum(axis=1) / ideal
    return {"recall": float(recall.mean()), "ndcg": float(ndcg.mean())}


def reference_scores(data: Interactions, k: int) -> dict[str, float]:
    """What chance, global popularity and the generator's truth (the oracle) reach on the same test."""
    import numpy as np

    candidates = data.cfg.items - seen_mask(data).sum(axis=1)
    chance = float(np.mean(np.minimum(1.0, k / candidates)))
    popularity = np.bincount(data.train_items, minlength=data.cfg.items).astype(np.float64)
    pop = ranking_scores(np.broadcast_to(popularity, data.probabilities.shape), data, k)
    oracle = ranking_scores(data.probabilities, data, k)
    return {f"chance_recall@{k}": chance, f"popularity_recall@{k}": pop["recall"],
            f"oracle_recall@{k}": oracle["recall"], f"oracle_ndcg@{k}": oracle["ndcg"]}
