"""The recommendation subject on synthetic interactions (generator v1), and the embedding-table methods:
row-wise int8/int4 quantization and row pruning really change the tables, and the ranking quality stays
within the bounds docs/compression.md states.

Quick settings throughout. Five model seeds (data seed 0) gave a baseline recall@10 of 0.5195-0.5225 against
an oracle ceiling of 0.5715 and a chance level of 0.0102; a random (untrained) model scored 0.009-0.012.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from energybench.errors import ConfigError
from energybench.subjects.api import (
    Context,
    Model,
    NotApplicable,
    Subject,
    model_size,
    resolve_method,
    subjects,
)
from energybench.subjects.recsys import RecsysSubject, build_model, catalogue_scores, embedding_bytes
from energybench.subjects.recsys_data import GeneratorConfig, generate, ranking_scores

RECALL_RANGE = (0.45, 0.58)  # documented range of a trained quick baseline (measured 0.5195-0.5225)


@pytest.fixture(scope="module")
def recsys(tmp_path_factory: pytest.TempPathFactory) -> tuple[RecsysSubject, Model, Context]:
    subject = RecsysSubject()
    ctx = Context(quick=True, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return subject, subject.baseline(ctx), ctx


def apply(spec: str, fixture: tuple[Any, Model, Context]) -> Model:
    subject, base, ctx = fixture
    method, params = resolve_method(spec)
    model = method.apply(base, subject, params, ctx)
    model.method = spec
    return model


def recall(subject: RecsysSubject, model: Model, base: Model, ctx: Context) -> float:
    return subject.quality(model, base, ctx).value


def test_generator_is_deterministic_and_plants_its_clusters() -> None:
    cfg = GeneratorConfig(users=300, items=200, clusters=10, interactions=12, noise=0.1)
    a, b = generate(cfg, seed=3), generate(cfg, seed=3)
    assert a.sha256 == b.sha256 and a.sha256 != generate(cfg, seed=4).sha256
    # each user's probability mass sits on one cluster: exactly items / clusters items stand above the noise
    floor = cfg.noise / cfg.items * 1.01
    assert set((a.probabilities > floor).sum(axis=1).tolist()) == {cfg.items // cfg.clusters}
    # and most of a user's interactions were drawn from there (less than 1 - noise, as heavy users run out of
    # their cluster's 20 items), where a draw without structure would put 20 / 200 = 10%
    mass = a.probabilities[a.train_users, a.train_items]
    assert np.mean(mass > floor) > 0.6
    assert a.test_items.shape == (300, cfg.holdout)


def test_trained_baseline_recall_is_in_its_documented_range(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    subject, base, ctx = recsys
    quality = subject.quality(base, base, ctx)
    assert quality.metric == "recall@10" and quality.higher_is_better
    low, high = RECALL_RANGE
    assert low <= quality.value <= high
    refs = subject.references
    assert quality.value <= refs["oracle_recall@10"] + 0.02  # the generator's truth is the ceiling
    assert quality.value > 10 * refs["popularity_recall@10"] > refs["chance_recall@10"]
    assert quality.extra["synthetic_data"] == 1.0


def test_a_random_model_is_near_chance(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    subject, _, _ = recsys
    cfg, data = subject._ready()
    torch.manual_seed(123)
    untrained = build_model(cfg).eval()
    got = ranking_scores(catalogue_scores(untrained, data), data, 10)["recall"]
    chance = subject.references["chance_recall@10"]
    assert 0.0 <= got < 3 * chance  # measured 0.009-0.012 against chance 0.0102
    assert got < 0.1 * RECALL_RANGE[0]


def test_metadata_says_synthetic_with_generator_version_and_seed(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    subject, _, _ = recsys
    meta = subject.metadata()
    assert meta["synthetic"] is True
    assert meta["data"]["source"].startswith("synthetic, generator v1, seed 0")
    assert meta["data"]["generator"]["clusters"] == 20
    assert "oracle_recall@10" in meta["references"]


def test_workloads_are_per_query_and_per_step(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    subject, base, ctx = recsys
    cfg, _ = subject._ready()
    query, train = subject.workloads(base, ctx)
    assert (query.phase, query.item_unit, train.phase, train.item_unit) == ("inference", "query", "train", "step")
    assert query.run() == cfg.queries
    assert query.metadata["embedding_bytes"] == embedding_bytes(base.module)
    assert train.setup is not None
    train.setup()
    assert train.run() == cfg.steps_per_trial


@pytest.mark.parametrize(("spec", "bits", "dtype"), [("emb-int8", 8, torch.quint8), ("emb-int4", 4, torch.quint4x2)])
def test_row_wise_quantization_stores_smaller_tables_and_keeps_recall(recsys: tuple[RecsysSubject, Model, Context],
                                                                       spec: str, bits: int, dtype: Any) -> None:
    subject, base, ctx = recsys
    model = apply(spec, recsys)
    for name in ("users", "items"):
        table = getattr(model.module, name)
        assert table.weight().dtype == dtype  # torch.ao quantized EmbeddingBag, one scale per row
        assert model.params["tables"][name]["bytes"] < model.params["tables"][name]["bytes_before"]
    before, after = embedding_bytes(base.module), embedding_bytes(model.module)
    # fp32 rows of 32 values are 128 B; int8 rows 32 B + 8 B of scale and zero point, int4 16 B + 8 B
    assert after < (0.35 if bits == 8 else 0.22) * before
    assert model.params["embedding_bytes"] == after
    size, base_size = model_size(model.module), model_size(base.module)
    assert size["bytes"] < base_size["bytes"] - 0.6 * before  # the run's size column sees the saving
    assert size["params"] == base_size["params"]  # quantized rows still count as weights
    assert abs(recall(subject, model, base, ctx) - recall(subject, base, base, ctx)) <= 0.02  # measured <= 0.003
    assert not model.trainable


def test_int4_tables_are_smaller_than_int8(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    assert apply("emb-int4", recsys).params["embedding_bytes"] < apply("emb-int8", recsys).params["embedding_bytes"]


def test_frequency_pruning_removes_the_least_used_rows(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    subject, base, ctx = recsys
    model = apply("emb-prune-freq-0.2", recsys)
    freq = subject.embedding_frequencies(base.module)
    for name in ("users", "items"):
        table, rows = getattr(model.module, name), getattr(base.module, name).num_embeddings
        assert table.weight.shape[0] == round(0.8 * rows) + 1  # kept rows plus the shared fallback row
        kept = table.remap < round(0.8 * rows)
        assert freq[name][kept.numpy()].min() >= freq[name][~kept.numpy()].max()
    assert embedding_bytes(model.module) < 0.9 * embedding_bytes(base.module)
    assert recall(subject, model, base, ctx) >= 0.7 * recall(subject, base, base, ctx)  # measured 0.81-0.82x


def test_norm_pruning_keeps_the_largest_rows_and_can_still_train(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    subject, base, ctx = recsys
    model = apply("emb-prune-norm-0.2", recsys)
    norms = base.module.items.weight.detach().norm(dim=1)
    kept = model.module.items.remap < model.module.items.weight.shape[0] - 1
    assert norms[kept].min() >= norms[~kept].max()
    assert recall(subject, model, base, ctx) >= 0.6 * recall(subject, base, base, ctx)  # measured 0.70-0.74x
    _, train = subject.workloads(model, ctx)
    assert train.setup is not None
    train.setup()
    assert train.run() == subject._ready()[0].steps_per_trial


def test_methods_that_do_not_apply_say_why(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    with pytest.raises(NotApplicable, match="no stack of layers"):
        apply("layer-drop-0.5", recsys)
    for spec in ("distill-soft-t2-w0.5-d0.5", "distill-hard-w0.5-d0.5"):
        with pytest.raises(NotApplicable, match="distillation is not wired for the recommender"):
            apply(spec, recsys)
    subject, _, ctx = recsys
    _, train = subject.workloads(apply("emb-int8", recsys), ctx)
    assert train.setup is not None
    with pytest.raises(NotApplicable, match="no backward pass"):
        train.setup()


def test_mlp_methods_apply_but_leave_the_tables_alone(recsys: tuple[RecsysSubject, Model, Context]) -> None:
    model = apply("int8-dynamic", recsys)
    assert model.params["linear_layers_quantized"] == 4
    assert embedding_bytes(model.module) == embedding_bytes(recsys[1].module)


class _PlainTable(Subject):
    name = "plain"


def test_frequency_pruning_needs_the_subject_to_report_frequencies() -> None:
    base = Model(torch.nn.Sequential(torch.nn.Embedding(50, 8)))
    method, params = resolve_method("emb-prune-freq-0.5")
    with pytest.raises(NotApplicable, match="does not report how often"):
        method.apply(base, _PlainTable(), params, Context())


def test_int4_on_a_plain_embedding_serves_its_lookups_through_a_bag() -> None:
    torch.manual_seed(0)
    table = torch.nn.Embedding(64, 16)
    base = Model(torch.nn.Sequential(table))
    method, params = resolve_method("emb-int4")
    model = method.apply(base, _PlainTable(), params, Context())
    ids = torch.randint(0, 64, (3, 5))
    out = model.module(ids)
    assert out.shape == (3, 5, 16)
    w = table.weight.detach()
    step = (w.max(dim=1).values - w.min(dim=1).values) / 15  # one int4 step of each row
    assert ((out - table(ids)).abs() <= step[ids][..., None] + 1e-3).all()


@pytest.mark.parametrize(("spec", "message"), [
    ("emb-prune-size-0.5", "use emb-prune-freq-<fraction> or emb-prune-norm-<fraction>"),
    ("emb-prune-freq-1.5", "strictly between 0 and 1"),
    ("emb-int8-perchannel", "row-wise"),
])
def test_bad_specs_are_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_method(spec)


def test_subject_is_listed_with_its_workloads_metric_and_data_source() -> None:
    entry = subjects()["recsys"]
    assert entry.error is None
    for word in ("SYNTHETIC", "generator v1", "inference-query", "train-step", "recall@10"):
        assert word in entry.obj.description


def test_bad_options_are_one_clear_line() -> None:
    with pytest.raises(ConfigError, match="unknown recsys option"):
        RecsysSubject().configure(Context(quick=True, options={"recsys": {"user": 5}}))
    with pytest.raises(ConfigError, match="candidates <= items"):
        RecsysSubject().configure(Context(quick=True, options={"recsys": {"candidates": 5000}}))
