"""RAPL via powercap, against fake sysfs trees (real RAPL hardware cannot exist in CI)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest_powercap import powercap_tree  # noqa: F401  (the shared fixture, exercised below)
from powercap_tree import FakePowercap

from energybench.errors import ConfigError, SamplerError
from energybench.samplers import detect_samplers, powercap
from energybench.samplers.powercap import PowercapSampler, probe, resolve_root


def delta(start: float, end: float, max_value: float | None) -> float:
    """The simplest wrap-aware counter delta: a decrease means exactly one wrap."""
    return end - start if end >= start or max_value is None else end + max_value - start


def accumulate(readings: list[dict[str, float]], key: str, max_value: float | None) -> float:
    return sum(delta(a[key], b[key], max_value) for a, b in zip(readings, readings[1:], strict=False))


@pytest.fixture
def tree(tmp_path: Path) -> FakePowercap:
    fake = FakePowercap(tmp_path / "powercap")
    yield fake
    fake.stop()


def full_server(tree: FakePowercap, max_range_uj: int = 262_143_328_850) -> None:
    """Two sockets with core/uncore/dram, plus a psys zone, as a big client-server hybrid would show."""
    tree.add_package(0, 40.0, core_w=25.0, uncore_w=3.0, dram_w=5.0, max_range_uj=max_range_uj, max_power_w=125)
    tree.add_package(1, 30.0, core_w=20.0, dram_w=4.0, max_range_uj=max_range_uj)
    tree.add_psys(2, 90.0)


def test_domains_keys_overlap_and_provenance(tree: FakePowercap) -> None:
    full_server(tree)
    domains = {d.key: d for d in PowercapSampler(tree.root).domains()}
    assert set(domains) == {
        "cpu:package-0", "cpu:package-0:core", "cpu:package-0:uncore", "cpu:dram-0",
        "cpu:package-1", "cpu:package-1:core", "cpu:dram-1", "cpu:psys",
    }  # fmt: skip
    counted = {k for k, d in domains.items() if d.counted}
    # Packages and DRAM add up; core/uncore live inside the package and psys contains everything.
    assert counted == {"cpu:package-0", "cpu:dram-0", "cpu:package-1", "cpu:dram-1"}
    assert all(d.source == "measured" and d.method == "rapl-powercap" for d in domains.values())
    assert domains["cpu:package-0"].max_value == pytest.approx(262_143.328850)
    # the wrap period is taken at the most the zone can draw: 1.5 x its highest constraint (PL2 headroom)
    assert domains["cpu:package-0"].max_power_w == pytest.approx(187.5)
    assert domains["cpu:package-0"].details["wrap_period_s_at_max_power"] == pytest.approx(262_143.32885 / 187.5)
    assert domains["cpu:dram-1"].details["zone"] == "intel-rapl:1:1"


def test_read_returns_cumulative_joules(tree: FakePowercap) -> None:
    full_server(tree)
    sampler = PowercapSampler(tree.root)
    before = sampler.read()
    tree.advance(2.0)
    after = sampler.read()
    watts = {k: (after[k] - before[k]) / 2.0 for k in after}
    assert watts == pytest.approx(
        {"cpu:package-0": 40, "cpu:package-0:core": 25, "cpu:package-0:uncore": 3, "cpu:dram-0": 5,
         "cpu:package-1": 30, "cpu:package-1:core": 20, "cpu:dram-1": 4, "cpu:psys": 90}
    )  # fmt: skip


def test_single_wrap_between_edges(tree: FakePowercap) -> None:
    max_uj = 50_000_000  # 50 J: 40 W wraps it in 1.25 s
    tree.add_package(0, 40.0, dram_w=5.0, max_range_uj=max_uj, start_uj=45_000_000)
    sampler = PowercapSampler(tree.root)
    doms = {d.key: d for d in sampler.domains()}
    r0 = sampler.read()
    tree.advance(0.5)  # package: 45 J + 20 J -> wraps to 15 J
    r1 = sampler.read()
    assert r1["cpu:package-0"] < r0["cpu:package-0"], "the fake must really wrap inside the window"
    assert delta(r0["cpu:package-0"], r1["cpu:package-0"], doms["cpu:package-0"].max_value) == pytest.approx(20.0)
    assert delta(r0["cpu:dram-0"], r1["cpu:dram-0"], doms["cpu:dram-0"].max_value) == pytest.approx(2.5)


def test_many_wraps_need_polling(tree: FakePowercap) -> None:
    tree.add_package(0, 40.0, max_range_uj=10_000_000)  # 10 J: a wrap every 0.25 s
    sampler = PowercapSampler(tree.root)
    max_value = sampler.domains()[0].max_value
    readings = [sampler.read()]
    for _ in range(20):  # 2 s in 0.1 s polls: 8 wraps, at most one per poll
        tree.advance(0.1)
        readings.append(sampler.read())
    assert accumulate(readings, "cpu:package-0", max_value) == pytest.approx(80.0)
    # Edges alone cannot see the 8 wraps: this is why the meter polls counters that have max_value.
    assert accumulate([readings[0], readings[-1]], "cpu:package-0", max_value) < 80.0 - 5


def test_writer_thread_truth_within_half_percent_with_wrap(tree: FakePowercap) -> None:
    """Known power on the wall clock, a wrap mid-window: sampler + delta math match what the fake reported."""
    tree.add_package(0, 40.0, dram_w=5.0, max_range_uj=50_000_000, start_uj=40_000_000)  # wraps after 0.25 s
    sampler = PowercapSampler(tree.root)
    doms = {d.key: d for d in sampler.domains()}
    with tree.running(tick_s=0.002):
        time.sleep(0.02)
        with tree.frozen():
            readings = [sampler.read()]
            truth0 = {
                k: tree.total_j(z) for k, z in (("cpu:package-0", "intel-rapl:0"), ("cpu:dram-0", "intel-rapl:0:0"))
            }
            t0 = time.monotonic()
        for _ in range(12):
            time.sleep(0.05)
            readings.append(sampler.read())
        with tree.frozen():
            readings.append(sampler.read())
            truth1 = {
                k: tree.total_j(z) for k, z in (("cpu:package-0", "intel-rapl:0"), ("cpu:dram-0", "intel-rapl:0:0"))
            }
            t1 = time.monotonic()
    packages = [r["cpu:package-0"] for r in readings]
    assert any(b < a for a, b in zip(packages, packages[1:], strict=False)), "no wrap happened in the window"
    for key, watts in (("cpu:package-0", 40.0), ("cpu:dram-0", 5.0)):
        measured = accumulate(readings, key, doms[key].max_value)
        truth = truth1[key] - truth0[key]
        assert measured == pytest.approx(truth, rel=0.005)
        # and the fake really ran at the stated power on the wall clock (loose: ticks lag under load)
        assert truth == pytest.approx(watts * (t1 - t0), rel=0.1)
        assert doms[key].source == "measured"


def test_psys_only_machine_counts_psys(tree: FakePowercap) -> None:
    tree.add_psys(0, 15.0)
    (dom,) = PowercapSampler(tree.root).domains()
    assert (dom.key, dom.counted) == ("cpu:psys", True)


def test_amd_control_type_and_mmio_duplicate_skipped(tmp_path: Path) -> None:
    amd = FakePowercap(tmp_path / "amd", control_type="amd-rapl")
    amd.add_package(0, 50.0, core_w=30.0)
    mmio = amd.root / "intel-rapl-mmio:0"  # the same package counter through MMIO: must not be added
    mmio.mkdir()
    (mmio / "name").write_text("package-0\n")
    (mmio / "energy_uj").write_text("123\n")
    keys = {d.key: d.counted for d in PowercapSampler(amd.root).domains()}
    assert keys == {"cpu:package-0": True, "cpu:package-0:core": False}


def test_nested_devices_layout_with_class_symlinks_counts_each_zone_once(tmp_path: Path) -> None:
    """/sys/devices/virtual/powercap nests zones; /sys/class/powercap links to them flat. Either root works."""
    tree = FakePowercap(tmp_path / "devices")
    tree.add_zone("intel-rapl/intel-rapl:0", "package-0", power_w=40.0)
    tree.add_zone("intel-rapl/intel-rapl:0/intel-rapl:0:0", "dram", power_w=5.0)
    cls = tmp_path / "class"
    cls.mkdir()
    os.symlink(tree.root / "intel-rapl/intel-rapl:0", cls / "intel-rapl:0")
    os.symlink(tree.root / "intel-rapl/intel-rapl:0/intel-rapl:0:0", cls / "intel-rapl:0:0")
    for root in (tree.root, cls):
        sampler = PowercapSampler(root)
        assert sorted(d.key for d in sampler.domains()) == ["cpu:dram-0", "cpu:package-0"]
        r0 = sampler.read()
        tree.advance(1.0)
        r1 = sampler.read()
        assert r1["cpu:package-0"] - r0["cpu:package-0"] == pytest.approx(40.0)


def test_root_from_option_then_env_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENERGYBENCH_POWERCAP_ROOT", raising=False)
    assert resolve_root({}) == Path("/sys/class/powercap")
    monkeypatch.setenv("ENERGYBENCH_POWERCAP_ROOT", str(tmp_path / "env"))
    assert resolve_root({}) == tmp_path / "env"
    assert resolve_root({"powercap_root": str(tmp_path / "opt")}) == tmp_path / "opt"


def test_probe_reasons(tmp_path: Path) -> None:
    missing = probe({"powercap_root": str(tmp_path / "nope")})
    assert not missing.available and missing.reason == f"no {tmp_path / 'nope'}"
    (tmp_path / "empty").mkdir()
    empty = probe({"powercap_root": str(tmp_path / "empty")})
    assert not empty.available and empty.reason == f"no RAPL zones under {tmp_path / 'empty'}"


def test_probe_available_lists_domains(tree: FakePowercap) -> None:
    full_server(tree)
    avail = probe({"powercap_root": str(tree.root)})
    assert avail.available and avail.source == "measured"
    assert "cpu:package-1" in avail.domains and "cpu:psys" in avail.domains


def test_permission_denied_is_a_stated_reason_and_a_sampler_error(
    tree: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.add_package(0, 40.0, dram_w=5.0)
    sampler = PowercapSampler(tree.root)  # built while readable; access is revoked afterwards
    denied = tree.zones["intel-rapl:0:0"].energy_path
    real_read = powercap._read_text

    def read_text(path: Path) -> str:  # what the kernel answers a non-root reader since Linux 5.10
        if path == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(powercap, "_read_text", read_text)
    expected = (
        f"permission denied on {denied}: run as root or grant read access "
        f"(sudo chmod a+r {tree.root}/*/energy_uj; root-only since Linux 5.10)"
    )
    avail = probe({"powercap_root": str(tree.root)})
    assert not avail.available and avail.reason == expected
    with pytest.raises(SamplerError) as err:
        sampler.read()
    assert str(err.value) == expected and "\n" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_permission_denied_for_real_when_not_root(tree: FakePowercap) -> None:
    tree.add_package(0, 40.0)
    tree.zones["intel-rapl:0"].energy_path.chmod(0)
    assert probe({"powercap_root": str(tree.root)}).reason.startswith("permission denied on ")


def test_unreadable_counter_at_read_time(tree: FakePowercap) -> None:
    tree.add_package(0, 40.0, dram_w=5.0)
    sampler = PowercapSampler(tree.root)
    tree.make_unreadable("intel-rapl:0")
    with pytest.raises(SamplerError, match=r"cannot read RAPL counter .*intel-rapl:0/energy_uj: Is a directory"):
        sampler.read()
    assert "cannot read RAPL counter" in probe({"powercap_root": str(tree.root)}).reason


def test_garbage_counter_is_a_clear_error(tree: FakePowercap) -> None:
    tree.add_package(0, 40.0)
    sampler = PowercapSampler(tree.root)
    tree.zones["intel-rapl:0"].energy_path.write_text("banana\n")
    with pytest.raises(SamplerError, match="holds 'banana', not microjoules"):
        sampler.read()


def test_detection_prefers_rapl_over_the_cpu_estimate(
    powercap_tree: FakePowercap,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = powercap_tree  # the fixture already points ENERGYBENCH_POWERCAP_ROOT at it
    tree.add_package(0, 40.0, dram_w=5.0)
    chosen = detect_samplers({"samplers": ["powercap", "cpu-model"]})
    assert [s.name for s in chosen] == ["powercap"]  # cpu is covered: no estimate doubles the measurement
    monkeypatch.setenv("ENERGYBENCH_POWERCAP_ROOT", str(tree.root / "absent"))
    assert [s.name for s in detect_samplers({})] == ["cpu-model"]  # nothing asked for by name: fall back
    with pytest.raises(ConfigError, match="--sampler powercap cannot read here: no .*absent"):
        detect_samplers({"samplers": ["powercap", "cpu-model"]})  # asked for by name: must read


def test_metadata_names_root_and_zones(tree: FakePowercap) -> None:
    full_server(tree, max_range_uj=1_000_000_000)
    meta = PowercapSampler(tree.root).metadata()
    assert meta["root"] == str(tree.root)
    zones = {z["zone"]: z for z in meta["zones"]}
    assert zones["intel-rapl:0:2"]["domain"] == "cpu:dram-0"
    assert zones["intel-rapl:0"]["max_energy_range_uj"] == 1_000_000_000


def test_multi_die_packages_are_each_counted(tree: FakePowercap) -> None:
    """Multi-die parts name zones package-N-die-D: every die is its own counter and must be summed."""
    tree.add_zone("intel-rapl:0", "package-0-die-0", power_w=30.0)
    tree.add_zone("intel-rapl:0:0", "dram", power_w=3.0)
    tree.add_zone("intel-rapl:1", "package-0-die-1", power_w=31.0)
    keys = {d.key: d.counted for d in PowercapSampler(tree.root).domains()}
    assert keys == {"cpu:package-0-die-0": True, "cpu:dram-0-die-0": True, "cpu:package-0-die-1": True}
