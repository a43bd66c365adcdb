"""Which devices an ``energybench run`` uses, so it measures those and only those.

``--device cpu,cuda`` runs every subject on each device that is present, trials interleaved across devices
like methods are; a device that is missing is a note saying why (a CPU-only torch build, no visible GPU, no
``torch_xla``), never silently dropped.

NVML lists every GPU the process may see, including idle ones and other users' jobs: measuring them all
adds the same energy to every trial of every method and pulls each ratio towards 1. A run on
``--device cuda:N`` measures GPU N as this process numbers it (after ``CUDA_VISIBLE_DEVICES``), ``--device
cuda`` the GPU of the process's CUDA context (torch's current device), ``--device cpu`` no GPU. The run
records which GPUs were measured and which were seen but left out, and says so under its table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from energybench.errors import ConfigError
from energybench.record import Devices

_DEVICE_RE = re.compile(r"^(cpu|cuda|tpu)(?::(\d+))?$")


def parse_device(device: str) -> tuple[str, int | None]:
    """``cpu`` -> ("cpu", None); ``cuda`` -> ("cuda", None); ``cuda:1`` -> ("cuda", 1); ``tpu`` -> ("tpu",
    None); else ``ConfigError``."""
    match = _DEVICE_RE.match(str(device).strip().lower())
    if match is None or (match[1] != "cuda" and match[2] is not None):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or tpu, comma-separated "
                          "(e.g. --device cpu,cuda)")
    return match[1], int(match[2]) if match[2] is not None else None


def run_gpu_indices(device: str) -> list[int]:
    """The GPUs (as this process numbers them) a run on ``device`` uses: none on the CPU or a TPU; the given
    index; or, for plain ``cuda``, the device of the process's CUDA context (torch's current device)."""
    kind, index = parse_device(device)
    if kind != "cuda":
        return []
    if index is not None:
        return [index]
    import torch

    return [int(torch.cuda.current_device())]


def sampler_options_for(devices: str | Sequence[str], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with ``gpu_indices`` set to the run's GPUs (those of every device it runs on, for
    ``--device cpu,cuda``), unless the user chose GPUs (``--gpu-index``)."""
    chosen = dict(options)
    if chosen.get("gpu_indices") is None or chosen.get("gpu_indices") == []:
        names = [devices] if isinstance(devices, str) else list(devices)
        chosen["gpu_indices"] = sorted({i for d in names for i in run_gpu_indices(d)})
    return chosen


def devices_record(
    devices: str | Sequence[str], options: Mapping[str, Any], samplers: Sequence[Any], *, chosen_by: str,
    detected: bool = True,
) -> Devices:
    """What the run measured: the GPU domains of its samplers, and the GPUs NVML sees that it left out.

    A run on a GPU that none of the detected samplers measure is a ``ConfigError``: every trial would
    silently miss the device doing the work. Unless the user restricted the samplers by name (or passed
    their own), which says they know.
    """
    measured = sorted({d.key for s in samplers for d in _domains(s) if d.device == "gpu" and d.counted})
    visible = _visible_gpus(options)
    names = [devices] if isinstance(devices, str) else list(devices)
    device = ",".join(names)
    if any(parse_device(d)[0] == "cuda" for d in names) and not measured and detected and not options.get("samplers"):
        raise ConfigError(
            f"--device {device}: the GPU cannot be measured here ({visible.get('_reason') or 'no GPU sampler'}); "
            "its energy would be missing from every trial: fix NVML (see `energybench sensors`), or pass "
            "--sampler NAME to measure only the rest, knowingly"
        )
    gpus = {k: v for k, v in visible.items() if not k.startswith("_")}
    return Devices(device=device, chosen_by=chosen_by,
                   gpus_measured=tuple({"key": k, **gpus.get(k, {})} for k in measured),
                   gpus_not_measured=tuple(sorted(k for k in gpus if k not in measured)))


def _domains(sampler: Any) -> list[Any]:
    try:
        return list(sampler.domains())
    except Exception:  # identity only: a sampler that cannot list its domains measures nothing we can name
        return []


def _visible_gpus(options: Mapping[str, Any]) -> dict[str, Any]:
    """NVML's view: gpu:N -> {name, uuid}, or ``{"_reason": why not}``; never raises."""
    from energybench.samplers import probe_all

    probe = next(iter(probe_all({**options, "samplers": ["nvml"]})), None)
    if probe is None or not probe.available:
        return {"_reason": probe.reason if probe is not None else "no NVML sampler"}
    gpus = probe.details.get("gpus") or {}
    return {key: {"name": g.get("name"), "uuid": g.get("uuid")} for key, g in gpus.items()}


@dataclass(frozen=True)
class DevicePlan:
    """The devices a run will use, in the order asked, and each missing one with the reason."""

    available: tuple[str, ...]
    missing: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        return [f"{device}: not run: {why}" for device, why in self.missing.items()]


def parse_devices(text: str) -> list[str]:
    """``"cpu,cuda:1"`` -> ``["cpu", "cuda:1"]`` (order kept, repeats dropped); unknown names are one error
    line (``run_devices.parse_device`` says which names exist)."""
    names = list(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if not names:
        raise ConfigError("--device needs at least one device, e.g. --device cpu or --device cpu,cuda")
    for name in names:
        parse_device(name)
    return names


def missing_reason(device: str) -> str | None:
    """Why ``device`` cannot run here, or ``None`` when it can."""
    import torch

    kind, index = parse_device(device)
    if kind == "cpu":
        return None
    if kind == "cuda":
        if torch.version.cuda is None:
            return f"no CUDA GPU: torch {torch.__version__} is a CPU-only build (no CUDA support compiled in)"
        if not torch.cuda.is_available():
            return "no CUDA GPU is visible to torch here (driver missing, or CUDA_VISIBLE_DEVICES hides it)"
        count = torch.cuda.device_count()
        if index is not None and index >= count:
            return f"torch sees {count} GPU(s) here (cuda:0..cuda:{count - 1})"
        return None
    try:
        import torch_xla.core.xla_model as xm
    except ImportError:
        return "torch_xla is not installed (a TPU needs torch_xla with libtpu, on a TPU VM)"
    try:
        hardware = xm.xla_device_hw(xm.xla_device())
    except Exception as exc:  # probing a runtime: any failure is the reason it cannot be used
        return f"torch_xla cannot reach a TPU: {exc}"
    if hardware != "TPU":
        return f"torch_xla found no TPU (its device is {hardware!r})"
    return None


def plan_devices(text: str) -> DevicePlan:
    """The devices of ``--device`` that can run here; none at all is a ``ConfigError`` naming every reason."""
    names = parse_devices(text)
    missing = {n: why for n in names if (why := missing_reason(n)) is not None}
    available = tuple(n for n in names if n not in missing)
    if not available:
        reasons = "; ".join(f"{d}: {why}" for d, why in missing.items())
        hint = " --device cpu" if "cpu" not in names else ""
        raise ConfigError(f"no requested device can run here ({reasons}); use{hint or ' another device'}")
    return DevicePlan(available, missing)


def torch_device(device: str) -> str:
    """The torch device string a subject moves its model to (a TPU is torch_xla's ``xla`` device)."""
    return "xla" if device == "tpu" else device


def synchronize(device: str | None) -> None:
    """Wait for queued device work, so a window's edge is where the work really ends."""
    if device is not None and device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
    elif device == "tpu":
        import torch_xla.core.xla_model as xm

        xm.mark_step()  # run the traced graph now
        xm.wait_device_ops()
