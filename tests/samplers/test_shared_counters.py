"""torch.distributed: per host, which ranks shared which counters (the list aggregation exposes beside the
figures it de-duplicates), built from rank reports exactly as ``hook.rank_report`` builds them."""

from __future__ import annotations

from typing import Any

from energybench.distributed import REPORT_VERSION, aggregate
from energybench.measurement import DomainEnergy, Measurement


def dom(key: str, joules: float, sampler: str, **details: Any) -> DomainEnergy:
    method = "nvml-energy-counter" if key.startswith("gpu") else "rapl-powercap"
    return DomainEnergy(key, joules, "measured", method, sampler, True, details)


def report(rank: int, host: str, domains: list[DomainEnergy], own_gpu: int | None) -> dict[str, Any]:
    m = Measurement(name="train", start_time=1000.0, duration_s=2.0, domains=tuple(domains), carbon=None,
                    warnings=(), metadata={"samplers": {}}, timeline=())
    return {"version": REPORT_VERSION, "window": "train", "rank": rank, "world_size": 4, "host": host,
            "host_id": f"boot:{host}", "local_rank": rank % 2, "pid": 100 + rank, "own_gpu": own_gpu,
            "carbon_settings": None, "measurement": m.to_dict(), "launcher": None}


def gpus(host: str, *joules: float) -> list[DomainEnergy]:
    return [dom(f"gpu:{i}", j, f"nvml:gpu:{i}", uuid=f"GPU-{host}-{i}", process_index=i)
            for i, j in enumerate(joules)]


def test_each_host_lists_the_counters_its_ranks_shared() -> None:
    """Two hosts, two ranks each: on every host both ranks read the RAPL package and both GPUs (NVML lists
    every GPU a process may see); each GPU counts on the rank that drives it, the package on the lowest rank."""
    reports = []
    for host, ranks in (("node1", (0, 1)), ("node2", (2, 3))):
        for rank in ranks:
            local = rank % 2
            reports.append(report(rank, host, [dom("cpu:package-0", 40.0 + rank, "powercap"),
                                               *gpus(host, 100.0 + rank, 200.0 + rank)], own_gpu=local))
    m = aggregate(reports)
    shared = m.metadata["distributed"]["shared_counters"]
    assert set(shared) == {"node1", "node2"}
    node1 = {entry["counter"]: entry for entry in shared["node1"]}
    assert node1["cpu:package-0"] == {"counter": "cpu:package-0", "identity": "host-wide", "ranks": [0, 1],
                                      "counted_on_rank": 0}
    assert node1["gpu:0"] == {"counter": "gpu:0", "identity": "GPU GPU-node1-0", "ranks": [0, 1],
                              "counted_on_rank": 0}
    assert node1["gpu:1"] == {"counter": "gpu:1", "identity": "GPU GPU-node1-1", "ranks": [0, 1],
                              "counted_on_rank": 1}  # counted on the rank that drives it
    node2 = {entry["counter"]: entry for entry in shared["node2"]}
    assert set(node2) == {"cpu:package-0", "gpu:0", "gpu:1"} and node2["cpu:package-0"]["ranks"] == [2, 3]
    assert node2["gpu:1"]["counted_on_rank"] == 3


def test_a_rank_alone_on_its_host_shares_nothing() -> None:
    m = aggregate([report(0, "a", [dom("cpu:package-0", 40.0, "powercap")], None),
                   report(1, "b", [dom("cpu:package-0", 41.0, "powercap")], None)])
    assert m.metadata["distributed"]["shared_counters"] == {"a": [], "b": []}
