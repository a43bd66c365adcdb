"""TPU power, estimated as duty cycle x per-chip watts, from the TPU runtime's own metrics.

TPUs have no power or energy API. What the runtime (libtpu) does publish is each chip's TensorCore duty cycle
(the share of time it was busy) and HBM use, either inside the process through ``libtpu.sdk.tpumonitoring``
or to other processes through the gRPC metrics service on ``localhost:8431`` that ``tpu-info`` reads. Power is
then duty cycle x a per-chip wattage (``tpu_power.TABLE`` or the user's ``--tpu-watts``): always
``estimated``, method ``tpu-duty-cycle-x-chip-watts``. It ignores idle power, so it is a floor on what the
chips drew, and the chip watts figure is a ceiling (TDP or maximum power): read it as an order of magnitude.

Both ``libtpu`` and ``tpu-info`` are optional and imported only when present.

Options: ``tpu_client`` (an object with ``usage() -> list[ChipUsage]``, ``source``, ``close()``; tests inject
one), ``tpu_watts`` (float > 0, overrides the table), ``tpu_generation`` (``"v4"``, ``"v5litepod"``...;
default from ``TPU_ACCELERATOR_TYPE`` or the PCI ids), ``tpu_metrics_addr`` (default ``localhost:8431``),
``tpu_source`` (``"libtpu"`` or ``"grpc"``; default: libtpu when importable, else tpu-info's gRPC client),
``tpu_pci_root`` (default ``/sys/bus/pci/devices``), ``environ``, ``clock``.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from energybench.errors import ConfigError, SamplerError
from energybench.samplers import SamplerFactory
from energybench.samplers.base import Availability, BaseSampler, Domain, Kind
from energybench.samplers.tpu_power import PCI_DEVICE_IDS, PCI_V2_V3, TABLE, chip_power, normalize_generation

NAME = "tpu"
METHOD = "tpu-duty-cycle-x-chip-watts"
DEFAULT_ADDR = "localhost:8431"
GOOGLE_PCI_VENDOR = "0x1ae0"
DUTY_CYCLE_RESOLUTION_S = 1.0  # libtpu reports duty cycle over its own sampling period, not per kernel


class TpuMetricsError(SamplerError):
    """The TPU runtime's metrics could not be read (no workload holding the TPU, runtime gone...)."""


@dataclass(frozen=True)
class ChipUsage:
    """One chip's utilisation as the runtime reports it."""

    chip: int
    duty_cycle_pct: float
    hbm_used_bytes: int | None = None
    hbm_total_bytes: int | None = None


class TpuClient(Protocol):
    source: str

    def usage(self) -> list[ChipUsage]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------- clients
class LibtpuSdkClient:
    """In-process metrics through ``libtpu.sdk.tpumonitoring`` (``get_metric(name).data()`` -> strings)."""

    source = "libtpu.sdk.tpumonitoring"

    def __init__(self, monitoring: Any = None) -> None:
        if monitoring is None:
            from libtpu.sdk import tpumonitoring  # optional: only on TPU VMs

            monitoring = tpumonitoring
        self._m = monitoring
        try:
            self._supported = {str(n) for n in self._m.list_supported_metrics()}
        except Exception as exc:  # an SDK that cannot list metrics is an SDK we cannot use
            raise TpuMetricsError(f"libtpu monitoring SDK failed to list metrics: {exc}") from exc

    def _floats(self, name: str) -> list[float]:
        if name not in self._supported:
            return []
        try:
            return [float(x) for x in self._m.get_metric(name).data()]
        except (RuntimeError, ValueError) as exc:
            raise TpuMetricsError(
                f"libtpu metric {name!r} unreadable ({exc}): is a TPU workload running in this process?"
            ) from exc

    def usage(self) -> list[ChipUsage]:
        duty = self._floats("duty_cycle_pct")
        if not duty:
            raise TpuMetricsError(
                "libtpu reports no duty_cycle_pct: the TPU is not in use by this process yet, or this libtpu "
                "is too old for the monitoring SDK (upgrade libtpu)"
            )
        used = self._floats("hbm_capacity_usage")
        total = self._floats("hbm_capacity_total")
        return [
            ChipUsage(
                i,
                d,
                int(used[i]) if i < len(used) else None,
                int(total[i]) if i < len(total) else None,
            )
            for i, d in enumerate(duty)
        ]

    def close(self) -> None:
        return None


class TpuInfoGrpcClient:
    """Out-of-process metrics: libtpu's ``RuntimeMetricService`` over gRPC, with ``tpu-info``'s protocol.

    Same requests and parsing as ``tpu_info.metrics.get_chip_usage`` (duty cycle per chip, HBM per device,
    sorted by device id), but one channel kept open, since the meter polls it every interval.
    """

    def __init__(self, addr: str = DEFAULT_ADDR, devices_per_chip: int = 1, timeout_s: float = 1.0) -> None:
        import grpc
        from tpu_info.metrics import MetricName
        from tpu_info.proto import tpu_metric_service_pb2, tpu_metric_service_pb2_grpc

        self._grpc = grpc
        self._pb = tpu_metric_service_pb2
        self._names = MetricName
        self.addr = addr
        self.source = f"tpu-info gRPC {addr}"
        self._dpc = devices_per_chip
        self._timeout = timeout_s
        self._channel = grpc.secure_channel(addr, grpc.local_channel_credentials())
        self._stub = tpu_metric_service_pb2_grpc.RuntimeMetricServiceStub(self._channel)

    def _metric(self, name: str) -> list[Any]:
        try:
            resp = self._stub.GetRuntimeMetric(self._pb.MetricRequest(metric_name=name), timeout=self._timeout)
        except self._grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "error"
            raise TpuMetricsError(
                f"TPU runtime metrics at {self.addr} unavailable ({code}): libtpu serves them only while a "
                "framework (JAX, PyTorch/XLA) holds the TPU; start the workload first"
            ) from exc
        return sorted(resp.metric.metrics, key=lambda m: m.attribute.value.int_attr)

    def usage(self) -> list[ChipUsage]:
        duty = self._metric(self._names.DUTY_CYCLE_PCT.value)
        used = self._metric(self._names.MEMORY_USAGE.value)
        total = self._metric(self._names.TOTAL_MEMORY.value)
        per = self._dpc if len(used) == self._dpc * len(duty) else 1
        chips = []
        for i, d in enumerate(duty):
            u = used[i * per : (i + 1) * per] if len(used) == per * len(duty) else []
            t = total[i * per : (i + 1) * per] if len(total) == per * len(duty) else []
            chips.append(
                ChipUsage(
                    i,
                    float(d.gauge.as_double),
                    sum(m.gauge.as_int for m in u) if u else None,
                    sum(m.gauge.as_int for m in t) if t else None,
                )
            )
        return chips

    def close(self) -> None:
        self._channel.close()


# --------------------------------------------------------------------------------------------- detection
def pci_chips(root: str | os.PathLike[str] = "/sys/bus/pci/devices") -> list[str | None]:
    """One entry per TPU chip on the PCI bus: its generation, or ``None`` when the id is unknown."""
    found: list[str | None] = []
    base = Path(root)
    if not base.is_dir():
        return found
    for dev in sorted(base.iterdir()):
        try:
            if (dev / "vendor").read_text().strip() != GOOGLE_PCI_VENDOR:
                continue
            device = (dev / "device").read_text().strip()
            sub_path = dev / "subsystem_device"
            sub = sub_path.read_text().strip() if sub_path.exists() else ""
        except OSError:
            continue
        if device in PCI_DEVICE_IDS:
            found.append(PCI_DEVICE_IDS[device])
        elif (device, sub) in PCI_V2_V3:
            found.append(PCI_V2_V3[(device, sub)])
    return found


def detect_generation(options: Mapping[str, Any], pci: list[str | None]) -> tuple[str | None, str]:
    """The generation and where it came from: the option, ``TPU_ACCELERATOR_TYPE``, or the PCI ids."""
    given = options.get("tpu_generation")
    if given:
        gen = normalize_generation(str(given))
        if gen is None:
            known = ", ".join(TABLE)
            raise ConfigError(f"unknown TPU generation {given!r}: use one of {known} (or pass --tpu-watts)")
        return gen, "tpu_generation option"
    env = options.get("environ")
    env = os.environ if env is None else env
    accel = env.get("TPU_ACCELERATOR_TYPE")
    if accel and normalize_generation(accel):
        return normalize_generation(accel), f"TPU_ACCELERATOR_TYPE={accel}"
    kinds = {g for g in pci if g}
    if len(kinds) == 1:
        return kinds.pop(), "PCI device id"
    return None, "unknown"


def validate_options(options: Mapping[str, Any]) -> None:
    watts = options.get("tpu_watts")
    if watts is not None and (isinstance(watts, bool) or not isinstance(watts, int | float) or not watts > 0):
        raise ConfigError(f"--tpu-watts must be a positive number of watts per chip, got {watts!r}")


def _make_client(options: Mapping[str, Any], pci: list[str | None], generation: str | None) -> TpuClient:
    injected = options.get("tpu_client")
    if injected is not None:
        return injected
    source = options.get("tpu_source")
    if source not in (None, "libtpu", "grpc"):
        raise ConfigError(f"tpu_source {source!r} must be 'libtpu' or 'grpc'")
    has_libtpu = importlib.util.find_spec("libtpu") is not None
    has_tpu_info = importlib.util.find_spec("tpu_info") is not None
    if source == "libtpu" or (source is None and has_libtpu):
        if not has_libtpu:
            raise TpuMetricsError("libtpu is not installed: pip install libtpu (or use tpu_source 'grpc')")
        return LibtpuSdkClient()
    if not has_tpu_info:
        raise TpuMetricsError(
            "neither libtpu nor tpu-info is installed, so TPU utilisation cannot be read: "
            "pip install 'energybench[tpu]' (installs tpu-info)"
        )
    info = chip_power(generation)
    return TpuInfoGrpcClient(options.get("tpu_metrics_addr") or DEFAULT_ADDR, info.devices_per_chip if info else 1)


def _resolve(options: Mapping[str, Any]) -> tuple[TpuClient, str | None, str, list[str | None]]:
    pci = pci_chips(options.get("tpu_pci_root") or "/sys/bus/pci/devices")
    if options.get("tpu_client") is None and not pci:
        raise _NoTpu("no TPU chip found (no Google PCI device, vendor 0x1ae0)")
    generation, found_by = detect_generation(options, pci)
    return _make_client(options, pci, generation), generation, found_by, pci


class _NoTpu(Exception):
    pass


def chip_watts(options: Mapping[str, Any], generation: str | None) -> tuple[float, str]:
    """Watts per chip at 100% duty cycle and their source; ``ConfigError`` when nothing is known."""
    validate_options(options)
    given = options.get("tpu_watts")
    if given is not None:
        return float(given), "user value (--tpu-watts)"
    info = chip_power(generation)
    if info is None:
        raise ConfigError(
            "could not tell this TPU's generation, so there is no per-chip power figure: pass --tpu-watts "
            "WATTS (per chip) or tpu_generation"
        )
    if info.watts is None:
        raise ConfigError(
            f"TPU {generation} has no published per-chip power figure: pass --tpu-watts WATTS (per chip, e.g. "
            "from your provider), and energy will be estimated as duty cycle x WATTS"
        )
    return info.watts, f"{info.kind}: {info.source}"


# --------------------------------------------------------------------------------------------- sampler
class TpuSampler(BaseSampler):
    """Watts per chip = duty cycle / 100 x chip watts; the meter polls and integrates."""

    name = NAME
    kind: Kind = "power"
    resolution_s = DUTY_CYCLE_RESOLUTION_S

    def __init__(
        self,
        client: TpuClient,
        chips: int,
        *,
        watts: float,
        watts_source: str,
        generation: str | None,
        generation_source: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.chips = chips
        self.watts = watts
        self.watts_source = watts_source
        self.generation = generation
        self.generation_source = generation_source
        self._clock = self.clock = clock  # the time source window_stats bounds are in
        self._samples: deque[tuple[float, list[ChipUsage]]] = deque(maxlen=100_000)

    def domains(self) -> list[Domain]:
        details = {
            "generation": self.generation,
            "chip_watts": self.watts,
            "chip_watts_source": self.watts_source,
            "duty_cycle_source": self.client.source,
            "resolution_s": self.resolution_s,
        }
        return [
            Domain(key=f"tpu:{i}", source="estimated", method=METHOD, details=dict(details, chip=i))
            for i in range(self.chips)
        ]

    def read(self) -> dict[str, float]:
        usage = self.client.usage()
        if len(usage) < self.chips:
            raise TpuMetricsError(
                f"the TPU runtime now reports {len(usage)} chip(s), {self.chips} at start: a chip or the "
                "runtime went away; figures up to now are kept"
            )
        self._samples.append((self._clock(), usage))
        return {
            f"tpu:{u.chip}": max(0.0, min(u.duty_cycle_pct, 100.0)) / 100.0 * self.watts for u in usage[: self.chips]
        }


    def window_stats(self, start: float, end: float) -> dict[str, Any]:
        """Mean duty cycle and HBM use per chip over ``[start, end]``; the meter asks for each window's own
        span, so nested and overlapping windows each get theirs."""
        rows = [u for t, u in self._samples if start <= t <= end]
        out: dict[str, Any] = {"samples": len(rows)}
        for i in range(self.chips):
            duty = [r[i].duty_cycle_pct for r in rows if i < len(r)]
            hbm = [h for r in rows if i < len(r) and (h := r[i].hbm_used_bytes) is not None]
            out[f"tpu:{i}"] = {
                "duty_cycle_mean_pct": sum(duty) / len(duty) if duty else None,
                "hbm_used_mean_bytes": sum(hbm) / len(hbm) if hbm else None,
                "hbm_total_bytes": next((r[i].hbm_total_bytes for r in rows if i < len(r)), None),
            }
        return out

    def metadata(self) -> dict[str, Any]:
        return {
            "tpu": {
                "generation": self.generation,
                "generation_source": self.generation_source,
                "chips": self.chips,
                "chip_watts": self.watts,
                "chip_watts_source": self.watts_source,
                "duty_cycle_source": self.client.source,
                "method": METHOD,
            }
        }

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------------------------- factory
def probe(options: Mapping[str, Any]) -> Availability:
    """Never raises: no TPU, no metrics package, no running workload all become reasons."""
    try:
        client, generation, found_by, _pci = _resolve(options)
    except (_NoTpu, SamplerError, ConfigError) as exc:
        return Availability(name=NAME, available=False, reason=str(exc))
    try:
        usage = client.usage()
    except SamplerError as exc:
        client.close()
        return Availability(name=NAME, available=False, reason=str(exc))
    if options.get("tpu_client") is None:
        client.close()
    details: dict[str, Any] = {"generation": generation, "generation_source": found_by, "source": client.source}
    try:
        details["chip_watts"], details["chip_watts_source"] = chip_watts(options, generation)
    except ConfigError as exc:
        details["config_error"] = str(exc)  # create() raises it; probing only reports
    return Availability(
        name=NAME,
        available=True,
        source="estimated",
        domains=tuple(f"tpu:{u.chip}" for u in usage),
        details=details,
    )


def create(options: Mapping[str, Any]) -> list[TpuSampler]:
    """One sampler for all chips; ``ConfigError`` when no wattage is known for the generation."""
    validate_options(options)
    try:
        client, generation, found_by, _pci = _resolve(options)
    except _NoTpu as exc:
        raise TpuMetricsError(str(exc)) from exc
    try:
        watts, watts_source = chip_watts(options, generation)
        usage = client.usage()
    except Exception:
        client.close()
        raise
    return [
        TpuSampler(
            client,
            len(usage),
            watts=watts,
            watts_source=watts_source,
            generation=generation,
            generation_source=found_by,
            clock=options.get("clock") or time.monotonic,
        )
    ]


FACTORY = SamplerFactory(name=NAME, probe=probe, create=create)
