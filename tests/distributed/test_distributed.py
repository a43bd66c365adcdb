"""The pure side of distributed aggregation: merging rank reports, settings and the launcher environment.

Reports are built from real ``Measurement`` objects exactly as ``rank_report`` builds them (``to_dict``), so
these tests exercise the same code path as a torchrun job without starting one
(tests/distributed/test_distributed_runs.py does that).
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest

from energybench.distributed import (
    DEFAULT_TIMEOUT_S,
    REPORT_VERSION,
    DistConfig,
    DistributedError,
    aggregate,
    device_identity,
)
from energybench.distributed.launcher import host_name, launcher_environment, launcher_kind
from energybench.errors import ConfigError, EnergybenchError
from energybench.measurement import CarbonInfo, DomainEnergy, Measurement


def dom(key: str, joules: float, sampler: str = "powercap", counted: bool = True, **details: Any) -> DomainEnergy:
    method = "nvml-energy-counter" if key.startswith("gpu") else "rapl-powercap"
    return DomainEnergy(key, joules, "measured", method, sampler, counted, details)


def carbon(joules: float, region: str = "FRA", g_per_kwh: float = 56.0, pue: float = 1.0) -> CarbonInfo:
    return CarbonInfo(joules / 3.6e6 * g_per_kwh * pue, region, g_per_kwh, pue, f"{region} data", 2023, "region")


def settings(region: str = "FRA", g_per_kwh: float = 56.0, pue: float = 1.0) -> dict[str, Any]:
    return {"region": region, "intensity_g_per_kwh": g_per_kwh, "year": 2023, "source": "x", "pue": pue}


def report(
    rank: int,
    domains: list[DomainEnergy],
    *,
    host: str = "h1",
    window: str = "train",
    start: float = 1000.0,
    duration: float = 2.0,
    carbon_info: CarbonInfo | None = None,
    carbon_settings: dict[str, Any] | None = None,
    warnings: tuple[str, ...] = (),
    timeline: tuple = (),
    own_gpu: int | None = None,
    world_size: int = 2,
    host_id: str | None = None,
    barrier_wall_s: float | None = None,
) -> dict[str, Any]:
    m = Measurement(
        name=window,
        start_time=start,
        duration_s=duration,
        domains=tuple(domains),
        carbon=carbon_info,
        warnings=warnings,
        metadata={"samplers": {"powercap": {"root": "/sys/class/powercap"}}},
        timeline=timeline,
    )
    extra: dict[str, Any] = {}
    if host_id is not None:
        extra["host_id"] = host_id
    if barrier_wall_s is not None:
        extra["barrier_wall_s"] = barrier_wall_s
    return {
        **extra,
        "version": REPORT_VERSION,
        "window": window,
        "rank": rank,
        "world_size": world_size,
        "host": host,
        "local_rank": rank,
        "pid": 100 + rank,
        "own_gpu": own_gpu,
        "carbon_settings": carbon_settings,
        "measurement": m.to_dict(),
        "launcher": {"launcher": "torchrun"} if rank == 0 else None,
    }


def shared_host_reports() -> list[dict[str, Any]]:
    """Two ranks on one host: both read package 0 and DRAM; rank 1 also has a per-process figure."""
    return [
        report(
            0, [dom("cpu:package-0", 40.0), dom("cpu:dram-0", 10.0), dom("cpu:package-0:core", 15.0, counted=False)]
        ),
        report(
            1,
            [
                dom("cpu:package-0", 40.4),
                dom("cpu:dram-0", 10.1),
                dom("cpu:package-0:core", 15.2, counted=False),
                dom("proc:rss", 3.0, sampler="proc", scope="process"),
            ],
        ),
    ]


def test_shared_host_devices_are_kept_once_on_the_lowest_rank() -> None:
    m = aggregate(shared_host_reports())
    assert m.energy_j == pytest.approx(40.0 + 10.0 + 3.0)  # not 40 + 40.4 + 10 + 10.1 + 3
    assert [d.key for d in m.domains] == [
        "h1/rank0/cpu:package-0",
        "h1/rank0/cpu:dram-0",
        "h1/rank0/cpu:package-0:core",
        "h1/rank1/proc:rss",
    ]
    package = m.domains[0]
    assert (package.details["host"], package.details["rank"], package.details["local_key"]) == (
        "h1",
        0,
        "cpu:package-0",
    )
    assert package.details["shared_by_ranks"] == [0, 1]
    assert "shared_by_ranks" not in m.domains[3].details  # a per-process figure is nobody else's
    dropped = {d["key"]: d for d in m.metadata["distributed"]["duplicates"]}
    assert set(dropped) == {"h1/rank1/cpu:package-0", "h1/rank1/cpu:dram-0", "h1/rank1/cpu:package-0:core"}
    assert dropped["h1/rank1/cpu:package-0"] == {
        "key": "h1/rank1/cpu:package-0",
        "energy_j": 40.4,
        "counted": True,
        "kept_as": "h1/rank0/cpu:package-0",
        "reason": "device shared by ranks on one host",
    }


def test_rank_and_host_breakdown_add_up_to_the_total() -> None:
    m = aggregate(shared_host_reports())
    dist = m.metadata["distributed"]
    ranks = {r["rank"]: r for r in dist["ranks"]}
    assert ranks[0]["energy_j"] == pytest.approx(50.0) and ranks[1]["energy_j"] == pytest.approx(3.0)
    assert ranks[1]["measured_energy_j"] == pytest.approx(40.4 + 10.1 + 3.0)
    assert sum(r["energy_j"] for r in ranks.values()) == pytest.approx(m.energy_j)
    assert dist["hosts"]["h1"]["energy_j"] == pytest.approx(m.energy_j)
    assert dist["hosts"]["h1"]["ranks"] == [0, 1]
    assert dist["world_size"] == 2 and dist["key_format"] == "<host>/rank<N>/<domain>" and dist["aggregated"]
    assert dist["launcher"] == {"launcher": "torchrun"}
    assert set(m.metadata["samplers"]) == {"h1/rank0/powercap", "h1/rank1/powercap"}


def test_devices_on_different_hosts_are_all_counted() -> None:
    reports = [report(0, [dom("cpu:package-0", 40.0)], host="a"), report(1, [dom("cpu:package-0", 30.0)], host="b")]
    m = aggregate(reports)
    assert m.energy_j == pytest.approx(70.0)
    assert m.metadata["distributed"]["duplicates"] == []
    assert {h: v["energy_j"] for h, v in m.metadata["distributed"]["hosts"].items()} == {"a": 40.0, "b": 30.0}


def test_a_gpu_every_rank_sees_is_counted_once_on_the_rank_that_drives_it() -> None:
    """NVML lists every GPU a process may see: without CUDA_VISIBLE_DEVICES both ranks report both GPUs."""

    def gpus(a: float, b: float) -> list[DomainEnergy]:
        return [
            dom("gpu:0", a, "nvml", uuid="GPU-A", process_index=0),
            dom("gpu:1", b, "nvml", uuid="GPU-B", process_index=1),
        ]

    m = aggregate([report(0, gpus(100.0, 200.0), own_gpu=0), report(1, gpus(101.0, 201.0), own_gpu=1)])
    assert sorted(d.key for d in m.domains) == ["h1/rank0/gpu:0", "h1/rank1/gpu:1"]
    assert m.energy_j == pytest.approx(100.0 + 201.0)
    ranks = {r["rank"]: r["energy_j"] for r in m.metadata["distributed"]["ranks"]}
    assert ranks == {0: 100.0, 1: 201.0}
    reasons = {d["reason"] for d in m.metadata["distributed"]["duplicates"]}
    assert reasons == {"same GPU (uuid)"}


def test_gpus_split_by_cuda_visible_devices_are_distinct_and_counter_and_polled_copies_are_not_merged() -> None:
    r0 = [
        dom("gpu:0", 100.0, "nvml", uuid="GPU-A", process_index=0),
        DomainEnergy("gpu:0-polled", 98.0, "measured", "nvml-power-polling", "nvml-poll", False, {"uuid": "GPU-A"}),
    ]
    r1 = [dom("gpu:0", 120.0, "nvml", uuid="GPU-B", process_index=0)]  # same key, another physical GPU
    m = aggregate([report(0, r0, own_gpu=0), report(1, r1, own_gpu=0)])
    assert [d.key for d in m.domains] == ["h1/rank0/gpu:0", "h1/rank0/gpu:0-polled", "h1/rank1/gpu:0"]
    assert m.energy_j == pytest.approx(220.0)
    assert m.metadata["distributed"]["duplicates"] == []


def test_a_copy_with_a_figure_beats_one_too_short_to_read() -> None:
    reports = [report(0, [dom("cpu:package-0", math.nan)]), report(1, [dom("cpu:package-0", 0.5)])]
    m = aggregate(reports)
    assert [d.key for d in m.domains] == ["h1/rank1/cpu:package-0"]
    assert m.energy_j == pytest.approx(0.5)


def test_device_identity() -> None:
    assert device_identity(dom("cpu:package-0", 1.0), "h", 0) == device_identity(dom("cpu:package-0", 2.0), "h", 1)
    assert device_identity(dom("cpu:package-0", 1.0), "h", 0) != device_identity(dom("cpu:package-0", 1.0), "g", 0)
    proc = dom("proc:x", 1.0, scope="process")
    assert device_identity(proc, "h", 0) != device_identity(proc, "h", 1)
    machine_wide = dom("cpu:package", 1.0, "cpu-model", scope="machine-wide")  # the CPU model's own label
    assert device_identity(machine_wide, "h", 0) == device_identity(machine_wide, "h", 1)


def test_ranks_ending_different_windows_is_one_clear_error() -> None:
    reports = [report(0, [], window="train"), report(1, [], window="eval"), report(2, [], window="train")]
    with pytest.raises(DistributedError) as info:
        aggregate(reports)
    msg = str(info.value)
    assert "'train' on ranks 0, 2; 'eval' on rank 1" in msg and "same order" in msg and "\n" not in msg
    assert isinstance(info.value, EnergybenchError)


def test_different_energybench_versions_are_refused() -> None:
    reports = shared_host_reports()
    reports[1]["version"] = 99
    with pytest.raises(DistributedError, match="same energybench on every host"):
        aggregate(reports)


def test_region_on_some_ranks_only_is_an_error() -> None:
    reports = [
        report(0, [dom("cpu:package-0", 1.0)], carbon_info=carbon(1.0), carbon_settings=settings()),
        report(1, [dom("cpu:package-0", 1.0)]),
    ]
    with pytest.raises(DistributedError, match="given on rank 0 but not on rank 1"):
        aggregate(reports)


def test_ranks_of_one_host_must_agree_on_its_region() -> None:
    reports = [
        report(0, [], carbon_info=carbon(0.0), carbon_settings=settings("FRA", 56.0)),
        report(1, [], carbon_info=carbon(0.0, "DEU", 381.0), carbon_settings=settings("DEU", 381.0)),
    ]
    with pytest.raises(DistributedError, match="ranks on host h1 use different carbon settings"):
        aggregate(reports)


def test_carbon_is_priced_per_host_and_summed() -> None:
    joules_a, joules_b = 3.6e6, 1.8e6  # 1 kWh in France, 0.5 kWh in Germany with PUE 1.5
    reports = [
        report(0, [dom("cpu:package-0", joules_a)], host="a", carbon_info=carbon(joules_a), carbon_settings=settings()),
        report(
            1,
            [dom("cpu:package-0", joules_b)],
            host="b",
            carbon_info=carbon(joules_b, "DEU", 400.0, 1.5),
            carbon_settings=settings("DEU", 400.0, 1.5),
        ),
    ]
    m = aggregate(reports)
    hosts = m.metadata["distributed"]["hosts"]
    assert hosts["a"]["co2e_g"] == pytest.approx(56.0)
    assert hosts["b"]["co2e_g"] == pytest.approx(0.5 * 400.0 * 1.5)
    assert m.carbon is not None
    assert m.carbon.co2e_g == pytest.approx(56.0 + 300.0)
    assert m.carbon.region == "mixed: FRA (a), DEU (b)"
    assert m.carbon.method == "region" and m.carbon.year == 2023
    # the effective factor reproduces the grams from the joules
    assert m.carbon.co2e_g == pytest.approx(m.energy_j / 3.6e6 * m.carbon.intensity_g_per_kwh * m.carbon.pue)


def test_dropped_copies_carry_no_carbon() -> None:
    """Rank 1's grams covered its copy of the shared package too; only the joules it keeps are charged."""
    reports = [
        report(0, [dom("cpu:package-0", 3.6e6)], carbon_info=carbon(3.6e6), carbon_settings=settings()),
        report(
            1,
            [dom("cpu:package-0", 3.6e6), dom("p", 3.6e6, "proc", scope="process")],
            carbon_info=carbon(7.2e6),
            carbon_settings=settings(),
        ),
    ]
    m = aggregate(reports)
    assert m.carbon is not None and m.carbon.co2e_g == pytest.approx(2 * 56.0)  # 2 kWh, not 3
    assert m.carbon.region == "FRA" and m.carbon.intensity_g_per_kwh == pytest.approx(56.0)
    assert [r["co2e_g"] for r in m.metadata["distributed"]["ranks"]] == pytest.approx([56.0, 56.0])


def test_a_rank_that_could_not_price_its_window_leaves_the_job_without_grams() -> None:
    reports = [
        report(0, [dom("cpu:package-0", 1.0)], carbon_info=carbon(1.0), carbon_settings=settings()),
        report(1, [dom("cpu:package-0", 1.0)], carbon_settings=settings(), warnings=("no CO2e: series ends",)),
    ]
    m = aggregate(reports)
    assert m.carbon is None
    assert "rank 1: no CO2e: series ends" in m.warnings
    assert any("no CO2e for the job: rank 1 could not price" in w for w in m.warnings)


def test_warnings_are_merged_with_the_ranks_that_gave_them_and_skew_is_flagged() -> None:
    reports = [
        report(0, [], warnings=("no CO2e: no region given",)),
        report(1, [], warnings=("no CO2e: no region given", "gpu:0 is lost"), start=1003.0),
    ]
    m = aggregate(reports)
    assert m.warnings[:2] == ("all 2 ranks: no CO2e: no region given", "rank 1: gpu:0 is lost")
    assert any("up to 3 s apart" in w for w in m.warnings)
    assert m.start_time == 1000.0 and m.duration_s == pytest.approx(5.0)  # earliest begin to latest end


def test_timelines_share_one_axis_from_the_earliest_begin() -> None:
    reports = [
        report(
            0, [dom("cpu:package-0", 40.0)], timeline=((1.0, {"cpu:package-0": 20.0}), (2.0, {"cpu:package-0": 20.0}))
        ),
        report(
            1,
            [dom("cpu:package-0", 40.0), dom("gpu:0", 100.0, "nvml", uuid="GPU-A", process_index=0)],
            start=1000.5,
            timeline=((1.0, {"cpu:package-0": 21.0, "gpu:0": 50.0}), (2.0, {"cpu:package-0": 21.0, "gpu:0": 60.0})),
        ),
    ]
    m = aggregate(reports)
    times = [t for t, _ in m.timeline]
    assert times == [1.0, 1.5, 2.0, 2.5]
    rows = dict(m.timeline)
    assert rows[1.0] == {"h1/rank0/cpu:package-0": 20.0, "h1/rank1/gpu:0": 50.0}
    assert rows[2.5] == {"h1/rank1/gpu:0": 60.0}  # rank 0's window is over, its dropped copy never shows
    assert all("h1/rank1/cpu:package-0" not in row for row in rows.values())


def test_result_round_trips_through_json() -> None:
    m = aggregate(shared_host_reports())
    again = Measurement.from_dict(m.to_dict())
    assert again == m


def test_config_from_options_and_environment() -> None:
    assert DistConfig.from_options({}, {}).timeout_s == DEFAULT_TIMEOUT_S
    env = {"ENERGYBENCH_DIST_TIMEOUT_S": "7.5", "ENERGYBENCH_DIST_ON_ERROR": "Local", "ENERGYBENCH_HOST": "n1"}
    cfg = DistConfig.from_options({}, env)
    assert (cfg.timeout_s, cfg.on_error, cfg.host) == (7.5, "local", "n1")
    cfg = DistConfig.from_options({"dist_timeout_s": 2, "dist_on_error": "raise", "dist_host": "a/b"}, env)
    assert (cfg.timeout_s, cfg.on_error, cfg.host) == (2.0, "raise", "a_b")


def test_aggregation_can_be_turned_off_per_meter_or_by_environment() -> None:
    assert DistConfig.from_options({}, {}).aggregate is True
    assert DistConfig.from_options({"dist_aggregate": False}, {}).aggregate is False
    assert DistConfig.from_options({}, {"ENERGYBENCH_DIST_AGGREGATE": "off"}).aggregate is False
    assert DistConfig.from_options({"dist_aggregate": True}, {"ENERGYBENCH_DIST_AGGREGATE": "0"}).aggregate is True
    with pytest.raises(ConfigError, match="ENERGYBENCH_DIST_AGGREGATE='maybe' must be on or off"):
        DistConfig.from_options({}, {"ENERGYBENCH_DIST_AGGREGATE": "maybe"})


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_bad_timeout_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="ENERGYBENCH_DIST_TIMEOUT_S=.*positive number of seconds"):
        DistConfig.from_options({}, {"ENERGYBENCH_DIST_TIMEOUT_S": value})


def test_bad_on_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'ignore' is not one of raise, local"):
        DistConfig.from_options({"dist_on_error": "ignore"}, {})


def test_launcher_environment_under_slurm() -> None:
    env = {
        "SLURM_JOB_ID": "4242",
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "2",
        "SLURM_NTASKS": "8",
        "SLURM_JOB_NODELIST": "gpu[01-04]",
        "MASTER_ADDR": "gpu01",
        "MASTER_PORT": "29500",
        "ENERGYBENCH_HOST": "gpu03",
        "HOME": "/home/me",
    }
    info = launcher_environment(env)
    assert info["launcher"] == "slurm"
    assert (info["world_size"], info["rank"], info["local_rank"], info["node_rank"]) == (8, 5, 1, 2)
    assert (info["job_id"], info["master_addr"], info["master_port"], info["host"]) == ("4242", "gpu01", 29500, "gpu03")
    assert info["env"]["SLURM_JOB_NODELIST"] == "gpu[01-04]"
    assert "HOME" not in info["env"]  # only launcher bookkeeping is recorded


def test_launcher_kind_and_host_name() -> None:
    assert launcher_kind({"TORCHELASTIC_RUN_ID": "x", "SLURM_JOB_ID": "1", "SLURM_PROCID": "0"}) == "torchrun"
    assert launcher_kind({"OMPI_COMM_WORLD_RANK": "0"}) == "mpi"
    assert launcher_kind({"RANK": "0", "WORLD_SIZE": "2"}) == "env"
    assert launcher_kind({}) is None
    info = launcher_environment({})
    assert info["launcher"] is None and info["world_size"] is None and info["host"]
    assert host_name({}, {"ENERGYBENCH_HOST": " node7 "}) == "node7"


def test_importing_the_distributed_modules_does_not_import_torch() -> None:
    code = (
        "import sys, energybench.distributed as d, energybench.distributed.launcher;"
        "[getattr(d, name) for name in d.__all__]; print('torch' in sys.modules)"  # every module of the package
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_agree_outside_a_process_group_returns_the_value_unchanged() -> None:
    from energybench.distributed import agree

    assert agree(7) == 7 and agree([1, 2], combine=lambda values: values[0]) == [1, 2]


def test_a_host_floor_inside_per_process_figures_is_counted_once_per_host() -> None:
    """The CPU model in process scope charges the machine's idle power to every process: keep it once."""

    def cpu(joules: float) -> DomainEnergy:
        details = {"scope": "process", "host_floor_w": 1.5}
        return DomainEnergy("cpu:package", joules, "estimated", "linear-cpu-time-model", "cpu-model", True, details)

    reports = [
        report(0, [cpu(10.0)], duration=2.0),
        report(1, [cpu(7.0)], duration=2.0),
        report(2, [cpu(2.0)], duration=2.0, host="h2"),
    ]
    m = aggregate(reports, aggregation={"timeout_s": 9})
    by_key = {d.key: d for d in m.domains}
    assert by_key["h1/rank0/cpu:package"].energy_j == 10.0
    assert by_key["h1/rank1/cpu:package"].energy_j == pytest.approx(7.0 - 1.5 * 2.0)
    assert by_key["h1/rank1/cpu:package"].details["host_floor_removed_j"] == pytest.approx(3.0)
    assert by_key["h2/rank2/cpu:package"].energy_j == 2.0  # another host's floor is its own
    assert m.energy_j == pytest.approx(10.0 + 4.0 + 2.0)
    (dropped,) = m.metadata["distributed"]["duplicates"]
    assert dropped["kept_as"] == "h1/rank0/cpu:package" and dropped["energy_j"] == pytest.approx(3.0)
    assert m.metadata["distributed"]["aggregation"] == {"timeout_s": 9}


def test_local_figures_are_marked_as_one_ranks() -> None:
    from energybench.distributed import local_only

    m = Measurement.from_dict(shared_host_reports()[0]["measurement"])
    out = local_only(m, host="h1", reason="window body raised", warning="not aggregated across ranks: raised")
    assert out.metadata["distributed"] == {
        "aggregated": False,
        "reason": "window body raised",
        "rank": None,  # no process group in this test process
        "world_size": None,
        "host": "h1",
    }
    assert out.energy_j == m.energy_j and out.warnings[-1] == "not aggregated across ranks: raised"
    assert out.metadata["samplers"] == m.metadata["samplers"]


# ------------------------------------------------------------------------------------------ host identity, clocks
def test_containers_on_one_machine_are_one_host_whatever_their_hostnames() -> None:
    """Two containers (hostnames ctr-a, ctr-b) share the kernel, hence its boot id and its RAPL package."""
    shared = "boot:0f3c9a1e-1111-2222-3333-444455556666"
    reports = [report(0, [dom("cpu:package-0", 100.0)], host="ctr-a", host_id=shared),
               report(1, [dom("cpu:package-0", 100.0)], host="ctr-b", host_id=shared)]
    m = aggregate(reports)
    assert m.energy_j == pytest.approx(100.0)  # the package once, not twice
    hosts = m.metadata["distributed"]["hosts"]
    assert list(hosts) == ["ctr-a"] and hosts["ctr-a"]["hostnames"] == ["ctr-a", "ctr-b"]
    assert hosts["ctr-a"]["host_id"] == shared
    assert [r["hostname"] for r in m.metadata["distributed"]["ranks"]] == ["ctr-a", "ctr-b"]


def test_two_machines_with_the_same_hostname_are_two_hosts() -> None:
    reports = [report(0, [dom("cpu:package-0", 100.0)], host="localhost", host_id="boot:aaaa"),
               report(1, [dom("cpu:package-0", 60.0)], host="localhost", host_id="boot:bbbb")]
    m = aggregate(reports)
    assert m.energy_j == pytest.approx(160.0)
    assert sorted(m.metadata["distributed"]["hosts"]) == ["localhost", "localhost#2"]


def test_host_id_is_the_kernels_boot_id_unless_a_host_is_named(tmp_path) -> None:
    from energybench.distributed.launcher import host_id

    boot = tmp_path / "boot_id"
    boot.write_text("0f3c9a1e-1111-2222-3333-444455556666\n")
    assert host_id({"boot_id_path": str(boot)}, {}) == "boot:0f3c9a1e-1111-2222-3333-444455556666"
    machine = tmp_path / "machine-id"
    machine.write_text("abc123\n")
    gone = str(tmp_path / "none")
    assert host_id({"boot_id_path": gone, "machine_id_paths": [str(machine)]}, {}) == "machine:abc123"
    assert host_id({"boot_id_path": gone, "machine_id_paths": [gone]}, {}).startswith("hostname:")
    assert host_id({}, {"ENERGYBENCH_HOST": "node7"}) == "name:node7"
    with open("/proc/sys/kernel/random/boot_id") as fh:  # this machine's own
        assert host_id({}, {}) == f"boot:{fh.read().strip()}"


def test_window_duration_uses_each_ranks_own_clock_and_the_measured_offset() -> None:
    """Rank 1's wall clock runs 2.5 s ahead. Both ranks measured the same 10 s: the job's window is 10 s,
    and they did not begin 2.5 s apart (the offset is measured as both leave the exchange's barrier)."""
    reports = [report(0, [dom("cpu:package-0", 100.0)], start=1000.0, duration=10.0, barrier_wall_s=1010.2),
               report(1, [dom("cpu:package-0", 100.0)], host="h2", start=1002.5, duration=10.0,
                      barrier_wall_s=1012.7)]
    m = aggregate(reports)
    assert m.duration_s == pytest.approx(10.0)
    assert m.start_time == pytest.approx(1000.0)
    assert not any("apart" in w for w in m.warnings)
    assert m.metadata["distributed"]["clock_offsets_s"] == {"0": 0.0, "1": pytest.approx(2.5)}


def test_ranks_that_really_began_apart_are_still_warned_about() -> None:
    reports = [report(0, [dom("cpu:package-0", 100.0)], start=1000.0, duration=10.0, barrier_wall_s=1013.0),
               report(1, [dom("cpu:package-0", 70.0)], host="h2", start=1003.0, duration=7.0, barrier_wall_s=1013.0)]
    m = aggregate(reports)
    assert m.duration_s == pytest.approx(10.0)
    assert any("up to 3 s apart" in w for w in m.warnings)
