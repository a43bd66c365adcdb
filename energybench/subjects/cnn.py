"""A small convolutional network trained from scratch on scikit-learn's 8x8 handwritten digits.

Why this model: image recognition is the other half of what compression studies measure, and the digits data
set (1,797 images, 10 classes, UCI) ships inside scikit-learn, so nothing is downloaded. The network is a
real CNN (3x3 convolutions with ReLU, max-pooling, two linear layers): conv channel pruning, static int8
quantization with fused conv+ReLU kernels and distillation act on the same kernels as in a big vision model.
It trains to ~97% held-out accuracy in seconds on a CPU; the trained baseline is cached like the LM's.

The split is fixed and stratified (``random_state`` 0, independent of ``--seed``): 60% training, 20%
calibration (held out from training; static quantization calibrates on it), 20% test (accuracy, the quality
figure, and the inference workload). scikit-learn is the ``cnn`` extra; without it the subject is skipped
with a note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from energybench.errors import ConfigError
from energybench.subjects import conv_classifier as classifier
from energybench.subjects.api import Context, Distillable, Model, Quality, Subject, Workload
from energybench.subjects.cache import cached_baseline

EXTRA_HINT = "install the extra: pip install 'energybench[cnn]' (scikit-learn ships the data; nothing is downloaded)"
CLASSES = 10
SIDE = 8  # the digits are 8x8 grey levels 0..16


@dataclass(frozen=True)
class CNNConfig:
    """Network size, training budget and workload sizes; ``quick`` and tests shrink it."""

    channels: tuple[int, ...] = (32, 64)
    hidden: int = 128
    batch: int = 64
    lr: float = 3e-3
    epochs: int = 40  # baseline training (cached)
    steps_per_trial: int = 8  # train-step workload
    infer_repeats: int = 4  # inference-classify: passes over the test set per trial
    distill_steps: int = 400


# Sized so that a quick trial window stays well under 0.1 s on two shared CPU cores.
QUICK = CNNConfig(channels=(16, 32), hidden=64, epochs=20, steps_per_trial=4, infer_repeats=1, distill_steps=150)


@dataclass(frozen=True)
class Digits:
    """The three fixed splits as float tensors in [0, 1], shape ``[N, 1, 8, 8]``, with integer labels."""

    train_x: Any
    train_y: Any
    calib_x: Any
    calib_y: Any
    test_x: Any
    test_y: Any
    sha256: str

    def describe(self) -> dict[str, Any]:
        return {"source": "sklearn.datasets.load_digits (UCI optical recognition of handwritten digits)",
                "images": int(len(self.train_y) + len(self.calib_y) + len(self.test_y)),
                "train": int(len(self.train_y)), "calibration": int(len(self.calib_y)),
                "test": int(len(self.test_y)), "sha256": self.sha256,
                "split": "stratified 60/20/20, random_state 0"}


def load_data(device: str = "cpu") -> Digits:
    """The digits, split train/calibration/test (stratified, fixed), as tensors on ``device``."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = np.asarray(data.data, dtype=np.float32) / 16.0
    y = np.asarray(data.target, dtype=np.int64)
    sha = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_train, x_cal, y_train, y_cal = train_test_split(x_rest, y_rest, test_size=0.25, stratify=y_rest,
                                                      random_state=0)

    def t(a: Any, labels: bool = False) -> Any:
        out = torch.from_numpy(a)
        return (out if labels else out.reshape(-1, 1, SIDE, SIDE)).to(device)

    return Digits(t(x_train), t(y_train, True), t(x_cal), t(y_cal, True), t(x_test), t(y_test, True), sha)


def build_model(cfg: CNNConfig) -> Any:
    """Conv blocks (3x3, padding 1, ReLU) keep the 8x8 size; one 2x2 max-pool; then two linear layers."""
    from torch import nn

    class DigitsCNN(nn.Module):
        def __init__(self, c: CNNConfig) -> None:
            super().__init__()
            self.config = c
            layers: list[nn.Module] = []
            c_in = 1
            for c_out in c.channels:
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
                c_in = c_out
            self.features = nn.Sequential(*layers)
            self.pool = nn.MaxPool2d(2)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(c_in * (SIDE // 2) ** 2, c.hidden)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(c.hidden, CLASSES)

        def forward(self, x: Any) -> Any:
            return self.fc2(self.relu(self.fc1(self.flatten(self.pool(self.features(x))))))

    return DigitsCNN(cfg)


def batches(x: Any, y: Any, batch: int, seed: int) -> Iterator[tuple[Any, Any]]:
    """Endless shuffled mini-batches (a new permutation every epoch, from ``seed``)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(y), generator=gen).to(y.device)
        for i in range(0, len(y) - batch + 1, batch):
            idx = order[i : i + batch]
            yield x[idx], y[idx]


class CNNSubject(Subject):
    name = "cnn"
    description = "small CNN trained from scratch on scikit-learn's 8x8 digits (image recognition; cnn extra)"
    default_methods = (
        "prune-l1-0.5", "prune-structured-0.5", "int8-dynamic", "int8-static", "int8-static-pertensor", "bf16",
        "fp16", "distill-soft-t2-w0.5-d0.5",
    )

    def __init__(self) -> None:
        self.cfg: CNNConfig | None = None
        self.data: Digits | None = None
        self.device = "cpu"
        self._baseline_info: dict[str, Any] = {}

    def unavailable_reason(self) -> str | None:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return f"cnn skipped: scikit-learn is not installed; {EXTRA_HINT}"
        return None

    def configure(self, ctx: Context) -> CNNConfig:
        cfg: CNNConfig = classifier.configured(QUICK if ctx.quick else CNNConfig(), ctx, "cnn")
        if not cfg.channels or min(cfg.channels) < 1:
            raise ConfigError(f"cnn: channels must be a non-empty list of positive counts, got {cfg.channels!r}")
        return cfg

    def baseline(self, ctx: Context) -> Model:
        import torch

        cfg = self.cfg = self.configure(ctx)
        self.device = ctx.device
        data = self.data = load_data(ctx.device)
        steps = cfg.epochs * (len(data.train_y) // cfg.batch)
        torch.manual_seed(ctx.seed)
        module = build_model(cfg).to(ctx.device)
        def train_now() -> None:
            classifier.train(module, self._train_batches(ctx.seed), steps, cfg.lr)

        info = cached_baseline("cnn", data.sha256, cfg, ctx, module, steps, train_now)
        self._baseline_info = {**info, "test_accuracy": classifier.accuracy(module, data.test_x, data.test_y)}
        return Model(module)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"baseline": self._baseline_info}
        if self.cfg is not None:
            meta["config"] = asdict(self.cfg)
        if self.data is not None:
            meta["data"] = self.data.describe()
        return meta

    def _ready(self) -> tuple[CNNConfig, Digits]:
        if self.cfg is None or self.data is None:
            raise RuntimeError("cnn: baseline() must run before workloads, quality or calibration")
        return self.cfg, self.data

    def _train_batches(self, seed: int) -> Iterator[tuple[Any, Any]]:
        cfg, data = self._ready()
        return batches(data.train_x, data.train_y, cfg.batch, seed)

    # -- workloads ------------------------------------------------------------------------------------------
    def workloads(self, model: Model, ctx: Context) -> list[Workload]:
        import torch

        cfg, data = self._ready()
        module = model.module
        images = classifier.cast(data.test_x, model.dtype)

        def classify() -> int:
            with torch.inference_mode():
                for _ in range(cfg.infer_repeats):
                    module(images).argmax(dim=1)
            return cfg.infer_repeats * len(data.test_y)

        # a training step counts as one item
        setup_train, train_steps = classifier.training_workload(model, cfg, self._train_batches, ctx.seed + 7,
                                                                lambda _: 1)
        return [
            Workload("inference-classify", "inference", "image", classify,
                     metadata={"images": len(data.test_y), "repeats": cfg.infer_repeats}),
            Workload("train-step", "train", "step", train_steps, setup_train, repeatable=True,  # more steps on the copy
                     metadata={"batch": cfg.batch, "optimizer": "AdamW"}),
        ]

    def quality(self, model: Model, baseline: Model, ctx: Context) -> Quality:
        _, data = self._ready()
        acc, base = classifier.accuracies(model, baseline, data.test_x, data.test_y, self._baseline_info)
        return Quality("accuracy", acc, higher_is_better=True, baseline=base,
                       extra={"test_images": int(len(data.test_y))})

    def calibrate(self, module: Any, ctx: Context) -> int:
        """Runs the held-out calibration split (never trained on, never tested on) through ``module``."""
        return classifier.calibrate_on(module, self._ready()[1].calib_x)

    def example_inputs(self, module: Any) -> tuple[Any, ...]:
        _, data = self._ready()
        return (data.calib_x[:1],)

    # -- structure hooks ------------------------------------------------------------------------------------
    def ffn_pairs(self, module: Any) -> list[tuple[Any, str, Any, str]]:
        return [(module, "fc1", module, "fc2")]

    def prune_channels(self, module: Any, fraction: float) -> int:
        """Remove ``fraction`` of every conv layer's output channels (lowest filter L1 norm), shrinking the
        next conv's input channels, or ``fc1``'s input columns after the last conv (each channel feeds
        ``4 x 4`` flattened features), so every following kernel is smaller too."""
        return classifier.prune_conv_channels(module, (SIDE // 2) ** 2, fraction)

    def distillation(self) -> Distillable:
        return classifier.ConvDistill(build_model, self._train_batches, lambda: self._ready()[0])

