"""Whose CPU time the CPU model counts, and on how many CPUs: live child processes in the window in which they
ran (real subprocess trees and a real multiprocessing pool), and the CPUs this process may use (real CPU
affinity in a subprocess; cgroup v1/v2 quota files in a synthetic tree)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from energybench.measurement import Measurement
from energybench.measuring.meter import Meter
from energybench.samplers import cpu_model

SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass"


def busy_cpu_s(m: Measurement) -> float:
    """The CPU-seconds the model charged in a window: (energy - floor) / (max_w - idle_w)."""
    cpu = next(d for d in m.domains if d.key == cpu_model.CPU_KEY)
    d = cpu.details
    return (cpu.energy_j - d["idle_power_w"] * m.duration_s) / (d["max_w_per_cpu"] - d["idle_w_per_cpu"])


def wait_exited_unreaped(pid: int) -> None:
    """Block until the child has exited, leaving it a zombie (``WNOWAIT``): nobody has reaped it yet."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def spin(seconds: float) -> float:
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass
    return seconds


def test_a_child_is_charged_to_the_window_it_ran_in_not_the_one_that_reaps_it() -> None:
    meter = Meter(cpu_model.create({"cpu_scope": "process"}), counter_interval=3600)
    meter.begin("work")
    child = subprocess.Popen([sys.executable, "-c", SPIN.format(s=0.5)])
    wait_exited_unreaped(child.pid)
    child_cpu = sum(psutil.Process(child.pid).cpu_times()[:2])  # what the kernel says it used
    work = meter.end("work")
    meter.begin("cleanup")
    child.wait()  # reaped here: its CPU time moves to RUSAGE_CHILDREN now
    cleanup = meter.end("cleanup")
    meter.close()
    assert child_cpu >= 0.45
    assert busy_cpu_s(work) >= child_cpu - 0.02  # the child's work is in the window in which it ran
    assert busy_cpu_s(cleanup) < 0.05  # and the clean-up window is not charged for it a second time


def test_grandchildren_count_while_alive_and_after_their_parent_reaped_them() -> None:
    meter = Meter(cpu_model.create({"cpu_scope": "process"}), counter_interval=3600)
    launcher = (f"import subprocess, sys; g = subprocess.Popen([sys.executable, '-c', {SPIN.format(s=0.4)!r}]); "
                "print(g.pid, flush=True); g.wait(); sys.stdin.read()")
    meter.begin("work")
    child = subprocess.Popen([sys.executable, "-c", launcher], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.02)  # the grandchild spins; then its parent reaps it (its time moves to the parent)
    time.sleep(0.1)
    work = meter.end("work")
    meter.begin("cleanup")
    child.communicate(b"")
    cleanup = meter.end("cleanup")
    meter.close()
    assert busy_cpu_s(work) >= 0.38
    assert busy_cpu_s(cleanup) < 0.05


def test_a_pools_workers_are_charged_while_the_pool_is_open() -> None:
    """DataLoader workers and multiprocessing pools live across windows: their work shows where it ran."""
    meter = Meter(cpu_model.create({"cpu_scope": "process"}), counter_interval=3600)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(spin, [0.0, 0.0])  # workers up before the window
        meter.begin("work")
        assert pool.map(spin, [0.3, 0.3]) == [0.3, 0.3]
        work = meter.end("work")
        meter.begin("idle")
        time.sleep(0.2)
        idle = meter.end("idle")
    meter.close()
    assert busy_cpu_s(work) >= 0.55
    assert busy_cpu_s(idle) < 0.05


# ------------------------------------------------------------------------------------------ the CPUs we may use
def test_cpu_affinity_sets_the_floor_and_the_busy_time_to_the_allowed_cpus() -> None:
    """Under ``taskset -c 0`` (here: sched_setaffinity in a real subprocess) the idle floor is one CPU."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs to restrict to 1")
    code = (
        "import json, os; os.sched_setaffinity(0, {0})\n"
        "from energybench.samplers import cpu_model\n"
        "(s,) = cpu_model.create({'cpu_scope': 'machine'})\n"
        "d = s.domains()[0].details\n"
        "print(json.dumps({k: d[k] for k in ('n_cpu', 'n_cpu_basis', 'idle_power_w', 'busy_basis', 'logical_cpus')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    got = json.loads(out.stdout)
    logical = psutil.cpu_count(logical=True)
    assert got["n_cpu"] == 1 and got["logical_cpus"] == logical
    assert got["n_cpu_basis"] == f"CPU affinity: 1 of {logical} logical CPUs"
    assert got["idle_power_w"] == pytest.approx(cpu_model.CCF_IDLE_W_PER_CPU)
    assert got["busy_basis"] == "busy time of CPUs 0 (/proc/stat)"


def cgroup_tree(tmp_path: Path, proc_lines: str, files: dict[str, str]) -> tuple[Path, Path]:
    proc_self, root = tmp_path / "proc_self", tmp_path / "cgroup"
    proc_self.mkdir()
    (proc_self / "cgroup").write_text(proc_lines)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    root.mkdir(exist_ok=True)
    return proc_self, root


def test_a_cgroup_v2_quota_caps_a_small_container_on_a_big_host(tmp_path: Path) -> None:
    """A 1.5-CPU quota on a 192-thread host: the floor is 1.5 CPUs (1.1 W), not 192 (142 W)."""
    from energybench.samplers.cpu_time import cpu_share, machine_busy_reader

    proc_self, root = cgroup_tree(tmp_path, "0::/kubepods/pod1/ctr\n", {
        "kubepods/cpu.max": "max 100000\n",
        "kubepods/pod1/cpu.max": "400000 100000\n",
        "kubepods/pod1/ctr/cpu.max": "150000 100000\n",
        "kubepods/pod1/ctr/cpu.stat": "usage_usec 2500000\nuser_usec 2000000\n",
    })
    share = cpu_share(proc_self=proc_self, cgroup_root=root, affinity=range(192), logical_cpus=192)
    assert share.cpus == 1.5 and share.quota_cpus == 1.5 and share.cgroup_version == 2
    assert share.basis == f"cgroup v2 CPU quota of 1.5 CPUs ({root / 'kubepods/pod1/ctr'})"
    constants = cpu_model.resolve_constants({}, share=share)
    assert constants.idle_power_w == pytest.approx(1.5 * 0.74) and constants.logical_cpus == 192
    busy, basis = machine_busy_reader(share)
    assert busy() == pytest.approx(2.5) and basis.startswith("CPU usage of cgroup")
    # a parent's tighter quota binds too
    (root / "kubepods/pod1/cpu.max").write_text("100000 100000\n")
    assert cpu_share(proc_self=proc_self, cgroup_root=root, affinity=range(192), logical_cpus=192).cpus == 1.0


@pytest.mark.parametrize("visible", [True, False])
def test_a_cgroup_v1_quota_is_read_where_the_container_sees_it(tmp_path: Path, visible: bool) -> None:
    """v1: ``cpu.cfs_quota_us / cpu.cfs_period_us``; inside a container the host's path in /proc/self/cgroup
    is not under the mount, whose root is then the container's own cgroup."""
    from energybench.samplers.cpu_time import cpu_share, machine_busy_reader

    where = "cpu,cpuacct/docker/abc" if visible else "cpu,cpuacct"
    proc_self, root = cgroup_tree(tmp_path, "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n", {
        f"{where}/cpu.cfs_quota_us": "50000\n",
        f"{where}/cpu.cfs_period_us": "100000\n",
        f"{where}/cpuacct.usage": "3000000000\n",
        "cpu,cpuacct/cpu.cfs_quota_us" if visible else "unused": "-1\n",
    })
    share = cpu_share(proc_self=proc_self, cgroup_root=root, affinity=range(64), logical_cpus=64)
    assert share.cpus == 0.5 and share.cgroup_version == 1 and share.cgroup == str(root / where)
    busy, _ = machine_busy_reader(share)
    assert busy() == pytest.approx(3.0)


def test_no_limit_means_every_logical_cpu(tmp_path: Path) -> None:
    from energybench.samplers.cpu_time import cpu_share, machine_busy_reader

    proc_self, root = cgroup_tree(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    share = cpu_share(proc_self=proc_self, cgroup_root=root, affinity=range(8), logical_cpus=8)
    assert share.cpus == 8 and share.basis == "all 8 logical CPUs (no affinity or quota limit)"
    assert machine_busy_reader(share)[1] == "busy time of every CPU (/proc/stat)"


def test_the_cpu_share_is_recorded_with_every_result() -> None:
    from energybench.samplers.cpu_time import cpu_share

    with Meter(cpu_model.create({})) as meter, meter.window("w") as w:
        pass
    assert w.result is not None
    cpu = next(d for d in w.result.domains if d.key == cpu_model.CPU_KEY)
    assert cpu.details["n_cpu"] == cpu_share().cpus and cpu.details["n_cpu_basis"] == cpu_share().basis
    assert w.result.metadata["samplers"]["cpu-model"]["cpu_share"]["logical_cpus"] == psutil.cpu_count()
