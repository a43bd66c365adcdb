"""Hardware as a dimension: which requested devices can run here (and why not), and the same work compared
across devices.

``energybench run --device cpu,cuda`` runs every subject on each device that is present, in one run, with
trials interleaved across devices like methods are; a device that is missing is recorded as a note that
says why (a CPU-only torch build, no visible GPU, no ``torch_xla``), never silently dropped. Each method is
judged against the baseline on its own device (``verdicts.baseline_of``); across devices,
``device_comparisons`` sets each workload and method on one device against the same on the reference device
(the CPU when it ran), with the same ratio, interval and test as a method against its baseline. Data only:
``render/`` words it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from energybench.between_runs import of_run
from energybench.errors import ConfigError
from energybench.record import Benchmark, Run
from energybench.run_devices import parse_device
from energybench.verdicts import VsBaseline, judge_pairs, min_change_of


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


# ------------------------------------------------------------------------------------- across devices


@dataclass(frozen=True)
class DeviceComparison:
    """One workload and method on ``device`` against the same on ``reference`` (energy per item)."""

    name: str
    method: str
    reference: str
    device: str
    reference_bench: Benchmark
    bench: Benchmark
    vs: VsBaseline


def device_comparisons(run: Run, reference: str | None = None) -> list[DeviceComparison]:
    """Every (workload, method) measured on two or more devices, each device against the reference device
    (``reference``, else the CPU when it ran, else the first device in the file): paired by trial and
    corrected across all of the run's device comparisons (``verdicts.judge_pairs``)."""
    groups: dict[tuple[str, str], list[Benchmark]] = {}
    for b in run.benchmarks:
        if b.rounds and b.device is not None:
            groups.setdefault((b.name, b.method), []).append(b)
    found: list[tuple[str, str, str, Benchmark, Benchmark]] = []
    for (name, method), benches in groups.items():
        devices = [b.device for b in benches]
        if len(set(devices)) < 2:
            continue
        ref_name = str(reference if reference in devices else "cpu" if "cpu" in devices else devices[0])
        ref = next(b for b in benches if b.device == ref_name)
        found += [(name, method, ref_name, ref, b) for b in benches if b is not ref]
    verdicts = judge_pairs([(ref, b) for *_, ref, b in found], between=of_run(run), min_change=min_change_of(run))
    return [DeviceComparison(name, method, ref_name, str(b.device), ref, b, vs)
            for (name, method, ref_name, ref, b), vs in zip(found, verdicts, strict=True)]


def devices_of(benchmarks: Sequence[Benchmark]) -> list[str]:
    """The devices benchmarks ran on, in order of first appearance (``cpu`` for files without one)."""
    return list(dict.fromkeys(b.device or "cpu" for b in benchmarks))
