"""Energy of torch.distributed jobs: measure on every rank, aggregate at each window's end.

How it works. When a process group is initialised, every ``Meter`` gets a *window hook* (``window_hook``,
found through the meter's ``WINDOW_HOOKS``) that ``Meter.end`` runs on the rank's local ``Measurement``:

1. every rank sends a small report (its local measurement, host, rank, carbon settings) to every other rank
   with ``all_gather_object`` over a dedicated **gloo** group (``new_group(backend="gloo")``), created once
   per process and timeout. The group needs no GPU, so aggregation works the same under NCCL (NCCL's object
   collectives would need ``torch.cuda.set_device`` first), and its timeout is ours
   (``ENERGYBENCH_DIST_TIMEOUT_S``), not the training job's;
2. every rank merges the reports with the pure function ``aggregate`` and returns the same job-wide result.

**Windows are collective.** Every rank must create its first ``Meter`` (the group is created then) and begin
and end the same windows in the same order, like any collective. A rank that ends another window, or
never ends it, makes the others raise ``DistributedError`` (a mismatch is caught at once; a missing rank after
the timeout): never a hang, and the local figures travel on the error's ``.local`` (and in its message),
so nothing measured is lost. A meter made with ``options={"dist_aggregate": False}`` (or
``ENERGYBENCH_DIST_AGGREGATE=0``) measures its rank alone, for code that only some ranks run. With
``dist_on_error="local"`` (or ``ENERGYBENCH_DIST_ON_ERROR=local``) a communication failure instead returns
the local measurement with a warning. After a failure the group is not trusted again: later windows on this
rank raise (or return local figures) at once instead of waiting. Local results are marked
``metadata["distributed"]["aggregated"] = False``. End windows from one thread per rank: concurrent
collectives on one group could pair up differently on different ranks.

**No double counting.** Ranks on one host read the same RAPL packages, the same machine-wide CPU/DRAM
model, and often the same GPUs (NVML lists every GPU a process may see). A domain's physical identity is
its GPU UUID (``details["uuid"]``) when it has one, else (host, sampler, key): host-wide by default. A
sampler that reports a per-process figure marks it ``details["scope"] = "process"`` and is summed over
ranks; a host-wide floor inside such a figure (``details["host_floor_w"]``, e.g. the CPU model's idle power
in process scope) is kept once per host and taken out of the other ranks' copies. Each physical device is
counted once, on one rank: for a GPU the rank that drives it (its current CUDA device, else ``LOCAL_RANK``),
otherwise the lowest rank on the host. The dropped copies are listed in ``metadata["distributed"]["duplicates"]``.

**The aggregated Measurement.** Domain keys are ``<host>/rank<N>/<local key>`` (``node1/rank0/cpu:package-0``),
so ``str(result)`` and DataFrames read as a per-host, per-rank breakdown and the total is the job's.
``metadata["distributed"]`` holds ``world_size``, ``hosts`` (per-host joules, grams, region), ``ranks``
(each rank's attributed joules — shared devices go to the rank that keeps them — and what it measured
itself), ``duplicates``, the ``launcher`` environment of rank 0 and the aggregation settings. Duration spans
the earliest begin to the latest end.

**Carbon per host.** Each rank may pass its own region/intensity/PUE (hosts in different places); all ranks
of a host must agree and either every rank gives one or none does. A host's grams are the sum of its ranks'
grams in proportion to the joules they keep; the job's grams are the sum over hosts, with an effective
intensity (grams / kWh / PUE) and ``region`` set to ``mixed: ...`` when hosts differ.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from energybench.distributed_launcher import host_name, initialized_dist, launcher_environment
from energybench.errors import ConfigError, EnergybenchError
from energybench.integrate import thin
from energybench.measurement import JOULES_PER_KWH, CarbonInfo, DomainEnergy, Measurement, format_joules

if TYPE_CHECKING:
    from energybench.meter import Meter, WindowHook

T = TypeVar("T")

TIMEOUT_ENV = "ENERGYBENCH_DIST_TIMEOUT_S"
ON_ERROR_ENV = "ENERGYBENCH_DIST_ON_ERROR"
AGGREGATE_ENV = "ENERGYBENCH_DIST_AGGREGATE"
_TRUE, _FALSE = {"1", "true", "on", "yes"}, {"0", "false", "off", "no"}
DEFAULT_TIMEOUT_S = 300.0
ON_ERROR_CHOICES = ("raise", "local")
REPORT_VERSION = 1
KEY_FORMAT = "<host>/rank<N>/<domain>"
_SKEW_WARN_S = 1.0  # ranks entering a window further apart than this (and 5% of it) get a warning
_SKEW_WARN_FRACTION = 0.05


class DistributedError(EnergybenchError):
    """Ranks could not be aggregated. ``local`` keeps this rank's own measurement, so nothing is lost."""

    def __init__(self, message: str, *, local: Measurement | None = None, window: str | None = None) -> None:
        super().__init__(message)
        self.local = local
        self.window = window


class DistributedTimeoutError(DistributedError):
    """A rank crashed or did not reach the window's end within the aggregation timeout."""

    exit_code = 1


# ------------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class DistConfig:
    """Aggregation settings: options beat environment variables beat defaults."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    on_error: str = "raise"
    host: str = "localhost"
    aggregate: bool = True

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> DistConfig:
        options = options or {}
        env = os.environ if environ is None else environ
        raw_timeout = options.get("dist_timeout_s")
        label = "option dist_timeout_s"
        if raw_timeout is None and env.get(TIMEOUT_ENV, "").strip():
            raw_timeout, label = env[TIMEOUT_ENV].strip(), f"${TIMEOUT_ENV}"
        timeout = DEFAULT_TIMEOUT_S
        if raw_timeout is not None:
            try:
                timeout = float(raw_timeout)
            except (TypeError, ValueError):
                timeout = math.nan
            if not (timeout > 0 and math.isfinite(timeout)):
                raise ConfigError(f"{label}={raw_timeout!r} must be a positive number of seconds, e.g. 300")
        on_error = str(options.get("dist_on_error") or env.get(ON_ERROR_ENV) or "raise").strip().lower()
        if on_error not in ON_ERROR_CHOICES:
            raise ConfigError(
                f"dist_on_error / ${ON_ERROR_ENV}={on_error!r} is not one of {', '.join(ON_ERROR_CHOICES)}: "
                "'raise' stops with an error keeping local figures on it, 'local' returns them with a warning"
            )
        raw_aggregate = options.get("dist_aggregate")
        if raw_aggregate is None:
            raw_aggregate = env.get(AGGREGATE_ENV, "1")
        text = str(raw_aggregate).strip().lower()
        if text not in _TRUE | _FALSE:
            raise ConfigError(
                f"dist_aggregate / ${AGGREGATE_ENV}={raw_aggregate!r} must be on or off (1/0, true/false): off "
                "measures this rank alone, e.g. for a window only rank 0 runs"
            )
        return cls(timeout_s=timeout, on_error=on_error, host=host_name(options, env), aggregate=text in _TRUE)


# --------------------------------------------------------------------------------------------- the group
@dataclass
class _AggregationGroup:
    """Our gloo group under one default process group; ``broken`` says why it must not be used again."""

    world: Any  # the default group it belongs to (held so its id is never reused while cached)
    group: Any
    timeout_s: float
    broken: str | None = None


# One group per (default process group, timeout): creating a group is itself collective, so doing it once
# per process keeps later Meters (e.g. one per ``measure()`` block) free of extra collectives.
_GROUPS: dict[tuple[int, float], _AggregationGroup] = {}


def aggregation_group(timeout_s: float) -> _AggregationGroup:
    """The gloo group used for aggregation, created on first use (a collective: every rank must call it)."""
    import torch.distributed as dist

    world = dist.group.WORLD
    key = (id(world), timeout_s)
    found = _GROUPS.get(key)
    if found is not None and found.world is world:
        return found
    try:
        group = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))
    except RuntimeError as exc:  # DistStoreError / DistBackendError: a rank never came
        raise DistributedTimeoutError(
            f"creating energybench's aggregation group timed out after {timeout_s:g} s ({_short(exc)}): every rank "
            f"must create its first Meter (or measure() block) at the same point; raise ${TIMEOUT_ENV} if ranks "
            "legitimately arrive later"
        ) from exc
    found = _AggregationGroup(world, group, timeout_s)
    _GROUPS[key] = found
    return found


def agree(value: T, combine: Callable[[list[T]], T] = max, options: Mapping[str, Any] | None = None) -> T:
    """One value every rank agrees on, e.g. iterations per window: ``combine`` over all ranks' values.

    Code that decides how often to call a collective (a DDP step) from local timing must agree first, or
    ranks run different numbers of steps and hang. Collective: every rank must call it. Outside an
    initialised process group it returns ``value`` unchanged (and never imports torch).
    """
    dist = initialized_dist()
    if dist is None:
        return value
    config = DistConfig.from_options(options)
    group = aggregation_group(config.timeout_s)
    gathered: list[Any] = [None] * dist.get_world_size(group.group)
    try:
        dist.all_gather_object(gathered, value, group=group.group)
    except RuntimeError as exc:
        group.broken = f"agreeing on a value failed: {_short(exc)}"
        raise DistributedTimeoutError(
            f"ranks could not agree on a value within {config.timeout_s:g} s ({_short(exc)}): every rank must "
            "reach the same point; a rank crashed or is stuck"
        ) from exc
    return combine(gathered)


# ------------------------------------------------------------------------------------------ the window hook
def window_hook(meter: Meter, options: Mapping[str, Any]) -> WindowHook | None:
    """The ``WindowHookFactory`` the meter's ``WINDOW_HOOKS`` names: while a process group is initialised,
    the hook that aggregates each window across ranks (or marks it local with ``dist_aggregate`` off).

    Creates the aggregation group now (collective), so a rank that never creates its meter is reported here,
    before any work is measured.
    """
    if initialized_dist() is None:
        return None
    config = DistConfig.from_options(options)
    if not config.aggregate:
        return LocalHook(config)
    return AggregatingHook(meter, config, aggregation_group(config.timeout_s))


def local_only(local: Measurement, *, host: str, reason: str, warning: str | None = None) -> Measurement:
    """This rank's own figures, marked as such so no report mistakes them for the job's."""
    dist = initialized_dist()
    up = dist is not None
    marker = {
        "aggregated": False,
        "reason": reason,
        "rank": dist.get_rank() if up else None,
        "world_size": dist.get_world_size() if up else None,
        "host": host,
    }
    warnings = (*local.warnings, warning) if warning else local.warnings
    return replace(local, warnings=warnings, metadata={**local.metadata, "distributed": marker})


class LocalHook:
    """A meter with aggregation off: every window is this rank's alone (no group, no collective)."""

    def __init__(self, config: DistConfig) -> None:
        self.config = config

    def finalize(self, result: Measurement) -> Measurement:
        return local_only(result, host=self.config.host, reason="aggregation off (dist_aggregate)")

    def finalize_local(self, result: Measurement, reason: str) -> Measurement:
        return local_only(result, host=self.config.host, reason=reason)


class AggregatingHook:
    """Makes every window collective: each rank's result becomes the job's, identical on every rank."""

    def __init__(self, meter: Meter, config: DistConfig, group: _AggregationGroup) -> None:
        self.meter = meter
        self.config = config
        self.group = group

    def finalize_local(self, result: Measurement, reason: str) -> Measurement:
        """Skip the collective for this window (e.g. its body raised on this rank): the local figures, marked.

        The peers that do reach the window's end then fail after the timeout, naming this rank; waiting here
        instead would hold this rank's own exception back by the whole timeout.
        """
        return local_only(
            result, host=self.config.host, reason=reason, warning=f"not aggregated across ranks: {reason}"
        )

    def finalize(self, result: Measurement) -> Measurement:
        try:
            reports = self._exchange(rank_report(result, self.meter, self.config))
        except DistributedError as exc:
            if self.config.on_error == "local":
                note = f"not aggregated across ranks: {exc}"
                return local_only(
                    result, host=self.config.host, reason="peer failure (dist_on_error=local)", warning=note
                )
            raise type(exc)(
                f"{exc}; this rank's own figures ({format_joules(result.energy_j)}) are kept on the error's .local",
                local=result,
                window=result.name,
            ) from exc.__cause__
        try:
            return aggregate(reports, aggregation={"backend": "gloo", "timeout_s": self.config.timeout_s})
        except DistributedError as exc:  # bad input (mismatched windows, regions): raised alike on every rank
            exc.local, exc.window = result, result.name
            raise

    def _exchange(self, report: dict[str, Any]) -> list[dict[str, Any]]:
        import torch.distributed as dist

        name = report["window"]
        if self.group.broken:
            raise DistributedError(
                f"window {name!r} not aggregated: an earlier aggregation on this rank failed "
                f"({self.group.broken}), so the ranks are out of step"
            )
        timeout = timedelta(seconds=self.config.timeout_s)
        gathered: list[Any] = [None] * dist.get_world_size(self.group.group)
        started = time.monotonic()
        try:
            # The monitored barrier names the ranks that never arrived (on rank 0); the gather moves the data.
            dist.monitored_barrier(group=self.group.group, timeout=timeout, wait_all_ranks=True)
            dist.all_gather_object(gathered, report, group=self.group.group)
        except RuntimeError as exc:  # torch's DistError family: timeouts, closed connections
            why = _explain_failure(exc, self.config.timeout_s, time.monotonic() - started)
            self.group.broken = why
            raise DistributedTimeoutError(
                f"window {name!r} could not be aggregated across {len(gathered)} ranks: {why}; windows are "
                f"collective, every rank must end them (raise ${TIMEOUT_ENV}, now {self.config.timeout_s:g} s, "
                "if ranks legitimately lag)"
            ) from exc
        return gathered


def _short(exc: BaseException, limit: int = 160) -> str:
    """The first line of a torch/gloo error without its source path prefix (``[/path/pair.cc:553] ``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\.(?:cc|cpp|h|hpp):\d+\]\s*", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _explain_failure(exc: BaseException, timeout_s: float, waited_s: float) -> str:
    """Say who failed and how: a connection lost early is a crash, a full wait is a hang (or another window)."""
    text = str(exc)
    how = (
        f"did not reach the end within {timeout_s:g} s (hung, or ended another window)"
        if waited_s >= 0.9 * timeout_s
        else f"dropped out after {waited_s:.3g} s (crashed or exited mid-window)"
    )
    missing = re.search(r"Ranks? ([\d, ]+) failed to pass monitoredBarrier", text)
    if missing:
        ranks = ", ".join(r.strip() for r in missing.group(1).split(",") if r.strip())
        return f"rank(s) {ranks} {how}"
    if "waiting for send/recv from rank 0" in text:
        return f"rank 0, which checks that every rank arrived, or a rank it waited for {how} (see rank 0's error)"
    return f"a rank {how}: {_short(exc)}"


def rank_report(local: Measurement, meter: Meter, config: DistConfig) -> dict[str, Any]:
    """What one rank contributes to a window's aggregation (plain data: it is pickled to every rank)."""
    import torch.distributed as dist

    rank = dist.get_rank()
    env = launcher_environment()
    provider = getattr(meter, "provider", None)
    return {
        "version": REPORT_VERSION,
        "window": local.name,
        "rank": rank,
        "world_size": dist.get_world_size(),
        "host": config.host,
        "local_rank": env.get("local_rank"),
        "pid": env.get("pid"),
        "own_gpu": _own_gpu_index(env.get("local_rank")),
        "carbon_settings": provider.describe() if provider is not None else None,
        "measurement": local.to_dict(),
        "launcher": env if rank == 0 else None,
    }


def _own_gpu_index(local_rank: int | None) -> int | None:
    """The CUDA device this rank drives: its current device once CUDA is up, else torchrun's LOCAL_RANK."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_available() and cuda.is_initialized():
        return int(cuda.current_device())
    return local_rank


# ------------------------------------------------------------------------------------- pure aggregation
def device_identity(domain: DomainEnergy, host: str, rank: int) -> tuple[Any, ...]:
    """Which physical thing a domain measures, so copies read by several ranks are counted once."""
    scope = str(domain.details.get("scope", "")).lower()
    if scope in ("process", "rank"):
        return ("rank", host, rank, domain.sampler, domain.key)
    uuid = domain.details.get("uuid")
    if uuid:  # global: the same GPU seen by two ranks (or two containers named as two hosts)
        return ("uuid", str(uuid), domain.method, domain.counted)
    return ("host", host, domain.sampler, domain.key)


def prefixed_key(host: str, rank: int, key: str) -> str:
    return f"{host}/rank{rank}/{key}"


def aggregate(reports: Sequence[Mapping[str, Any]], *, aggregation: Mapping[str, Any] | None = None) -> Measurement:
    """Merge every rank's report of one window into the job's ``Measurement`` (see the module docstring).

    Pure: the same reports give the same result on every rank. Raises ``DistributedError`` when ranks ended
    different windows or disagree on carbon settings.
    """
    reports = sorted(reports, key=lambda r: r["rank"])
    _check_reports(reports)
    measurements = {r["rank"]: Measurement.from_dict(r["measurement"]) for r in reports}
    _check_carbon_settings(reports)

    kept, duplicates = _deduplicate(reports, measurements)
    owned_j: dict[int, float] = {r["rank"]: 0.0 for r in reports}
    for rank, dom in kept:
        if dom.counted and not math.isnan(dom.energy_j):
            owned_j[rank] += dom.energy_j

    ranks_info = [_rank_entry(rep, measurements[rep["rank"]], owned_j[rep["rank"]]) for rep in reports]
    hosts_info = _host_entries(reports, ranks_info, measurements)
    carbon, carbon_warning = _job_carbon(reports, measurements, hosts_info)

    start = min(m.start_time for m in measurements.values())
    end = max(m.start_time + m.duration_s for m in measurements.values())
    domains = tuple(_prefixed_domain(rep_host(reports, rank), rank, dom) for rank, dom in kept)

    warnings = _merged_warnings(reports, measurements)
    if carbon_warning:
        warnings.append(carbon_warning)
    skew = max(m.start_time for m in measurements.values()) - start
    if skew > max(_SKEW_WARN_S, _SKEW_WARN_FRACTION * (end - start)):
        warnings.append(
            f"ranks began window {reports[0]['window']!r} up to {skew:.3g} s apart: shared devices are measured "
            "over the keeping rank's window only; begin windows at the same point on every rank (after a barrier)"
        )

    first = measurements[reports[0]["rank"]]
    metadata: dict[str, Any] = {k: v for k, v in first.metadata.items() if k not in ("samplers", "distributed")}
    metadata["samplers"] = {
        prefixed_key(rep["host"], rep["rank"], name): meta
        for rep in reports
        for name, meta in measurements[rep["rank"]].metadata.get("samplers", {}).items()
    }
    metadata["distributed"] = {
        "aggregated": True,
        "world_size": reports[0]["world_size"],
        "key_format": KEY_FORMAT,
        "hosts": hosts_info,
        "ranks": ranks_info,
        "duplicates": duplicates,
        "launcher": reports[0].get("launcher"),
        "aggregation": dict(aggregation or {}),
    }
    return Measurement(
        name=reports[0]["window"],
        start_time=start,
        duration_s=max(end - start, 0.0),
        domains=domains,
        carbon=carbon,
        warnings=tuple(warnings),
        metadata=metadata,
        timeline=_merge_timelines(reports, measurements, kept, start),
    )


def rep_host(reports: Sequence[Mapping[str, Any]], rank: int) -> str:
    return next(r["host"] for r in reports if r["rank"] == rank)


def _ranks_text(ranks: Sequence[int]) -> str:
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(str(r) for r in ranks)


def _check_reports(reports: Sequence[Mapping[str, Any]]) -> None:
    versions = {r.get("version") for r in reports}
    if versions != {REPORT_VERSION}:
        raise DistributedError(
            f"ranks run different energybench versions (report formats {sorted(map(str, versions))}): "
            "install the same energybench on every host"
        )
    by_name: dict[str, list[int]] = {}
    for rep in reports:
        by_name.setdefault(rep["window"], []).append(rep["rank"])
    if len(by_name) > 1:
        described = "; ".join(f"{name!r} on {_ranks_text(ranks)}" for name, ranks in by_name.items())
        raise DistributedError(
            f"ranks ended different windows ({described}): windows are collective, every rank must begin "
            "and end the same windows in the same order"
        )


def _check_carbon_settings(reports: Sequence[Mapping[str, Any]]) -> None:
    given = [r["rank"] for r in reports if r.get("carbon_settings") is not None]
    missing = [r["rank"] for r in reports if r.get("carbon_settings") is None]
    if given and missing:
        raise DistributedError(
            f"a region/intensity is given on {_ranks_text(given)} but not on {_ranks_text(missing)}: give every "
            "rank its host's region (the same on all ranks of a host), or give none"
        )
    if not given:
        return
    by_host: dict[str, dict[str, list[int]]] = {}
    for rep in reports:
        settings = json.dumps(rep["carbon_settings"], sort_keys=True, default=str)
        by_host.setdefault(rep["host"], {}).setdefault(settings, []).append(rep["rank"])
    for host, variants in by_host.items():
        if len(variants) > 1:
            described = "; ".join(
                f"{_describe_settings(json.loads(s))} on {_ranks_text(ranks)}" for s, ranks in variants.items()
            )
            raise DistributedError(
                f"ranks on host {host} use different carbon settings ({described}): a host draws from one grid, "
                "so give all its ranks the same region, intensity and PUE"
            )


def _describe_settings(settings: Mapping[str, Any]) -> str:
    text = f"{settings.get('region')} {settings.get('intensity_g_per_kwh')} g/kWh"
    if settings.get("pue") not in (None, 1, 1.0):
        text += f" PUE {settings.get('pue')}"
    return text


def _deduplicate(
    reports: Sequence[Mapping[str, Any]], measurements: Mapping[int, Measurement]
) -> tuple[list[tuple[int, DomainEnergy]], list[dict[str, Any]]]:
    """Keep one copy of each physical device; say which copies were dropped and where they are counted."""
    claims: dict[tuple[Any, ...], list[tuple[Mapping[str, Any], int, DomainEnergy]]] = {}
    for rep in reports:
        for index, dom in enumerate(measurements[rep["rank"]].domains):
            claims.setdefault(device_identity(dom, rep["host"], rep["rank"]), []).append((rep, index, dom))

    def preference(claim: tuple[Mapping[str, Any], int, DomainEnergy]) -> tuple[bool, bool, int]:
        rep, _, dom = claim
        own = dom.details.get("uuid") is not None and dom.details.get("process_index") == rep.get("own_gpu")
        return (math.isnan(dom.energy_j), not own, rep["rank"])

    sharers_of: dict[tuple[int, int], list[int]] = {}  # (rank, domain index) of each kept copy -> ranks sharing it
    duplicates: list[dict[str, Any]] = []
    for claimants in claims.values():
        owner = min(claimants, key=preference)
        owner_rep, owner_index, owner_dom = owner
        sharers_of[(owner_rep["rank"], owner_index)] = sorted({rep["rank"] for rep, _, _ in claimants})
        kept_as = prefixed_key(owner_rep["host"], owner_rep["rank"], owner_dom.key)
        for claim in claimants:
            if claim is owner:
                continue
            rep, _, dom = claim
            duplicates.append(
                {
                    "key": prefixed_key(rep["host"], rep["rank"], dom.key),
                    "energy_j": dom.energy_j,
                    "counted": dom.counted,
                    "kept_as": kept_as,
                    "reason": "same GPU (uuid)" if dom.details.get("uuid") else "device shared by ranks on one host",
                }
            )
    kept: list[tuple[int, DomainEnergy]] = []
    floor_kept_by: dict[tuple[str, str, str], str] = {}  # (host, sampler, key) -> the copy that keeps the floor
    for rep in reports:  # rank order, each rank's domains in its own order
        m = measurements[rep["rank"]]
        for index, dom in enumerate(m.domains):
            sharers = sharers_of.get((rep["rank"], index))
            if sharers is None:
                continue
            details = {**dom.details, "shared_by_ranks": sharers} if len(sharers) > 1 else dict(dom.details)
            dom = replace(dom, details=details)
            floor_w = host_floor_w(dom)
            if floor_w:
                here = prefixed_key(rep["host"], rep["rank"], dom.key)
                first = floor_kept_by.setdefault((rep["host"], dom.sampler, dom.key), here)
                if first != here and not math.isnan(dom.energy_j):
                    floor_j = min(floor_w * m.duration_s, dom.energy_j)
                    details["host_floor_removed_j"] = floor_j
                    dom = replace(dom, energy_j=dom.energy_j - floor_j, details=details)
                    duplicates.append(
                        {
                            "key": here,
                            "energy_j": floor_j,
                            "counted": dom.counted,
                            "kept_as": first,
                            "reason": f"host-wide floor of {floor_w:g} W inside a per-process figure",
                        }
                    )
            kept.append((rep["rank"], dom))
    return kept, duplicates


def host_floor_w(domain: DomainEnergy) -> float:
    """Watts of host-wide draw inside a per-process figure, to be counted once per host (0 when none).

    A per-process estimate may include the machine's idle floor (the CPU model's process scope charges
    ``idle_power_w`` to every process): summed over ranks on one host, that floor would count once per rank.
    Declared by the sampler as ``details["host_floor_w"]`` (the CPU model does so in process scope).
    """
    if str(domain.details.get("scope", "")).lower() not in ("process", "rank"):
        return 0.0
    value = domain.details.get("host_floor_w")
    try:
        watts = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
    return watts if math.isfinite(watts) and watts > 0 else 0.0


def _prefixed_domain(host: str, rank: int, dom: DomainEnergy) -> DomainEnergy:
    details = {**dom.details, "host": host, "rank": rank, "local_key": dom.key}
    return replace(dom, key=prefixed_key(host, rank, dom.key), details=details)


def _rank_co2e(m: Measurement, owned_j: float) -> float | None:
    if m.carbon is None:
        return None
    total = m.energy_j
    return m.carbon.co2e_g * (owned_j / total) if total > 0 else 0.0


def _rank_entry(rep: Mapping[str, Any], m: Measurement, owned_j: float) -> dict[str, Any]:
    settings = rep.get("carbon_settings") or {}
    extra = {k: v for k, v in m.metadata.items() if k not in ("samplers", "distributed")}
    return {
        "rank": rep["rank"],
        "host": rep["host"],
        "local_rank": rep.get("local_rank"),
        "pid": rep.get("pid"),
        "energy_j": owned_j,
        "measured_energy_j": m.energy_j,
        "co2e_g": _rank_co2e(m, owned_j),
        "region": settings.get("region"),
        "source": m.source,
        "start_time": m.start_time,
        "duration_s": m.duration_s,
        "metadata": extra,
    }


def _host_entries(
    reports: Sequence[Mapping[str, Any]],
    ranks_info: Sequence[Mapping[str, Any]],
    measurements: Mapping[int, Measurement],
) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = {}
    for rep, info in zip(reports, ranks_info, strict=True):
        m = measurements[rep["rank"]]
        host = hosts.setdefault(
            rep["host"],
            {
                "ranks": [],
                "energy_j": 0.0,
                "co2e_g": 0.0,
                "region": None,
                "pue": None,
                "intensity_g_per_kwh": None,
                "carbon_source": None,
                "carbon_method": None,
            },
        )
        host["ranks"].append(rep["rank"])
        host["energy_j"] += info["energy_j"]
        if info["co2e_g"] is None or host["co2e_g"] is None:
            host["co2e_g"] = None
        else:
            host["co2e_g"] += info["co2e_g"]
        if m.carbon is not None and host["region"] is None:
            host.update(
                region=m.carbon.region,
                pue=m.carbon.pue,
                carbon_source=m.carbon.source,
                carbon_method=m.carbon.method,
                intensity_g_per_kwh=m.carbon.intensity_g_per_kwh,
            )
    for host in hosts.values():
        kwh = host["energy_j"] / JOULES_PER_KWH
        if host["co2e_g"] is not None and kwh > 0 and host["pue"]:
            host["intensity_g_per_kwh"] = host["co2e_g"] / (kwh * host["pue"])  # effective over its ranks
        if host["region"] is None:
            host["co2e_g"] = None
    return hosts


def _job_carbon(
    reports: Sequence[Mapping[str, Any]],
    measurements: Mapping[int, Measurement],
    hosts: Mapping[str, Mapping[str, Any]],
) -> tuple[CarbonInfo | None, str | None]:
    if all(rep.get("carbon_settings") is None for rep in reports):
        return None, None
    unpriced = [rep["rank"] for rep in reports if measurements[rep["rank"]].carbon is None]
    if unpriced:
        return None, f"no CO2e for the job: {_ranks_text(unpriced)} could not price the window (see their warnings)"
    co2e = sum(h["co2e_g"] for h in hosts.values())
    energy = sum(h["energy_j"] for h in hosts.values())
    regions = {h["region"] for h in hosts.values()}
    pues = {h["pue"] for h in hosts.values()}
    if len(pues) == 1:
        pue = next(iter(pues))
    else:
        pue = sum(h["pue"] * h["energy_j"] for h in hosts.values()) / energy if energy > 0 else 1.0
    if energy > 0 and pue > 0:
        intensity = co2e / (energy / JOULES_PER_KWH * pue)
    else:
        intensity = sum(h["intensity_g_per_kwh"] for h in hosts.values()) / len(hosts)
    if len(regions) == 1:
        region = next(iter(regions))
    else:
        region = "mixed: " + ", ".join(f"{h['region']} ({name})" for name, h in hosts.items())
    carbons = [m.carbon for m in measurements.values() if m.carbon is not None]
    sources = list(dict.fromkeys(c.source for c in carbons))
    methods = {c.method for c in carbons}
    years = {c.year for c in carbons}
    return (
        CarbonInfo(
            co2e_g=co2e,
            region=region,
            intensity_g_per_kwh=intensity,
            pue=pue,
            source=" | ".join(sources),
            year=next(iter(years)) if len(years) == 1 else None,
            method=next(iter(methods)) if len(methods) == 1 else "mixed",
        ),
        None,
    )


def _merged_warnings(reports: Sequence[Mapping[str, Any]], measurements: Mapping[int, Measurement]) -> list[str]:
    """Each distinct warning once, prefixed with the ranks that gave it."""
    by_text: dict[str, list[int]] = {}
    for rep in reports:
        for text in measurements[rep["rank"]].warnings:
            by_text.setdefault(text, []).append(rep["rank"])
    n = len(reports)
    out = []
    for text, ranks in by_text.items():
        who = f"all {n} ranks" if len(ranks) == n and n > 1 else _ranks_text(ranks)
        out.append(f"{who}: {text}")
    return out


def _merge_timelines(
    reports: Sequence[Mapping[str, Any]],
    measurements: Mapping[int, Measurement],
    kept: Sequence[tuple[int, DomainEnergy]],
    start: float,
) -> tuple[tuple[float, dict[str, float]], ...]:
    """Every kept domain's power on one time axis (seconds from the earliest begin).

    Ranks' timelines have their own grids; each series is a step function (mean watts over the segment
    ending at each point), sampled at the union of all grid points so every row holds every series that
    covers it. Thinned by ``integrate.thin``.
    """
    kept_keys = {(rank, dom.details.get("local_key", dom.key)) for rank, dom in kept}
    series: dict[str, tuple[float, list[float], list[float]]] = {}
    grid: set[float] = set()
    for rep in reports:
        m = measurements[rep["rank"]]
        offset = m.start_time - start
        for t, watts in m.timeline:
            end = round(offset + t, 6)
            grid.add(end)
            for key, w in watts.items():
                if (rep["rank"], key) in kept_keys:
                    s = series.setdefault(prefixed_key(rep["host"], rep["rank"], key), (offset, [], []))
                    s[1].append(end)
                    s[2].append(w)
    points = thin(sorted(grid))
    rows: list[tuple[float, dict[str, float]]] = []
    for point in points:
        row: dict[str, float] = {}
        for key, (offset, ends, watts) in series.items():
            if point <= offset or point > ends[-1]:
                continue
            row[key] = watts[bisect.bisect_left(ends, point)]
        if row:
            rows.append((point, row))
    return tuple(rows)
