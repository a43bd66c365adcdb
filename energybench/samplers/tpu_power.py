"""Per-chip power of Google TPU generations, with where each figure was published.

TPUs expose no power reading, so the TPU sampler estimates power as duty cycle x a per-chip wattage. Google has
published per-chip power only for the generations described in its architecture papers; for the Cloud
generations since (v5e, v5p, v6e Trillium, TPU7x Ironwood) there is no official per-chip figure, and guessing
one would be a silent estimate: those need the user's own value (``--tpu-watts``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TEN_LESSONS = (
    "Jouppi et al., 'Ten Lessons From Three Generations Shaped Google's TPUv4i', ISCA 2021, Table 1 "
    "(doi:10.1109/ISCA52012.2021.00010)"
)
_TPU_V4_PAPER = (
    "Jouppi et al., 'TPU v4: An Optically Reconfigurable Supercomputer for Machine Learning with Hardware "
    "Support for Embeddings', ISCA 2023 (doi:10.1145/3579371.3589350, arXiv:2304.01433)"
)


@dataclass(frozen=True)
class ChipPower:
    """A published per-chip power figure (``watts=None``: none published) and what kind of figure it is."""

    generation: str
    watts: float | None
    kind: str
    source: str
    devices_per_chip: int = 1  # TensorCores the runtime reports as separate devices (memory metrics are per device)


TABLE: dict[str, ChipPower] = {
    "v2": ChipPower("v2", 280.0, "TDP per chip", _TEN_LESSONS, devices_per_chip=2),
    "v3": ChipPower("v3", 450.0, "TDP per chip", _TEN_LESSONS, devices_per_chip=2),
    "v4": ChipPower("v4", 192.0, "maximum power per chip", _TPU_V4_PAPER),
    "v5e": ChipPower("v5e", None, "no published per-chip figure", "Google Cloud TPU v5e documentation"),
    "v5p": ChipPower("v5p", None, "no published per-chip figure", "Google Cloud TPU v5p documentation"),
    "v6e": ChipPower("v6e", None, "no published per-chip figure", "Google Cloud TPU v6e (Trillium) documentation"),
    "7x": ChipPower(
        "7x", None, "no published per-chip figure", "Google Cloud TPU7x (Ironwood) documentation", devices_per_chip=2
    ),
}

_ALIASES = {
    "v5lite": "v5e",
    "v5litepod": "v5e",
    "trillium": "v6e",
    "v7x": "7x",
    "tpu7x": "7x",
    "v7": "7x",
    "ironwood": "7x",
}

# PCI device ids of TPU chips (vendor 0x1ae0), as tpu-info's device table lists them.
PCI_DEVICE_IDS = {"0x005e": "v4", "0x0063": "v5e", "0x0062": "v5p", "0x006f": "v6e", "0x0076": "7x"}
PCI_V2_V3 = {("0x0027", "0x004e"): "v2", ("0x0027", "0x004f"): "v3"}


def normalize_generation(text: str | None) -> str | None:
    """``"v5litepod-16"``, ``"TPU v4"``, ``"v6e-8"``, ``"tpu7x"`` -> a ``TABLE`` key, or ``None``."""
    if not text:
        return None
    t = text.strip().lower().replace("tpu ", "").replace("tpu-", "")
    t = re.sub(r"-\d+$", "", t)  # accelerator types carry a core/chip count: v4-8, v5litepod-16
    t = _ALIASES.get(t, t)
    return t if t in TABLE else None


def chip_power(generation: str | None) -> ChipPower | None:
    return TABLE.get(generation or "")
