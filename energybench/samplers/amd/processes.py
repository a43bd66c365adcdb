"""Who used an AMD GPU: GFX-engine busy time per process, the share source (``samplers.gpu_share``) for amdsmi.

``amdsmi_get_gpu_process_list`` gives each process's cumulative GFX-engine time in nanoseconds (from the
driver's per-file ``drm-engine-gfx`` accounting), so the busy weight of a span is the growth of that figure
since the previous call. A process first seen mid-run is counted from its first sighting (at most one poll of
its work is missed). amdsmi lists other users' processes only with enough privilege: a process it cannot see
counts as idle in the split, which the share's note says.
"""

from __future__ import annotations

from typing import Any

from energybench.samplers.amd.errors import NOT_FOUND, NOT_SUPPORTED, amd_error, error_code
from energybench.samplers.gpu_share import ShareUnavailable

NOTE = ("amdsmi lists other users' processes only to a privileged user: a process it cannot see counts as idle "
        "in the split")


class ProcessUsage:
    """GFX-engine nanoseconds per pid since the previous call."""

    def __init__(self, amdsmi: Any, handle: Any, where: str) -> None:
        self._amdsmi, self._handle, self._where = amdsmi, handle, where
        self._seen: dict[int, float] = {}

    def __call__(self) -> dict[int, float]:
        amdsmi = self._amdsmi
        try:
            processes = amdsmi.amdsmi_get_gpu_process_list(self._handle)
        except amdsmi.AmdSmiException as exc:
            code = error_code(exc)
            if code in (NOT_SUPPORTED, None):
                raise ShareUnavailable(f"amdsmi gives no per-process usage for {self._where} ({exc})") from exc
            if code == NOT_FOUND:
                raise amd_error(exc, "amdsmi_get_gpu_process_list", self._where) from exc
            raise ShareUnavailable(f"amdsmi_get_gpu_process_list failed for {self._where} ({exc})") from exc
        busy: dict[int, float] = {}
        current: dict[int, float] = {}
        for proc in processes:
            usage = (proc.get("engine_usage") or {}).get("gfx")
            if not isinstance(usage, int | float):
                continue
            pid = int(proc["pid"])
            current[pid] = float(usage)
            if pid in self._seen and usage >= self._seen[pid]:
                busy[pid] = float(usage) - self._seen[pid]
        self._seen = current
        return busy
