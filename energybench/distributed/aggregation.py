"""Pure aggregation: every rank's report of one window in, the job's ``Measurement`` out.

No communication and no torch: the same reports give the same result on every rank, and tests build reports
from plain ``Measurement`` objects exactly as ``hook.rank_report`` does.

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
itself), ``duplicates``, ``shared_counters`` (per host: which ranks shared which counter and whose copy
counts), the ``launcher`` environment of rank 0 and the aggregation settings. Duration spans the earliest
begin to the latest end.

**Hosts and clocks.** A host is what the kernel says is shared (``launcher.host_id``: the boot id), so
containers on one machine with hostnames of their own are one host; its label is the lowest rank's
hostname (a second machine with the same name is ``name#2``). Hosts' wall clocks differ: the window's
duration is built from each rank's monotonic duration, with wall-clock starts compared only after taking out
each rank's clock offset to rank 0, measured as every rank leaves the exchange's barrier
(``metadata["distributed"]["clock_offsets_s"]``).

**Carbon per host.** Each rank may pass its own region/intensity/PUE (hosts in different places); all ranks
of a host must agree and either every rank gives one or none does. A host's grams are the sum of its ranks'
grams in proportion to the joules they keep; the job's grams are the sum over hosts, with an effective
intensity (grams / kWh / PUE) and ``region`` set to ``mixed: ...`` when hosts differ.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from energybench.distributed.errors import DistributedError
from energybench.integrate import thin
from energybench.measurement import JOULES_PER_KWH, CarbonInfo, DomainEnergy, Measurement

REPORT_VERSION = 2  # 2: host_id and barrier_wall_s
KEY_FORMAT = "<host>/rank<N>/<domain>"
_SKEW_WARN_S = 1.0  # ranks entering a window further apart than this (and 5% of it) get a warning
_SKEW_WARN_FRACTION = 0.05


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
    _check_reports(reports)
    reports = _unify_hosts(sorted(reports, key=lambda r: r["rank"]))
    measurements = {r["rank"]: Measurement.from_dict(r["measurement"]) for r in reports}
    _check_carbon_settings(reports)
    offsets = _clock_offsets(reports)
    starts = {rank: m.start_time - offsets[rank] for rank, m in measurements.items()}  # in rank 0's clock

    kept, duplicates = _deduplicate(reports, measurements)
    owned_j: dict[int, float] = {r["rank"]: 0.0 for r in reports}
    for rank, dom in kept:
        if dom.counted and not math.isnan(dom.energy_j):
            owned_j[rank] += dom.energy_j

    ranks_info = [_rank_entry(rep, measurements[rep["rank"]], owned_j[rep["rank"]]) for rep in reports]
    hosts_info = _host_entries(reports, ranks_info, measurements)
    carbon, carbon_warning = _job_carbon(reports, measurements, hosts_info)

    start = min(starts.values())
    end = max(starts[rank] + m.duration_s for rank, m in measurements.items())  # each rank's monotonic span
    domains = tuple(_prefixed_domain(rep_host(reports, rank), rank, dom) for rank, dom in kept)

    warnings = _merged_warnings(reports, measurements) + ([carbon_warning] if carbon_warning else [])
    skew = max(starts.values()) - start
    if skew > max(_SKEW_WARN_S, _SKEW_WARN_FRACTION * (end - start)):
        warnings.append(
            f"ranks began window {reports[0]['window']!r} up to {skew:.3g} s apart: shared devices are measured "
            "over the keeping rank's window only; begin windows at the same point on every rank (after a barrier)"
        )

    first = measurements[reports[0]["rank"]]
    metadata: dict[str, Any] = {k: v for k, v in first.metadata.items() if k not in ("samplers", "distributed")}
    metadata["samplers"] = {prefixed_key(rep["host"], rep["rank"], name): meta for rep in reports
                            for name, meta in measurements[rep["rank"]].metadata.get("samplers", {}).items()}
    metadata["distributed"] = {
        "aggregated": True, "world_size": reports[0]["world_size"], "key_format": KEY_FORMAT, "hosts": hosts_info,
        "ranks": ranks_info, "duplicates": duplicates, "shared_counters": shared_counters_by_host(reports, kept),
        "launcher": reports[0].get("launcher"), "aggregation": dict(aggregation or {}),
        "clock_offsets_s": {str(rank): offset for rank, offset in offsets.items()},
    }
    missing = [prefixed_key(rep["host"], rep["rank"], key) for rep in reports
               for key in measurements[rep["rank"]].missing]
    return Measurement(
        name=reports[0]["window"],
        start_time=start,
        duration_s=max(end - start, 0.0),
        domains=domains,
        carbon=carbon,
        warnings=tuple(warnings),
        metadata=metadata,
        timeline=_merge_timelines(reports, measurements, kept, start, starts),
        missing=tuple(missing),
    )


def _unify_hosts(reports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Reports with ``host`` set to one label per ``host_id``: the lowest rank's hostname, or ``name#N``
    when another machine already has that name. ``hostname`` keeps what the rank itself said."""
    label_of: dict[str, str] = {}
    taken: set[str] = set()
    for rep in reports:
        hid = str(rep.get("host_id") or rep["host"])
        if hid in label_of:
            continue
        label, n = str(rep["host"]), 2
        while label in taken:
            label, n = f"{rep['host']}#{n}", n + 1
        label_of[hid] = label
        taken.add(label)
    return [{**rep, "hostname": rep["host"], "host_id": str(rep.get("host_id") or rep["host"]),
             "host": label_of[str(rep.get("host_id") or rep["host"])]} for rep in reports]


def _clock_offsets(reports: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Each rank's wall clock minus rank 0's, from the instant all left the barrier (0 when not measured)."""
    ref = reports[0].get("barrier_wall_s")
    out = {}
    for rep in reports:
        mine = rep.get("barrier_wall_s")
        out[rep["rank"]] = float(mine) - float(ref) if isinstance(mine, int | float) and isinstance(
            ref, int | float) else 0.0
    return out


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
    return _kept_copies(reports, measurements, sharers_of, duplicates), duplicates


def _kept_copies(reports: Sequence[Mapping[str, Any]], measurements: Mapping[int, Measurement],
                 sharers_of: Mapping[tuple[int, int], list[int]],
                 duplicates: list[dict[str, Any]]) -> list[tuple[int, DomainEnergy]]:
    """The kept copy of each device, with the ranks that share it; a host-wide floor inside per-process
    figures is kept by its first copy on the host and removed from the others (noted in ``duplicates``)."""
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
                    duplicates.append({"key": here, "energy_j": floor_j, "counted": dom.counted, "kept_as": first,
                                       "reason": f"host-wide floor of {floor_w:g} W inside a per-process figure"})
            kept.append((rep["rank"], dom))
    return kept


def shared_counters_by_host(
    reports: Sequence[Mapping[str, Any]], kept: Sequence[tuple[int, DomainEnergy]]
) -> dict[str, list[dict[str, Any]]]:
    """Per host, every counter that several ranks read (a RAPL package, a GPU by UUID, a host-wide estimate):
    which ranks shared it and whose copy counts. ``_deduplicate`` decides this; here it is listed per host."""
    out: dict[str, list[dict[str, Any]]] = {rep["host"]: [] for rep in reports}
    for rank, dom in kept:
        ranks = dom.details.get("shared_by_ranks") or []
        if len(ranks) > 1:
            out[rep_host(reports, rank)].append({
                "counter": dom.key,
                "identity": f"GPU {dom.details['uuid']}" if dom.details.get("uuid") else "host-wide",
                "ranks": list(ranks),
                "counted_on_rank": rank,
            })
    return out


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
        "hostname": rep.get("hostname", rep["host"]),
        "host_id": rep.get("host_id"),
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
        host["host_id"] = rep.get("host_id")
        names = host.setdefault("hostnames", [])
        if rep.get("hostname", rep["host"]) not in names:
            names.append(rep.get("hostname", rep["host"]))
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
    starts: Mapping[int, float],
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
        offset = starts[rep["rank"]] - start
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
        for key, (offset, ends, levels) in series.items():
            if point <= offset or point > ends[-1]:
                continue
            row[key] = levels[bisect.bisect_left(ends, point)]
        if row:
            rows.append((point, row))
    return tuple(rows)
