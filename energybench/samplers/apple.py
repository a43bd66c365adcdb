"""Apple silicon energy through IOReport's energy counters, read by ``zeus-apple-silicon`` without sudo.

macOS keeps cumulative per-block energy counters on Apple-silicon SoCs (the IOReport "Energy Model" channel
group, the same source ``powermetrics`` reads as root). ``zeus-apple-silicon`` (PyPI, the ``[apple]`` extra;
maintained by the ML.ENERGY group for Zeus) subscribes to them from user space: ``AppleEnergyMonitor().
get_cumulative_energy()`` returns millijoules per block, each ``None`` where the chip lacks it. They are
counters, so this is a ``kind="counter"`` sampler read at window edges, like RAPL:

- ``cpu_total_mj``  -> ``cpu:package-0`` (every CPU cluster), counted;
- ``gpu_mj``        -> ``gpu:0``, counted;
- ``ane_mj``        -> ``ane:0`` (the Neural Engine), counted;
- ``dram_mj``       -> ``cpu:dram-0``, counted (as RAPL's DRAM domain is named);
- ``gpu_sram_mj``   -> ``gpu:0:sram``, reported but not counted: Apple does not document whether the GPU
  channel already contains it, and a total must never count a joule twice.

Why ``measured``: the figures come from the SoC's own counters, not from a model of energybench's; but the
SoC derives them from activity, voltage and frequency (the zeus-apple-silicon README; ``powermetrics(1)`` calls
them estimated), which each domain's ``accuracy`` detail says, and docs/samplers.md discusses.

Option ``apple_module``: an object with the ``zeus_apple_silicon`` call shapes (tests inject
``tests/support/fake_apple.py``); without it the platform must be macOS on Apple silicon.
"""

from __future__ import annotations

import importlib
import math
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from typing import Any

from energybench.errors import SamplerError
from energybench.samplers import SamplerFactory
from energybench.samplers.base import Availability, BaseSampler, Domain, Kind, Sampler
from energybench.samplers.torch_sync import synchronize_mps

NAME = "apple"
METHOD = "ioreport-energy-model"
EXTRA = "pip install 'energybench[apple]'"
#: IOReport counts in 1 mJ steps; the zeus-apple-silicon README warns that windows under ~10 ms are noise.
RESOLUTION_S = 0.01
#: The most one SoC block can draw: the largest Ultra parts draw well under this in total.
PHYSICAL_MAX_W = 500.0
ACCURACY = ("IOReport 'Energy Model' counters: the SoC's own activity-based figures, 1 mJ steps "
            "(zeus-apple-silicon README; powermetrics(1) calls them estimated)")
# (field of AppleEnergyMetrics, domain key, counted, role)
FIELDS: tuple[tuple[str, str, bool, str], ...] = (
    ("cpu_total_mj", "cpu:package-0", True, "every CPU cluster (IOReport CPU Energy)"),
    ("gpu_mj", "gpu:0", True, "the on-chip GPU (IOReport GPU Energy)"),
    ("ane_mj", "ane:0", True, "the Neural Engine (IOReport ANE)"),
    ("dram_mj", "cpu:dram-0", True, "DRAM (IOReport DRAM)"),
    ("gpu_sram_mj", "gpu:0:sram", False, "GPU SRAM (whether GPU Energy contains it is undocumented: not added)"),
)


def import_binding(options: Mapping[str, Any]) -> Any:
    """The injected ``apple_module`` or ``zeus_apple_silicon``; a ``SamplerError`` says what is missing."""
    module = options.get("apple_module")
    if module is not None:
        return module
    system, machine = platform.system(), platform.machine()
    if system != "Darwin" or machine != "arm64":
        raise SamplerError(f"not an Apple-silicon Mac ({system} {machine}): IOReport energy counters exist only on "
                           "macOS on Apple silicon")
    try:
        return importlib.import_module("zeus_apple_silicon")
    except ImportError as exc:
        raise SamplerError(f"zeus-apple-silicon is not importable ({exc}): {EXTRA}") from None


class AppleSiliconSampler(BaseSampler):
    """Cumulative joules of every IOReport energy block the chip has."""

    name = NAME
    kind: Kind = "counter"
    resolution_s = RESOLUTION_S

    def __init__(self, module: Any) -> None:
        try:
            self._monitor = module.AppleEnergyMonitor()
            first = self._monitor.get_cumulative_energy()
        except RuntimeError as exc:
            raise SamplerError(f"IOReport refused a subscription ({exc}): check `powermetrics -n 1` works as root; "
                               "a sandboxed or very old macOS (< 12) has no Energy Model channels") from None
        self._fields = [(f, key, counted, role) for f, key, counted, role in FIELDS if getattr(first, f) is not None]
        if not self._fields:
            raise SamplerError("IOReport answered no energy block on this chip: zeus-apple-silicon may predate it "
                               "(upgrade it)")
        self._clusters = {f: getattr(first, f) for f in ("efficiency_cluster_mj", "performance_cluster_mj")}
        self._last: dict[str, float] = {}
        self._notes: list[str] = []
        self._reported = 0

    def domains(self) -> list[Domain]:
        return [Domain(key=key, source="measured", method=METHOD, max_value=None, counted=counted,
                       details={"field": f, "role": role, "accuracy": ACCURACY, "resolution_s": RESOLUTION_S},
                       max_power_w=PHYSICAL_MAX_W)
                for f, key, counted, role in self._fields]

    def read(self) -> dict[str, float]:
        """Joules per block since an unspecified fixed point; NaN for a block that stopped answering."""
        try:
            metrics = self._monitor.get_cumulative_energy()
        except RuntimeError as exc:
            raise SamplerError(f"IOReport stopped answering ({exc}); the Apple-silicon figures end here") from None
        values: dict[str, float] = {}
        for f, key, _counted, _role in self._fields:
            raw = getattr(metrics, f)
            if raw is None:
                self._note(f"{key}: IOReport stopped reporting {f}; its figure is missing from this read")
                values[key] = math.nan
                continue
            joules = float(raw) / 1000.0
            if key in self._last and joules < self._last[key]:
                self._note(f"{key}: IOReport counter went backwards ({self._last[key]:.3f} J -> {joules:.3f} J): "
                           "the subscription restarted (sleep/wake); energy before it is missing: measure again")
            self._last[key] = joules
            values[key] = joules
        return values

    def on_edge(self) -> None:
        """Queued Metal (MPS) work finishes before the edge read."""
        synchronize_mps()

    def take_warnings(self) -> list[str]:
        """Warnings raised since the last call, each once (all of them stay in ``metadata``)."""
        fresh = self._notes[self._reported:]
        self._reported = len(self._notes)
        return fresh

    def metadata(self) -> dict[str, Any]:
        info = {"chip": chip_name(), "binding": binding_version(), "blocks": [f for f, *_ in self._fields],
                "clusters_at_start_mj": self._clusters}
        if self._notes:
            info["warnings"] = list(self._notes)
        return info

    def _note(self, message: str) -> None:
        if message not in self._notes:
            self._notes.append(message)


def chip_name() -> str | None:
    """``Apple M2 Max`` and the like, from sysctl on macOS; ``None`` elsewhere."""
    if platform.system() != "Darwin":
        return None
    try:
        out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def binding_version() -> str | None:
    try:
        return importlib_metadata.version("zeus-apple-silicon")
    except importlib_metadata.PackageNotFoundError:
        return None


def probe(options: Mapping[str, Any]) -> Availability:
    """Whether IOReport's energy counters can be read here; every failure is a stated reason."""
    try:
        sampler = AppleSiliconSampler(import_binding(options))
    except SamplerError as exc:
        return Availability(name=NAME, available=False, reason=str(exc))
    except Exception as exc:  # a native binding can fail in ways of its own: that is a reason, not a crash
        return Availability(name=NAME, available=False, reason=f"zeus-apple-silicon failed: {exc}")
    domains = sampler.domains()
    return Availability(name=NAME, available=True, source="measured", domains=tuple(d.key for d in domains),
                        details={"chip": chip_name(), "accuracy": ACCURACY})


def create(options: Mapping[str, Any]) -> list[Sampler]:
    return [AppleSiliconSampler(import_binding(options))]


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create)
