"""The noise guard's scope: busy time over the CPUs this process may use, its own live children as its own
work, and the load a run was measured under stated in words."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from energybench.measuring import noise
from energybench.samplers.cpu_time import CLOCK_TICKS, ProcessTreeClock

HOST_CPUS = 64


def _stat(busy_s: dict[int, float], steal_s: float = 0.0) -> str:
    """A /proc/stat with HOST_CPUS cpuN lines: each CPU's user time from ``busy_s`` (seconds), idle otherwise."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    for cpu in range(HOST_CPUS):
        user = int(busy_s.get(cpu, 0.0) * CLOCK_TICKS)
        idle = 10_000_000
        lines.append(f"cpu{cpu} {user} 0 0 {idle} 0 0 0 {int(steal_s * CLOCK_TICKS)} 0 0")
    return "\n".join(lines) + "\nintr 0\n"


def test_twenty_busy_cpus_elsewhere_on_a_64_cpu_host_are_not_our_neighbours(tmp_path: Path, monkeypatch):
    """A process allowed CPUs 0-3 of 64 while CPUs 4-23 run flat out: its window sees no neighbour and no
    steal, and a pair of such rounds stands (the old guard divided host-wide busy time by our 4 CPUs)."""
    monkeypatch.setenv("ENERGYBENCH_CGROUP_ROOT", str(tmp_path / "no-cgroups"))  # no cpuset narrows CPUs 0-3
    stat = tmp_path / "stat"
    probe = noise.Probe(stat=stat, pressure=tmp_path / "no-psi", affinity=[0, 1, 2, 3])
    assert probe.count == 4
    busy = {cpu: 1000.0 for cpu in range(4, 24)}
    stat.write_text(_stat(busy))
    start = probe.snapshot()
    stat.write_text(_stat({cpu: v + 2.0 for cpu, v in busy.items()}))  # 20 CPUs busy for the 2 s elsewhere
    end = noise.Snapshot(start.t + 2.0, *noise.cpu_ticks(probe.cpus, stat), start.own_s, None, None)
    load = noise.window_load(start, end, probe.count)
    assert load["other_cpus"] == 0.0 and load["busy_fraction"] == 0.0 and load["steal_fraction"] == 0.0
    assert noise.pair_flags(load, load) == ()
    ours = noise.window_load(start, noise.Snapshot(start.t + 2.0, start.busy_s + 4.0, start.steal_s, start.own_s,
                                                   None, None), probe.count)
    assert ours["other_cpus"] == 2.0  # two of *our* CPUs busy with someone else's work: that is a neighbour


def test_steal_is_a_share_of_our_cpus_time_not_the_hosts(tmp_path: Path):
    stat = tmp_path / "stat"
    stat.write_text(_stat({}, steal_s=10.0))
    before = noise.cpu_ticks([0, 1, 2, 3], stat)
    stat.write_text(_stat({}, steal_s=10.5))  # every CPU lost 0.5 s of 1 s to the hypervisor
    after = noise.cpu_ticks([0, 1, 2, 3], stat)
    load = noise.window_load(noise.Snapshot(0.0, before[0], before[1], 0.0, None, None),
                             noise.Snapshot(1.0, after[0], after[1], 0.0, None, None), 4)
    assert abs(load["steal_fraction"] - 0.5) < 1e-9


def test_a_live_child_is_our_work_not_a_neighbour():
    """A DataLoader-like worker busy inside the window, still alive at its end: its CPU time is this process's
    (counted from /proc/<pid>/stat while it runs), not a neighbour's."""
    child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + 30\n"
                              "while time.monotonic() < end: pass"])
    try:
        clock = ProcessTreeClock()
        clock.rescan()
        time.sleep(0.3)  # the child is up and spinning
        clock.rescan()
        before = clock()
        time.sleep(0.6)
        clock.rescan()
        after = clock()
        assert child.poll() is None  # alive at the window's end: never reaped into RUSAGE_CHILDREN
        assert after - before >= 0.3, after - before
    finally:
        child.kill()
        child.wait()


def test_the_load_of_a_run_in_words():
    assert noise.describe_condition([]) is None
    quiet = [{"cpus": 2.0, "other_cpus": 0.05}] * 5
    assert noise.describe_condition(quiet).startswith("a quiet machine")
    busy = [{"cpus": 2.0, "other_cpus": x} for x in (0.9, 1.0, 1.1, 1.0, 0.2)]
    assert noise.describe_condition(busy) == "about 1.0 CPU busy elsewhere (of the 2 this process may use)"
