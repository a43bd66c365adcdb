"""The estimated CPU/RAM model: its arithmetic, its constants, and a real busy loop through psutil."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from energybench.errors import ConfigError
from energybench.samplers import detect_samplers
from energybench.samplers.cpu_model import (
    CCF_DRAM_W_PER_GB,
    CCF_IDLE_W_PER_CPU,
    CCF_MAX_W_PER_CPU,
    CPU_KEY,
    DRAM_KEY,
    CpuModelSampler,
    attribute_by_cpu_time,
    busy_cpu_seconds,
    cpu_energy_j,
    probe,
    resolve_constants,
)

ENV_VARS = (
    "ENERGYBENCH_CPU_IDLE_W",
    "ENERGYBENCH_CPU_MAX_W",
    "ENERGYBENCH_CPU_TDP_W",
    "ENERGYBENCH_CPU_PACKAGES",
    "ENERGYBENCH_CPU_IDLE_FRACTION",
    "ENERGYBENCH_DRAM_W_PER_GB",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class FakeClock:
    """Injected time/busy/memory sources for the pure arithmetic (the busy-loop test uses real psutil)."""

    def __init__(self) -> None:
        self.t, self.busy, self.mem = 100.0, 50.0, 4.0

    def sampler(self, **constants: float) -> CpuModelSampler:
        c = resolve_constants(constants, n_cpu=4)
        return CpuModelSampler(c, clock=lambda: self.t, busy=lambda: self.busy, memory=lambda: self.mem)


def test_cpu_energy_formula() -> None:
    # 4 CPUs, 10 s, 15 CPU-seconds of work: 1 W x 4 x 10 + (3 - 1) x 15
    assert cpu_energy_j(1.0, 3.0, 4, 10.0, 15.0) == pytest.approx(70.0)


def test_counter_is_exact_integral_of_the_linear_model() -> None:
    fake = FakeClock()
    sampler = fake.sampler(cpu_idle_w_per_cpu=1.0, cpu_max_w_per_cpu=3.0, dram_w_per_gb=0.5)
    first = sampler.read()
    assert first == {CPU_KEY: 0.0, DRAM_KEY: 0.0}
    fake.t += 10.0
    fake.busy += 15.0  # one and a half CPUs busy on average
    fake.mem = 8.0  # memory ramps 4 -> 8 GB
    second = sampler.read()
    assert second[CPU_KEY] == pytest.approx(70.0)
    assert second[DRAM_KEY] == pytest.approx(0.5 * (4 + 8) / 2 * 10)  # trapezoid: 30 J
    fake.t += 2.0  # idle 2 s, memory flat at 8 GB
    third = sampler.read()
    assert third[CPU_KEY] - second[CPU_KEY] == pytest.approx(1.0 * 4 * 2)
    assert third[DRAM_KEY] - second[DRAM_KEY] == pytest.approx(0.5 * 8 * 2)


def test_domains_say_estimated_and_name_the_model() -> None:
    sampler = FakeClock().sampler()
    doms = {d.key: d for d in sampler.domains()}
    assert set(doms) == {"cpu:server-share", "cpu:dram"}
    assert all(d.source == "estimated" and d.max_value is None for d in doms.values())
    cpu = doms["cpu:server-share"]
    assert cpu.method == "linear-cpu-time-model"
    assert cpu.details["idle_w_per_cpu"] == CCF_IDLE_W_PER_CPU and cpu.details["max_w_per_cpu"] == CCF_MAX_W_PER_CPU
    assert cpu.details["n_cpu"] == 4 and cpu.details["idle_power_w"] == pytest.approx(4 * CCF_IDLE_W_PER_CPU)
    assert "Cloud Carbon Footprint" in cpu.details["constants_source"]
    assert doms["cpu:dram"].details["w_per_gb"] == CCF_DRAM_W_PER_GB
    assert sampler.metadata()["estimated"] is True


def test_env_overrides_and_options_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYBENCH_CPU_IDLE_W", "2")
    monkeypatch.setenv("ENERGYBENCH_CPU_MAX_W", "12.5")
    monkeypatch.setenv("ENERGYBENCH_DRAM_W_PER_GB", "0.375")
    c = resolve_constants({}, n_cpu=8)
    assert (c.idle_w_per_cpu, c.max_w_per_cpu, c.dram_w_per_gb) == (2.0, 12.5, 0.375)
    assert "$ENERGYBENCH_CPU_MAX_W" in c.source and "Cloud Carbon Footprint" not in c.source
    c = resolve_constants({"cpu_max_w_per_cpu": 20}, n_cpu=8)
    assert (c.idle_w_per_cpu, c.max_w_per_cpu) == (2.0, 20.0)


def test_tdp_per_package_derives_per_cpu_watts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYBENCH_CPU_TDP_W", "100")
    c = resolve_constants({"cpu_packages": 2}, n_cpu=8)
    assert c.max_w_per_cpu == pytest.approx(25.0)  # 100 W x 2 packages / 8 CPUs
    assert c.idle_w_per_cpu == pytest.approx(2.5)  # default idle fraction 0.1
    assert "TDP 100 W x 2 package(s) / 8 CPUs" in c.source
    c = resolve_constants({"cpu_packages": 1, "cpu_idle_fraction": 0.3}, n_cpu=10)
    assert (c.max_w_per_cpu, c.idle_w_per_cpu) == pytest.approx((10.0, 3.0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cpu_max_w_per_cpu": "lots"}, "option cpu_max_w_per_cpu='lots' is not a number"),
        ({"cpu_idle_w_per_cpu": -1}, "must be a finite number >= 0"),
        ({"cpu_idle_w_per_cpu": 5, "cpu_max_w_per_cpu": 2}, "must be > 0 and >= idle 5 W per CPU"),
        ({"cpu_tdp_w": 0}, "must be > 0 watts"),
        ({"cpu_tdp_w": 65, "cpu_idle_fraction": 2}, "must be between 0 and 1"),
        ({"cpu_tdp_w": 65, "cpu_packages": 1.5}, "whole number of CPU packages"),
    ],
)
def test_bad_constants_are_one_line_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_constants(options, n_cpu=4)
    assert message in str(err.value) and "\n" not in str(err.value)
    avail = probe(options)  # probing never raises; the machine can run the model, the input is wrong
    assert avail.available and message in avail.details["config_error"]
    with pytest.raises(ConfigError, match=message):  # so building the samplers stops with that one line
        detect_samplers({"samplers": ["cpu-model"], **options})


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYBENCH_CPU_IDLE_W", "1,5")
    with pytest.raises(ConfigError, match=r"\$ENERGYBENCH_CPU_IDLE_W='1,5' is not a number"):
        resolve_constants({})


def test_attribution_charges_the_dynamic_part_by_cpu_share() -> None:
    # 100 J machine-wide, 40 J idle floor, 60 J dynamic from 30 busy CPU-s; the tree used 10 of them.
    assert attribute_by_cpu_time(100.0, 40.0, 30.0, 10.0) == pytest.approx(20.0)
    assert attribute_by_cpu_time(100.0, 40.0, 30.0, 31.0) == pytest.approx(60.0)  # tick lag: share capped at 1
    assert attribute_by_cpu_time(100.0, 40.0, 0.0, 1.0) == 0.0  # nothing was busy
    assert attribute_by_cpu_time(30.0, 40.0, 5.0, 5.0) == 0.0  # below the floor: nothing dynamic
    assert attribute_by_cpu_time(100.0, 40.0, 30.0, 0.0) == 0.0


def _spin(cpu_seconds: float, wall_cap_s: float, used: list[float]) -> None:
    start, deadline = time.thread_time(), time.monotonic() + wall_cap_s
    while time.thread_time() - start < cpu_seconds and time.monotonic() < deadline:
        pass
    used.append(time.thread_time() - start)


def test_busy_loop_raises_the_estimate_by_its_cpu_time() -> None:
    """Real psutil: ~0.5 CPU-s of spinning adds about (max - idle) x 0.5 J above the idle floor.

    The counter is machine-wide and this machine is shared, so other processes' work can only add to it: the
    check is a lower bound from our own CPU time and an upper bound from the kernel's busy time around it.
    """
    idle_w, max_w = 1.0, 11.0
    c = resolve_constants({"cpu_idle_w_per_cpu": idle_w, "cpu_max_w_per_cpu": max_w})
    sampler = CpuModelSampler(c)
    proc = psutil.Process()
    busy_before, t_before = busy_cpu_seconds(), time.monotonic()
    cpu_before = sum(proc.cpu_times()[:2])
    t_inner0 = time.monotonic()
    r0 = sampler.read()
    used: list[float] = []
    worker = threading.Thread(target=_spin, args=(0.5, 5.0, used))
    worker.start()
    worker.join()
    r1 = sampler.read()
    t_inner1 = time.monotonic()
    own_cpu = sum(proc.cpu_times()[:2]) - cpu_before
    busy_after, t_after = busy_cpu_seconds(), time.monotonic()
    assert used[0] > 0.3, "the spinning thread got too little CPU to test anything"

    energy = r1[CPU_KEY] - r0[CPU_KEY]
    floor = idle_w * c.n_cpu
    dynamic_lower = energy - floor * (t_inner1 - t_inner0)  # elapsed between reads is within the inner bracket
    assert dynamic_lower >= (max_w - idle_w) * (own_cpu - 0.05)  # at least our own work (tick tolerance)
    assert energy <= floor * (t_after - t_before) + (max_w - idle_w) * (busy_after - busy_before) + 1e-9
    # DRAM: used memory x coefficient x elapsed, within what memory can be on this machine
    dram = r1[DRAM_KEY] - r0[DRAM_KEY]
    total_gb = psutil.virtual_memory().total / 1e9
    assert 0 < dram <= c.dram_w_per_gb * total_gb * (t_after - t_before)


def test_registry_uses_the_model_when_nothing_measures(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ENERGYBENCH_POWERCAP_ROOT", str(tmp_path / "no-powercap"))
    (sampler,) = detect_samplers({"samplers": ["cpu-model"], "cpu_max_w_per_cpu": 4.0})
    assert sampler.name == "cpu-model" and sampler.kind == "counter"
    assert sampler.metadata()["max_w_per_cpu"] == 4.0
    assert probe({}).available and probe({}).source == "estimated"


def test_process_scope_ignores_other_processes_work():
    """A neighbour's busy loop moves the machine-scope estimate, not the process-scope one.

    The neighbour is no descendant of ours (its parent exits at once, so it is re-parented): work of our own
    child processes is ours and counts (``test_process_scope_counts_live_children_in_their_window``)."""
    import subprocess
    import sys
    import time as _time

    from energybench.measuring.meter import Meter
    from energybench.samplers.cpu_model import create

    machine = Meter(create({"cpu_scope": "machine"}))
    process = Meter(create({"cpu_scope": "process"}))
    spin = "import time\nt=time.time()\nwhile time.time()-t<0.8: pass"
    launcher = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {spin!r}])"
    subprocess.run([sys.executable, "-c", launcher], check=True)  # returns at once, leaving the orphan spinning
    machine.begin("w")
    process.begin("w")
    _time.sleep(0.6)
    p = process.end("w")
    m = machine.end("w")
    floor = p.domains[0].details["idle_power_w"] * p.duration_s
    max_extra = p.domains[0].details["max_w_per_cpu"] - p.domains[0].details["idle_w_per_cpu"]
    p_cpu = next(d.energy_j for d in p.domains if d.key == CPU_KEY)
    m_cpu = next(d.energy_j for d in m.domains if d.key == CPU_KEY)
    assert p.domains[0].details["scope"] == "process"
    assert p_cpu < floor + 0.05 * max_extra  # sleeping: at most a few hundredths of a CPU-second of our own
    assert m_cpu > floor + 0.3 * max_extra  # the neighbour's ~0.6 CPU-s shows machine-wide


def test_unknown_scope_is_a_config_error():
    import pytest as _pytest

    from energybench.errors import ConfigError
    from energybench.samplers.cpu_model import create

    with _pytest.raises(ConfigError, match="scope 'galaxy'"):
        create({"cpu_scope": "galaxy"})


def test_fast_proc_readers_agree_with_psutil():
    """The /proc fast paths must read exactly what psutil reads (they only skip its full parse)."""
    import psutil as _psutil
    import pytest as _pytest

    from energybench.samplers.cpu_model import _BUSY_FIELDS, busy_cpu_seconds, used_memory_gb

    t = _psutil.cpu_times()
    assert busy_cpu_seconds() == _pytest.approx(sum(getattr(t, n, 0.0) for n in _BUSY_FIELDS), abs=0.05)
    vm = _psutil.virtual_memory()
    assert used_memory_gb() == _pytest.approx((vm.total - vm.available) / 1e9, rel=0.02)


def test_whole_server_watts_are_a_server_share_that_holds_the_memory() -> None:
    """CCF's per-vCPU watts are SPECpower's whole server at the wall: the figure is named a share of the server
    and RAM, already inside it, is reported but never added; a TDP covers the packages alone, so RAM is added."""
    from energybench.measuring.meter import Meter

    fake = FakeClock()
    per_vcpu = fake.sampler()
    doms = {d.key: d for d in per_vcpu.domains()}
    assert doms["cpu:server-share"].counted and not doms["cpu:dram"].counted
    assert "inside cpu:server-share" in doms["cpu:dram"].details["role"]
    with Meter([per_vcpu], hooks=[]) as meter, meter.window("w") as w:
        fake.t += 10.0
        fake.busy += 5.0
    m = w.result
    assert m is not None and m.energy_j == pytest.approx(m.energy_by_domain()["cpu:server-share"])
    assert m.energy_by_domain()["cpu:dram"] > 0  # reported beside it
    tdp = {d.key: d for d in fake.sampler(cpu_tdp_w=125.0, cpu_packages=1).domains()}
    assert set(tdp) == {"cpu:package", "cpu:dram"} and all(d.counted for d in tdp.values())
    assert probe({"cpu_tdp_w": 125.0, "cpu_packages": 1}).domains == ("cpu:package", "cpu:dram")
