"""Real torch.distributed runs (gloo, 2 ranks) measuring one fake RAPL tree that both ranks share.

The test process owns the fake powercap tree and advances its counters from a writer thread at a known
power, so both ranks read the same package at the same time, like two processes on one host. Workers live in
``tests/support/dist_workers/window_worker.py`` and write what they saw to JSON; these tests assert on that.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from powercap_tree import FakePowercap

from energybench.measurement import Measurement

WORKER = Path(__file__).parents[1] / "support" / "dist_workers" / "window_worker.py"
PACKAGE_W, DRAM_W, CORE_W = 20.0, 5.0, 8.0


def _tree(root: Path) -> FakePowercap:
    tree = FakePowercap(root)
    tree.add_package(0, PACKAGE_W, core_w=CORE_W, dram_w=DRAM_W)
    return tree


def _env(tree: FakePowercap, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENERGYBENCH_", "TORCHELASTIC_"))}
    env.update(ENERGYBENCH_POWERCAP_ROOT=str(tree.root), OMP_NUM_THREADS="1", **extra)
    return env


def _torchrun(scenario: str, outdir: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["--monitor-interval=0.2", str(WORKER), scenario, str(outdir)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _load(outdir: Path, rank: int, proc: subprocess.CompletedProcess) -> dict:
    path = outdir / f"rank{rank}.json"
    assert path.exists(), f"rank {rank} wrote nothing; launcher said:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def basic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """One torchrun of the ``basic`` scenario shared by the tests below (starting torch twice is the cost)."""
    base = tmp_path_factory.mktemp("dist_basic")
    tree = _tree(base / "powercap")
    with tree.running():
        proc = _torchrun("basic", base, _env(tree), timeout=90)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return _load(base, 0, proc), _load(base, 1, proc)


def test_containers_with_their_own_hostnames_and_a_skewed_clock(tmp_path: Path) -> None:
    """Two ranks with different hostnames on one kernel share its RAPL package: counted once. Rank 1's wall
    clock is 2.5 s ahead: the 1 s window stays 1 s, with no false "began apart" warning."""
    tree = _tree(tmp_path / "powercap")
    with tree.running():
        proc = _torchrun("containers", tmp_path, _env(tree), timeout=90)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rank in (0, 1):
        m = Measurement.from_dict(_load(tmp_path, rank, proc)["train"])
        dist = m.metadata["distributed"]
        assert m.duration_s == pytest.approx(1.0, abs=0.3)
        assert not any("apart" in w for w in m.warnings), m.warnings
        assert dist["clock_offsets_s"]["1"] == pytest.approx(2.5, abs=0.2)
        assert list(dist["hosts"]) == ["ctr-0"] and dist["hosts"]["ctr-0"]["hostnames"] == ["ctr-0", "ctr-1"]
        assert m.energy_j == pytest.approx((PACKAGE_W + DRAM_W) * m.duration_s, rel=0.15)  # once, not twice


def test_shared_package_is_counted_once_and_every_rank_gets_the_same_total(basic_run: tuple[dict, dict]) -> None:
    r0, r1 = (Measurement.from_dict(r["shared"]) for r in basic_run)
    assert r0.energy_j == r1.energy_j and r0.to_dict() == r1.to_dict()  # every rank gets the job's result
    dist = r0.metadata["distributed"]
    assert dist["world_size"] == 2
    (host,) = dist["hosts"]
    packages = [d for d in r0.domains if d.details["local_key"] == "cpu:package-0"]
    assert [d.key for d in packages] == [f"{host}/rank0/cpu:package-0"]  # one copy, kept by the lowest rank
    assert packages[0].details["shared_by_ranks"] == [0, 1]
    dropped = {d["key"]: d for d in dist["duplicates"]}
    assert dropped[f"{host}/rank1/cpu:package-0"]["kept_as"] == f"{host}/rank0/cpu:package-0"
    assert f"{host}/rank1/cpu:dram-0" in dropped
    # both ranks read the same counter over (nearly) the same window
    assert dropped[f"{host}/rank1/cpu:package-0"]["energy_j"] == pytest.approx(packages[0].energy_j, rel=0.35)
    # the total is one host's power over the window, not two: 25 W, where double counting would give 50 W
    window_s = dist["ranks"][0]["duration_s"]
    assert window_s >= 0.35
    assert r0.energy_j / window_s == pytest.approx(PACKAGE_W + DRAM_W, rel=0.3)
    assert "cpu:package-0:core" not in {d.details["local_key"] for d in r0.domains if d.counted}


def test_per_rank_and_per_host_figures_add_up(basic_run: tuple[dict, dict]) -> None:
    m = Measurement.from_dict(basic_run[0]["shared"])
    dist = m.metadata["distributed"]
    ranks = {r["rank"]: r for r in dist["ranks"]}
    assert set(ranks) == {0, 1}
    assert sum(r["energy_j"] for r in ranks.values()) == pytest.approx(m.energy_j)
    assert sum(h["energy_j"] for h in dist["hosts"].values()) == pytest.approx(m.energy_j)
    assert ranks[1]["energy_j"] == 0.0  # its copies of the shared package and DRAM are counted on rank 0
    assert ranks[1]["measured_energy_j"] > 0  # ...but what it measured itself is kept
    assert {d.device.split("/")[1] for d in m.domains} == {"rank0"}


def test_simulated_hosts_count_each_package_and_sum_carbon_per_region(basic_run: tuple[dict, dict]) -> None:
    m = Measurement.from_dict(basic_run[1]["two_hosts"])
    dist = m.metadata["distributed"]
    assert set(dist["hosts"]) == {"node0", "node1"}
    assert dist["duplicates"] == []  # different hosts share nothing
    assert {d.key for d in m.domains if d.counted} == {
        "node0/rank0/cpu:package-0",
        "node0/rank0/cpu:dram-0",
        "node1/rank1/cpu:package-0",
        "node1/rank1/cpu:dram-0",
    }
    fra, deu = dist["hosts"]["node0"], dist["hosts"]["node1"]
    assert (fra["region"], deu["region"]) == ("FRA", "DEU")
    assert fra["co2e_g"] == pytest.approx(fra["energy_j"] / 3.6e6 * fra["intensity_g_per_kwh"])
    assert deu["intensity_g_per_kwh"] > fra["intensity_g_per_kwh"]
    assert m.carbon is not None and m.carbon.co2e_g == pytest.approx(fra["co2e_g"] + deu["co2e_g"])
    assert m.carbon.region.startswith("mixed")
    assert m.carbon.co2e_g == pytest.approx(m.energy_j / 3.6e6 * m.carbon.intensity_g_per_kwh * m.carbon.pue)


def test_mismatched_windows_and_partial_regions_fail_alike_on_every_rank(basic_run: tuple[dict, dict]) -> None:
    for rank, out in enumerate(basic_run):
        mismatch = out["mismatch"]
        assert mismatch["type"] == "DistributedError"
        assert "ranks ended different windows" in mismatch["message"]
        assert "'rank-0-window' on rank 0; 'rank-1-window' on rank 1" in mismatch["message"]
        assert "\n" not in mismatch["message"] and mismatch["elapsed_s"] < 5
        assert mismatch["local"]["name"] == f"rank-{rank}-window"  # the rank's own figures are kept
        partial = out["partial_region"]
        assert "region/intensity is given on rank 0 but not on rank 1" in partial["message"]
        assert partial["local"] is not None
        # a meter with aggregation off measures its rank alone (rank 0 ran one that rank 1 never saw)
        if rank == 0:
            solo = out["solo"]["metadata"]["distributed"]
            assert solo["aggregated"] is False and solo["rank"] == 0 and solo["world_size"] == 2
            assert [d["key"] for d in out["solo"]["domains"] if d["counted"]] == ["cpu:package-0", "cpu:dram-0"]
        # the group still works after a bad-input error: the next window aggregates
        assert out["after"]["metadata"]["distributed"]["world_size"] == 2


def test_measure_block_and_launcher_environment(basic_run: tuple[dict, dict]) -> None:
    r0, r1 = basic_run
    assert r0["measure"]["metadata"]["distributed"]["world_size"] == 2
    assert r0["measure"]["energy_j"] == r1["measure"]["energy_j"]
    launcher = r0["shared"]["metadata"]["distributed"]["launcher"]
    assert launcher["launcher"] == "torchrun"
    assert (launcher["world_size"], launcher["rank"], launcher["local_rank"]) == (2, 0, 0)
    assert launcher["env"]["TORCHELASTIC_RUN_ID"]
    assert launcher["process_group"] == {"backend": "gloo", "world_size": 2, "rank": 0}
    assert (r1["launcher"]["rank"], r1["launcher"]["local_rank"]) == (1, 1)
    assert r0["agreed"] == r1["agreed"] == 4  # agree(rank + 3): the max over ranks, on every rank


def test_hung_rank_makes_the_other_fail_within_the_timeout_keeping_its_figures(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "powercap")
    started = time.monotonic()
    with tree.running():
        proc = _torchrun("hang", tmp_path, _env(tree, ENERGYBENCH_DIST_TIMEOUT_S="3"), timeout=60)
    assert time.monotonic() - started < 45  # rank 1 sleeps 120 s: nobody waited for it
    assert proc.returncode != 0
    out = _load(tmp_path, 0, proc)
    err = out["timeout"]
    assert err["type"] == "DistributedTimeoutError"
    assert "rank(s) 1 did not reach the end within 3 s" in err["message"]
    assert "ENERGYBENCH_DIST_TIMEOUT_S" in err["message"] and "\n" not in err["message"]
    assert 2.5 < err["elapsed_s"] < 12
    local = Measurement.from_dict(err["local"])
    assert local.name == "train" and local.energy_j > 0  # nothing measured is lost
    assert "kept on the error's .local" in err["message"]
    # later windows do not wait on a broken group again
    assert out["later"]["type"] == "DistributedError" and out["later"]["elapsed_s"] < 1
    assert "earlier aggregation on this rank failed" in out["later"]["message"]
    # dist_on_error="local": the local figures come back with a warning instead of an error
    lenient = out["lenient"]
    assert lenient["energy_j"] > 0 and lenient["metadata"]["distributed"]["aggregated"] is False
    assert lenient["metadata"]["distributed"]["rank"] == 0
    assert any("not aggregated across ranks" in w for w in lenient["warnings"])


def test_crashed_rank_under_a_plain_launcher_fails_the_other_at_once(tmp_path: Path) -> None:
    """Started like srun/mpirun would (no torchrun agent to kill the survivors): the survivor must not hang."""
    tree = _tree(tmp_path / "powercap")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _env(tree, ENERGYBENCH_DIST_TIMEOUT_S="20", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2")
    with tree.running():
        procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "crash", str(tmp_path)],
                env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for rank in range(2)
        ]
        try:
            outputs = [p.communicate(timeout=60)[0] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
    assert procs[1].returncode == 17
    path = tmp_path / "rank0.json"
    assert path.exists(), outputs[0][-3000:]
    err = json.loads(path.read_text())["crash"]
    assert err["type"] == "DistributedTimeoutError"
    assert "rank(s) 1 dropped out" in err["message"]
    assert err["elapsed_s"] < 10  # the lost connection is noticed, not waited out (timeout 20 s)
    assert Measurement.from_dict(err["local"]).energy_j > 0


def test_ddp_scaling_benchmark_runs_both_configurations(tmp_path: Path) -> None:
    """The benchmark script end to end (tiny workload), on the real CPU model both ranks share."""
    script = Path(__file__).parents[2] / "benchmarks" / "ddp_scaling.py"
    env = _env(_tree(tmp_path / "unused"))
    env.pop("ENERGYBENCH_POWERCAP_ROOT")
    cmd = [sys.executable, str(script), "--samples=1024", "--batch=64", "--trials=1", "--warmup-steps=2"]
    cmd += ["--samplers=cpu-model", "--region=FRA", "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    one, two = out["configs"]["1"], out["configs"]["2"]
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["samples_per_trial"] == two["samples_per_trial"] == 1024
    trial = two["trials"][0]
    # the CPU model counts each rank's process, and the machine's idle floor once: rank 1's copy loses it (its
    # whole-server watts hold the RAM, which is reported beside them but not counted)
    assert sorted(key.split("/", 1)[1] for key in trial["domains"]) == [
        "rank0/cpu:server-share",
        "rank1/cpu:server-share",
    ]
    assert trial["duplicates_dropped"] == 1
    assert trial["ranks"]["1"] > 0 and trial["energy_j"] == pytest.approx(sum(trial["domains"].values()))
    assert two["energy_per_sample_j"] == pytest.approx(two["energy_j"] / 1024)
    (row,) = out["comparison"]
    assert row["scaling_efficiency"] == pytest.approx(row["speedup"] / 2)
    assert row["energy_per_sample_ratio"] == pytest.approx(two["energy_per_sample_j"] / one["energy_per_sample_j"])
    assert trial["co2e_g"] > 0 and two["source"] == "estimated"


def test_pytest_energy_fixture_under_torchrun_reports_the_jobs_figures(tmp_path: Path) -> None:
    """pytest run on each rank by torchrun: the fixture's rounds are windows, so they aggregate for free."""
    (tmp_path / "test_energy_ddp.py").write_text((WORKER.parent / "pytest_energy_case.py").read_text())
    tree = _tree(tmp_path / "powercap")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "pytest"]
    cmd += ["-q", "-p", "no:cacheprovider", "test_energy_ddp.py"]
    with tree.running():
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=_env(tree, DIST_OUT=str(tmp_path)), capture_output=True, text=True, timeout=90
        )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [_load(tmp_path, rank, proc) for rank in range(2)]
    assert [len(r["rounds"]) for r in records] == [2, 2]
    for r0, r1 in zip(records[0]["rounds"], records[1]["rounds"], strict=True):
        assert r0["energy_j"] == r1["energy_j"]  # the same job-wide figure on both ranks
        assert {key.split("/", 1)[1] for key in r0["domains"]} == {
            "rank0/cpu:package-0",
            "rank0/cpu:package-0:core",
            "rank0/cpu:dram-0",
            # benchmarks ask for process scope: RAPL stays the machine's (counted once), and each rank's own
            # CPU-time share of it is a separate, uncounted figure (n/a here: no idle floor was given)
            "rank0/cpu:process-share",
            "rank1/cpu:process-share",
        }
        assert r0["energy_j"] / r0["duration_s"] == pytest.approx(PACKAGE_W + DRAM_W, rel=0.3)  # not 50 W
