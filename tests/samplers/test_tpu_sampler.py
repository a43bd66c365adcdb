"""The TPU sampler through tpu-info's real gRPC protocol on loopback, and through an injected libtpu SDK.

No TPU exists here. The gRPC server below implements libtpu's ``RuntimeMetricService`` with the message types
``tpu-info`` ships; its responses are synthetic (in the shapes ``tpu_info.metrics.get_chip_usage`` parses),
not recorded from a TPU. The real ``tpu-info`` client is run against the same server, so the server cannot
drift from what the real client expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import pytest

from energybench.errors import ConfigError, SamplerError
from energybench.samplers import tpu
from energybench.samplers.tpu_power import TABLE, normalize_generation

grpc = pytest.importorskip("grpc")
pytest.importorskip("tpu_info")
from tpu_info import device as tpu_device  # noqa: E402
from tpu_info import metrics as tpu_metrics  # noqa: E402
from tpu_info.proto import tpu_metric_service_pb2 as pb  # noqa: E402
from tpu_info.proto import tpu_metric_service_pb2_grpc as pb_grpc  # noqa: E402

GIB = 1024**3


def _gauge_metrics(values: list[float | int], as_int: bool) -> list[pb.Metric]:
    out = []
    for device_id, v in enumerate(values):
        gauge = pb.Gauge(as_int=int(v)) if as_int else pb.Gauge(as_double=float(v))
        out.append(
            pb.Metric(attribute=pb.Attribute(key="device-id", value=pb.AttrValue(int_attr=device_id)), gauge=gauge)
        )
    return list(reversed(out))  # unsorted on purpose: clients must sort by device id


class FakeRuntime(pb_grpc.RuntimeMetricServiceServicer):
    """libtpu's metrics service for a 4-chip v4 host; ``duty`` can be changed between requests."""

    def __init__(self) -> None:
        self.duty = [50.0, 100.0, 0.0, 25.0]
        self.used = [8 * GIB, 16 * GIB, 0, 4 * GIB]
        self.requests: list[str] = []

    def GetRuntimeMetric(self, request, context):  # noqa: N802 - gRPC method name
        self.requests.append(request.metric_name)
        names = tpu_metrics.MetricName
        if request.metric_name == names.DUTY_CYCLE_PCT.value:
            metrics = _gauge_metrics(self.duty, as_int=False)
        elif request.metric_name == names.MEMORY_USAGE.value:
            metrics = _gauge_metrics(self.used, as_int=True)
        elif request.metric_name == names.TOTAL_MEMORY.value:
            metrics = _gauge_metrics([32 * GIB] * len(self.duty), as_int=True)
        else:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown metric")
        return pb.MetricResponse(metric=pb.TPUMetric(name=request.metric_name, metrics=metrics))


@pytest.fixture
def runtime() -> Iterator[tuple[FakeRuntime, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = FakeRuntime()
    pb_grpc.add_RuntimeMetricServiceServicer_to_server(servicer, server)
    port = server.add_secure_port("localhost:0", grpc.local_server_credentials())
    server.start()
    yield servicer, f"localhost:{port}"
    server.stop(None)


@pytest.fixture
def pci_v4(tmp_path: Path) -> Path:
    """A /sys/bus/pci/devices tree with four TPU v4 chips and one unrelated device."""
    for i in range(4):
        dev = tmp_path / f"0000:00:0{i + 4}.0"
        dev.mkdir()
        (dev / "vendor").write_text("0x1ae0\n")
        (dev / "device").write_text("0x005e\n")
    other = tmp_path / "0000:00:01.0"
    other.mkdir()
    (other / "vendor").write_text("0x8086\n")
    (other / "device").write_text("0x1234\n")
    return tmp_path


def test_fake_runtime_speaks_what_the_real_tpu_info_client_expects(runtime: tuple[FakeRuntime, str]) -> None:
    _servicer, addr = runtime
    usage = tpu_metrics.get_chip_usage(tpu_device.TpuChip.V4, addr=addr)
    assert [u.duty_cycle_pct for u in usage] == [50.0, 100.0, 0.0, 25.0]
    assert [u.memory_usage for u in usage] == [8 * GIB, 16 * GIB, 0, 4 * GIB]


def test_grpc_client_matches_the_real_client(runtime: tuple[FakeRuntime, str]) -> None:
    _servicer, addr = runtime
    client = tpu.TpuInfoGrpcClient(addr)
    ours = client.usage()
    theirs = tpu_metrics.get_chip_usage(tpu_device.TpuChip.V4, addr=addr)
    assert [(c.duty_cycle_pct, c.hbm_used_bytes, c.hbm_total_bytes) for c in ours] == [
        (u.duty_cycle_pct, u.memory_usage, u.total_memory) for u in theirs
    ]
    client.close()


def test_sampler_estimates_watts_from_duty_cycle_over_grpc(runtime: tuple[FakeRuntime, str], pci_v4: Path) -> None:
    servicer, addr = runtime
    opts = {"tpu_metrics_addr": addr, "tpu_pci_root": str(pci_v4), "tpu_source": "grpc", "environ": {}}
    avail = tpu.FACTORY.probe(opts)
    assert avail.available and avail.source == "estimated"
    assert avail.domains == ("tpu:0", "tpu:1", "tpu:2", "tpu:3")
    assert avail.details["generation"] == "v4" and avail.details["chip_watts"] == 192.0
    (sampler,) = tpu.FACTORY.create(opts)
    assert sampler.kind == "power"
    domains = sampler.domains()
    assert {d.source for d in domains} == {"estimated"} and {d.method for d in domains} == {tpu.METHOD}
    assert "ISCA 2023" in domains[0].details["chip_watts_source"]
    assert sampler.read() == {"tpu:0": 96.0, "tpu:1": 192.0, "tpu:2": 0.0, "tpu:3": 48.0}
    servicer.duty = [10.0, 10.0, 10.0, 10.0]
    assert sampler.read()["tpu:2"] == pytest.approx(19.2)
    sampler.close()


def test_no_running_workload_is_a_stated_reason(pci_v4: Path) -> None:
    opts = {"tpu_metrics_addr": "localhost:1", "tpu_pci_root": str(pci_v4), "tpu_source": "grpc", "environ": {}}
    avail = tpu.FACTORY.probe(opts)
    assert not avail.available
    assert "unavailable" in avail.reason and "holds the TPU" in avail.reason


def test_no_tpu_on_this_machine() -> None:
    avail = tpu.FACTORY.probe({})
    assert not avail.available and avail.reason.startswith("no TPU chip found")


class FakeMonitoring:
    """``libtpu.sdk.tpumonitoring``'s call shapes: ``get_metric(name).data()`` returns strings."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self.data = data

    def list_supported_metrics(self) -> list[str]:
        return list(self.data)

    def get_metric(self, name: str) -> object:
        values = self.data[name]

        class _Metric:
            def data(self) -> list[str]:
                return list(values)

            def description(self) -> str:
                return name

        return _Metric()


def test_libtpu_sdk_client_reads_duty_cycle_and_hbm() -> None:
    client = tpu.LibtpuSdkClient(
        FakeMonitoring(
            {
                "duty_cycle_pct": ["45.5", "100.0"],
                "hbm_capacity_usage": ["1000", "2000"],
                "hbm_capacity_total": ["16000", "16000"],
            }
        )
    )
    usage = client.usage()
    assert usage == [tpu.ChipUsage(0, 45.5, 1000, 16000), tpu.ChipUsage(1, 100.0, 2000, 16000)]


def test_libtpu_without_duty_cycle_is_a_clear_error() -> None:
    client = tpu.LibtpuSdkClient(FakeMonitoring({"hbm_capacity_usage": ["1"]}))
    with pytest.raises(tpu.TpuMetricsError, match="no duty_cycle_pct"):
        client.usage()


@pytest.mark.parametrize("generation", ["v5litepod-16", "v5p", "v6e-8", "tpu7x"])
def test_generation_without_published_watts_needs_tpu_watts(generation: str) -> None:
    client = tpu.LibtpuSdkClient(FakeMonitoring({"duty_cycle_pct": ["80"]}))
    opts = {"tpu_client": client, "environ": {"TPU_ACCELERATOR_TYPE": generation}}
    avail = tpu.FACTORY.probe(opts)
    assert avail.available and "--tpu-watts" in avail.details["config_error"]
    with pytest.raises(ConfigError) as info:
        tpu.FACTORY.create(opts)
    assert "no published per-chip power figure" in str(info.value) and "\n" not in str(info.value)
    (sampler,) = tpu.FACTORY.create(dict(opts, tpu_watts=200))
    assert sampler.read() == {"tpu:0": pytest.approx(160.0)}
    assert sampler.domains()[0].details["chip_watts_source"] == "user value (--tpu-watts)"


def test_unknown_generation_and_bad_watts_are_config_errors() -> None:
    client = tpu.LibtpuSdkClient(FakeMonitoring({"duty_cycle_pct": ["80"]}))
    with pytest.raises(ConfigError, match="could not tell this TPU's generation"):
        tpu.FACTORY.create({"tpu_client": client, "environ": {}})
    with pytest.raises(ConfigError, match="unknown TPU generation 'v99'"):
        tpu.FACTORY.create({"tpu_client": client, "tpu_generation": "v99"})
    for bad in (0, -5, "300", True):
        with pytest.raises(ConfigError, match="--tpu-watts must be a positive number"):
            tpu.FACTORY.create({"tpu_client": client, "tpu_watts": bad, "tpu_generation": "v4"})


def test_window_stats_and_metadata() -> None:
    t = [0.0]
    mon = FakeMonitoring({"duty_cycle_pct": ["20"], "hbm_capacity_usage": ["100"], "hbm_capacity_total": ["1000"]})
    opts = {"tpu_client": tpu.LibtpuSdkClient(mon), "tpu_generation": "v3", "clock": lambda: t[0]}
    (sampler,) = tpu.FACTORY.create(opts)
    sampler.on_edge()
    assert sampler.read() == {"tpu:0": pytest.approx(90.0)}  # 20% of v3's 450 W TDP
    mon.data["duty_cycle_pct"] = ["60"]
    t[0] = 2.0
    sampler.on_edge()
    sampler.read()
    meta = sampler.metadata()["tpu"]
    assert meta["generation"] == "v3" and meta["method"] == tpu.METHOD
    window = sampler.window_stats(0.0, 2.0)
    assert window["tpu:0"]["duty_cycle_mean_pct"] == pytest.approx(40.0)
    assert window["tpu:0"]["hbm_total_bytes"] == 1000


def test_a_chip_vanishing_raises_a_sampler_error() -> None:
    mon = FakeMonitoring({"duty_cycle_pct": ["20", "30"]})
    (sampler,) = tpu.FACTORY.create({"tpu_client": tpu.LibtpuSdkClient(mon), "tpu_watts": 100.0})
    mon.data["duty_cycle_pct"] = ["20"]
    with pytest.raises(SamplerError, match="reports 1 chip"):
        sampler.read()


def test_power_table_has_sources_and_generation_names_normalise() -> None:
    for entry in TABLE.values():
        assert entry.source and entry.kind
        assert entry.watts is None or entry.watts > 0
    assert normalize_generation("v5litepod-16") == "v5e"
    assert normalize_generation("v4-8") == "v4"
    assert normalize_generation("Trillium") == "v6e"
    assert normalize_generation("v42") is None


def test_pci_detection_reads_generation(pci_v4: Path) -> None:
    assert tpu.pci_chips(pci_v4) == ["v4"] * 4
    assert tpu.pci_chips(pci_v4 / "missing") == []
