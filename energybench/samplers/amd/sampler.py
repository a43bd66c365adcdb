"""The amdsmi samplers: one per AMD GPU, reading its energy accumulator or polling its power.

``AmdEnergySampler`` reads ``amdsmi_get_energy_count`` at window edges (``kind="counter"``): a count of
``counter_resolution`` microjoules each (amdsmi's documented unit), with the time the firmware took it.
The count is a 64-bit register, so the domain wraps at ``2**64`` counts (the meter takes wrap-aware deltas
as for RAPL). ``AmdPowerSampler`` polls ``amdsmi_get_power_info`` (``kind="power"``) where the counter is
missing or not trusted: instant socket power on MI300 and newer, the firmware's average elsewhere.

Known faults of the counter, each turned into a warning, never into silent joules: it can stand still (its
timestamp frozen, ROCm/amdsmi#38 on MI100 until a reboot), step backwards (ROCm/amdsmi#115), or not exist in a
virtual machine. The meter rejects any step above what the GPU could draw (twice its power cap).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from energybench.samplers.amd.errors import NOT_SUPPORTED, amd_error, error_code
from energybench.samplers.amd.visibility import AmdTarget
from energybench.samplers.base import BaseSampler, Domain, Kind
from energybench.samplers.gpu_share import GpuShare
from energybench.samplers.torch_sync import synchronize_cuda_device

NAME = "amd"
METHOD_COUNTER = "amdsmi-energy-counter"
METHOD_POLLING = "amdsmi-power-polling"
#: amdsmi documents no update period for the accumulator; 0.1 s is a conservative stand-in, so windows shorter
#: than a few of it are warned about rather than trusted.
COUNTER_RESOLUTION_S = 0.1
INSTANT_POWER_RESOLUTION_S = 0.1
AVERAGE_POWER_RESOLUTION_S = 1.0
COUNTER_BITS = 64
#: Power fields of amdsmi_get_power_info, best first: instant (MI300+), the 7.x name, the firmware's average.
POWER_FIELDS = ("current_socket_power", "socket_power", "average_socket_power")
POWER_CAP_HEADROOM = 2.0
PHYSICAL_MAX_W = 3000.0
#: A counter whose firmware timestamp has not moved for this long is stuck, not idle.
STALE_S = 2.0
MAX_ACTIVITY_SAMPLES = 100_000


def energy_fields(info: Mapping[str, Any]) -> tuple[float, float, float | None] | None:
    """(counts, microjoules per count, firmware timestamp) from ``amdsmi_get_energy_count``; ``None`` when the
    answer holds no number. The count is ``energy_accumulator`` since amdsmi 6.2.1, ``power`` before."""
    counts = info.get("energy_accumulator", info.get("power"))
    resolution = info.get("counter_resolution")
    if not isinstance(counts, int | float) or not isinstance(resolution, int | float) or resolution <= 0:
        return None
    stamp = info.get("timestamp")
    return float(counts), float(resolution), float(stamp) if isinstance(stamp, int | float) else None


def power_watts(info: Mapping[str, Any], field: str) -> float | None:
    """Watts from one ``amdsmi_get_power_info`` field; ``None`` for amdsmi's "N/A" (not supported)."""
    value = info.get(field)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class AmdGpuSampler(BaseSampler):
    """Shared parts of both amdsmi samplers: identity, typed errors, activity, the amdsmi reference."""

    name = NAME

    def __init__(
        self,
        amdsmi: Any,
        target: AmdTarget,
        *,
        key: str,
        method: str,
        identity: Mapping[str, Any],
        counted: bool = True,
        warnings: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        share: GpuShare | None = None,
    ) -> None:
        amdsmi.amdsmi_init()  # each sampler holds one reference until close()
        self.name = f"{NAME}:{key}"
        self._amdsmi, self.target, self.key, self.method = amdsmi, target, key, method
        self.clock = clock
        self.identity = dict(identity)
        self._counted, self._open, self.share = counted, True, share
        self._notes, self._reported = list(warnings), 0
        self._activity: deque[tuple[float, float | None, float | None]] = deque(maxlen=MAX_ACTIVITY_SAMPLES)
        self._activity_ok = True
        cap = self.identity.get("power_cap_w")
        bound = float(cap) * POWER_CAP_HEADROOM if isinstance(cap, int | float) and cap > 0 else None
        self._details = {**self.identity, "resolution_s": self.resolution_s, "power_bound_w": bound or PHYSICAL_MAX_W,
                         "power_bound_source": f"{POWER_CAP_HEADROOM:g} x the power cap" if bound
                         else "physical bound (amdsmi states no power cap)"}
        if share is not None:
            share.max_power_w = self._power_bound

    @property
    def _power_bound(self) -> float:
        """The most this GPU can draw (``Domain.max_power_w``): kept in the domain's details, said once."""
        return float(self._details["power_bound_w"])

    def _max_value(self) -> float | None:
        return None

    def domains(self) -> list[Domain]:
        own = Domain(key=self.key, source="measured", method=self.method, max_value=self._max_value(),
                     counted=self._counted, details=dict(self._details), max_power_w=self._power_bound)
        return [own] if self.share is None else [own, self.share.domain()]

    def read(self) -> dict[str, float]:
        """Joules (counter) or watts (power) of this GPU: each concrete sampler reads its own amdsmi figure."""
        raise NotImplementedError

    def on_edge(self) -> None:
        """Queued HIP kernels finish before the edge read (ROCm torch drives AMD GPUs through torch.cuda)."""
        synchronize_cuda_device(self.target.process_index)
        if self.share is not None:
            self.share.rescan()

    def metadata(self) -> dict[str, Any]:
        info = {**self.identity, "domain": self.key, "method": self.method}
        if self._notes:
            info["warnings"] = list(self._notes)
        return info

    def take_warnings(self) -> list[str]:
        fresh = self._notes[self._reported:]
        self._reported = len(self._notes)
        return fresh + (self.share.take_warnings() if self.share is not None else [])

    def window_stats(self, start: float, end: float) -> dict[str, Any]:
        rows = [a for a in self._activity if start <= a[0] <= end]

        def mean(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return sum(known) / len(known) if known else None

        stats: dict[str, Any] = {"samples": len(rows), "gpu_util_mean_pct": mean([r[1] for r in rows]),
                                 "memory_util_mean_pct": mean([r[2] for r in rows])}
        if self.share is not None:
            stats["shared_gpu"] = self.share.window_stats(start, end)
        return stats

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._amdsmi.amdsmi_shut_down()
            except self._amdsmi.AmdSmiException:
                pass  # shutting down a lost GPU's amdsmi must not hide the figures already taken

    # -- helpers ---------------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"{self.key} ({self.identity.get('name')}, {self.target.uuid})"

    def _call(self, fn: str, *args: Any) -> Any:
        try:
            return getattr(self._amdsmi, fn)(*args)
        except self._amdsmi.AmdSmiException as exc:
            raise amd_error(exc, fn, self._where()) from exc

    def _note(self, message: str) -> None:
        if message not in self._notes:
            self._notes.append(message)

    def _sample_activity(self) -> None:
        now = self.clock()
        if not self._activity_ok:
            return
        try:
            activity = self._amdsmi.amdsmi_get_gpu_activity(self.target.handle)
        except self._amdsmi.AmdSmiException as exc:
            if error_code(exc) != NOT_SUPPORTED:
                raise amd_error(exc, "amdsmi_get_gpu_activity", self._where()) from exc
            self._activity_ok = False
            self._note(f"{self.key}: utilisation not readable ({' '.join(str(exc).split())}); activity left out")
            return
        self._activity.append((now, power_watts(activity, "gfx_activity"), power_watts(activity, "umc_activity")))

    def _with_share(self, value: float, advance: Callable[[float], float]) -> dict[str, float]:
        if self.share is None:
            return {self.key: value}
        return {self.key: value, self.share.key_out: advance(value)}


class AmdEnergySampler(AmdGpuSampler):
    """Cumulative joules from the energy accumulator: counts x ``counter_resolution`` microjoules."""

    kind: Kind = "counter"
    resolution_s = COUNTER_RESOLUTION_S

    def __init__(self, amdsmi: Any, target: AmdTarget, *, counter_resolution_uj: float, **kwargs: Any) -> None:
        self.counter_resolution_uj = counter_resolution_uj
        self._last: tuple[float, float | None, float] | None = None  # (joules, firmware stamp, when it moved)
        super().__init__(amdsmi, target, method=METHOD_COUNTER, **kwargs)
        self._details["counter_resolution_uj"] = counter_resolution_uj
        self._details["counter_bits"] = COUNTER_BITS

    def _max_value(self) -> float:
        return float(2**COUNTER_BITS) * self.counter_resolution_uj / 1e6

    def read(self) -> dict[str, float]:
        """Joules on the accumulator; NaN (which the meter ignores) for an answer no GPU could give."""
        fields = energy_fields(self._call("amdsmi_get_energy_count", self.target.handle))
        self._sample_activity()
        if fields is None:
            self._note(f"{self.key}: amdsmi_get_energy_count answered no number; those readings are ignored")
            return self._with_share(math.nan, self._share_advance)
        counts, resolution, stamp = fields
        if resolution != self.counter_resolution_uj:
            self._note(f"{self.key}: the counter's resolution changed ({self.counter_resolution_uj:g} -> "
                       f"{resolution:g} uJ per count): the driver was reloaded; measure again")
        joules = counts * resolution / 1e6
        if not 0 <= joules <= self._max_value():
            self._note(f"{self.key}: amdsmi energy counter read {joules:.6g} J, outside its 64-bit range; ignored")
            return self._with_share(math.nan, self._share_advance)
        self._check_steps(joules, stamp)
        return self._with_share(joules, self._share_advance)

    def _share_advance(self, joules: float) -> float:
        assert self.share is not None
        return self.share.advance(joules)

    def _check_steps(self, joules: float, stamp: float | None) -> None:
        now = self.clock()
        if self._last is None:
            self._last = (joules, stamp, now)
            return
        last_j, last_stamp, moved_at = self._last
        half = self._max_value() / 2
        if joules < last_j and not (last_j > half > joules):
            self._note(f"{self.key}: amdsmi energy counter went backwards ({last_j:.3f} J -> {joules:.3f} J): a "
                       "driver reload, a GPU reset or a firmware fault (ROCm/amdsmi#115); the step is not counted")
        if joules != last_j or stamp != last_stamp:
            moved_at = now
        elif now - moved_at > STALE_S:
            self._note(f"{self.key}: amdsmi energy counter and its timestamp have not moved for "
                       f"{now - moved_at:.3g} s: the firmware stopped updating it (ROCm/amdsmi#38: reboot), "
                       "or the GPU is fully idle; use amd_mode='polling' if it stays so under load")
        self._last = (joules, stamp, moved_at)


class AmdPowerSampler(AmdGpuSampler):
    """Watts from ``amdsmi_get_power_info``; the meter polls and integrates."""

    kind: Kind = "power"

    def __init__(self, amdsmi: Any, target: AmdTarget, *, field: str, **kwargs: Any) -> None:
        self.field = field
        self.resolution_s = AVERAGE_POWER_RESOLUTION_S if field == "average_socket_power" \
            else INSTANT_POWER_RESOLUTION_S
        super().__init__(amdsmi, target, method=METHOD_POLLING, **kwargs)
        self._details["power_source"] = f"amdsmi_get_power_info[{field!r}]"

    def read(self) -> dict[str, float]:
        info = self._call("amdsmi_get_power_info", self.target.handle)
        watts = power_watts(info, self.field)
        if watts is None:
            fallback = next((f for f in POWER_FIELDS if power_watts(info, f) is not None), None)
            if fallback is None:
                self._note(f"{self.key}: amdsmi_get_power_info has no power figure (all N/A); readings ignored")
                watts = math.nan
            else:
                self._note(f"{self.key}: {self.field} stopped answering; using {fallback} from now on")
                self.field, watts = fallback, power_watts(info, fallback)
        self._sample_activity()
        return self._with_share(float(watts if watts is not None else math.nan), self._share_power)

    def _share_power(self, watts: float) -> float:
        assert self.share is not None
        return self.share.power(watts)
