"""Energy per layer: the arithmetic on its own, then real torch models under the real profiler and meter."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest
import torch
from sampler_doubles import ClockCounter
from torch import nn

import energybench as eb
from energybench.errors import ConfigError
from energybench.measurement import DomainEnergy, Measurement
from energybench.measuring.layers import (
    MARK,
    OPTIMIZER,
    OUTSIDE,
    ROOT,
    Interval,
    attribute,
    energy_by_layer,
    host_intervals,
    kernel_intervals,
    module_ranges,
    partition,
    profiled_events,
)
from energybench.measuring.meter import Meter
from energybench.samplers.base import BaseSampler, Domain
from energybench.verdicts.layers import choose_depth, layer_table


def test_partition_tiles_the_window_and_the_innermost_interval_owns_each_instant() -> None:
    pieces = partition([Interval(0.1, 0.9, "block", True), Interval(0.2, 0.4, "block.fc", True),
                        Interval(0.5, 0.6, "block.act", True), Interval(0.95, 2.0, "late", True)], 1.0)
    assert pieces[0] == (0.0, 0.1, OUTSIDE) and pieces[-1] == (0.95, 1.0, "late")  # clipped to the window
    assert [p[2] for p in pieces] == [OUTSIDE, "block", "block.fc", "block", "block.act", "block", OUTSIDE, "late"]
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert math.fsum(b - a for a, b, _ in pieces) == pytest.approx(1.0)


def _measurement(duration: float, domains: dict[str, float],
                 timeline: list[tuple[float, dict[str, float]]]) -> Measurement:
    return Measurement(name="w", start_time=0.0, duration_s=duration,
                       domains=tuple(DomainEnergy(k, v, "measured", "test", "test") for k, v in domains.items()),
                       timeline=tuple(timeline))


def test_attribute_spreads_each_domain_by_its_power_timeline_and_the_parts_add_up() -> None:
    # 10 W for the first second, 90 W for the second: a module running only in the second second draws 9x
    m = _measurement(2.0, {"cpu:package-0": 100.0}, [(1.0, {"cpu:package-0": 10.0}), (2.0, {"cpu:package-0": 90.0})])
    host = [Interval(0.0, 0.5, "early", True), Interval(1.5, 2.0, "late", True)]
    profile = attribute(m, host, items=4)
    parts = {x.name: x for x in profile.layers}
    assert profile.parts_j == pytest.approx(profile.energy_j, rel=1e-12) and profile.energy_j == 100.0
    assert parts["late"].energy_j == pytest.approx(9 * parts["early"].energy_j)
    assert parts["early"].energy_j == pytest.approx(5.0) and parts[OUTSIDE].energy_j == pytest.approx(50.0)
    assert parts["early"].calls == 1 and parts[OUTSIDE].calls == 0 and profile.items == 4
    assert profile.resolution_s == pytest.approx(1.0)  # the timeline's segments: 1 s each
    assert parts["early"].below_resolution and parts["late"].below_resolution  # 0.5 s calls < 1 s segments


def test_gpu_domains_follow_kernels_and_cpu_domains_follow_the_host() -> None:
    m = _measurement(1.0, {"cpu:package-0": 10.0, "gpu:0": 300.0},
                     [(1.0, {"cpu:package-0": 10.0, "gpu:0": 300.0})])
    host = [Interval(0.0, 0.9, "fc1", True), Interval(0.9, 1.0, "fc2", True)]
    kernels = [Interval(0.1, 0.2, "fc1"), Interval(0.3, 0.9, "fc2")]  # launched early, run late: async GPU
    profile = attribute(m, host, kernels)
    parts = {x.name: x.energy_j for x in profile.layers}
    assert parts["fc1"] == pytest.approx(9.0 + 30.0) and parts["fc2"] == pytest.approx(1.0 + 180.0)
    assert parts[OUTSIDE] == pytest.approx(90.0)  # GPU time with no kernel running
    assert profile.parts_j == pytest.approx(310.0) and "kernel" in profile.method


def test_kernel_intervals_bill_each_kernel_to_the_module_that_launched_it() -> None:
    """Stand-ins with torch's FunctionEvent fields (no GPU exists here): kernels link to their CPU op by
    correlation id, a backward op's kernel goes to the module whose forward op shares its sequence number."""
    cpu, cuda = SimpleNamespace(name="CPU"), SimpleNamespace(name="CUDA")

    def ev(name: str, start: float, end: float, *, id: int = 0, parent: object = None, seq: int = -1,
           device: object = cpu, linked: int = 0) -> SimpleNamespace:
        return SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end), id=id, cpu_parent=parent,
                               sequence_nr=seq, device_type=device, linked_correlation_id=linked)

    module = ev("energybench.layer::fc1", 0, 100)
    op = ev("aten::addmm", 10, 20, id=7, parent=module, seq=3)
    backward = ev("autograd::engine::evaluate_function: AddmmBackward0", 200, 300, seq=3)
    bop = ev("aten::mm", 210, 220, id=9, parent=backward)
    events = [module, op, backward, bop, ev("gemm_kernel", 50, 80, device=cuda, linked=7),
              ev("gemm_bwd_kernel", 250, 290, device=cuda, linked=9), ev("stray_kernel", 400, 410, device=cuda)]
    out = kernel_intervals(events, origin_us=0.0)
    assert [(i.owner, i.start, i.end) for i in out] == [("fc1", 50e-6, 80e-6), ("fc1", 250e-6, 290e-6),
                                                         (OUTSIDE, 400e-6, 410e-6)]


class Sleepy(nn.Module):
    """A layer that takes a known, long time: sleeping draws the idle power the counter reports."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return x


def test_energy_by_layer_on_a_real_model_adds_up_and_flags_fast_layers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), Sleepy(0.15), nn.Linear(64, 8))
    x = torch.randn(16, 32)

    def profiled(sampler: ClockCounter) -> dict:
        meter = Meter(samplers=[sampler], counter_interval=0.02)
        try:
            with torch.inference_mode():
                return energy_by_layer(model, lambda: model(x), meter=meter, items=16, repeats=2)
        finally:
            meter.close()

    profile = profiled(ClockCounter(watts=50.0))
    parts = {p.name: p for p in profile.layers}
    assert profile.parts_j == pytest.approx(profile.energy_j, rel=1e-9)
    assert profile.energy_j == pytest.approx(50.0 * profile.duration_s, rel=1e-3)  # the counter's own truth
    assert profile.items == 32 and parts["2"].calls == 2 and parts[ROOT].calls == 2
    assert parts["2"].time_s >= 0.3  # two 0.15 s sleeps
    # constant power: every part's share of the energy is its share of the time (up to the jitter between a
    # counter's read and its timestamp, which makes each timeline segment's power a little uneven)
    for p in profile.layers:
        assert p.energy_j / profile.energy_j == pytest.approx(p.time_s / profile.duration_s, abs=0.02)
    assert not model[0]._forward_hooks and not model[0]._forward_pre_hooks  # nothing left attached

    coarse = profiled(ClockCounter(watts=50.0, resolution_s=0.1))  # a counter that updates every 0.1 s
    parts = {p.name: p for p in coarse.layers}
    assert coarse.parts_j == pytest.approx(coarse.energy_j, rel=1e-9)
    assert coarse.resolution_s == pytest.approx(0.1)  # the sampler's update period beats 0.02 s segments
    assert not parts["2"].below_resolution  # 0.15 s a call
    assert parts["0"].below_resolution and parts["3"].below_resolution  # a small Linear: far below 0.1 s a call


class StepCounter(BaseSampler):
    """A counter at 10 W until ``switch()``, then 100 W: the power timeline has a step in it."""

    name = "step-counter"
    kind = "counter"
    resolution_s = 0.0

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.t_switch: float | None = None

    def switch(self) -> None:
        self.t_switch = time.monotonic()

    def domains(self) -> list[Domain]:
        return [Domain("cpu:package-0", "measured", "test-step-counter")]

    def read(self) -> dict[str, float]:
        now = time.monotonic()
        if self.t_switch is None:
            return {"cpu:package-0": 10.0 * (now - self.t0)}
        return {"cpu:package-0": 10.0 * (self.t_switch - self.t0) + 100.0 * (now - self.t_switch)}


def test_a_layer_running_at_high_power_gets_more_than_its_share_of_time() -> None:
    sampler = StepCounter()
    first, second = Sleepy(0.2), Sleepy(0.2)

    class Switch(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            sampler.switch()
            return x

    model = nn.Sequential(first, Switch(), second)
    meter = Meter(samplers=[sampler], counter_interval=0.01)
    try:
        profile = energy_by_layer(model, lambda: model(torch.zeros(1)), meter=meter)
    finally:
        meter.close()
    parts = {p.name: p for p in profile.layers}
    assert parts["0"].time_s == pytest.approx(parts["2"].time_s, rel=0.2)
    assert parts["2"].energy_j / parts["0"].energy_j == pytest.approx(10.0, rel=0.25)
    assert profile.parts_j == pytest.approx(profile.energy_j, rel=1e-9)


def test_training_step_bills_backward_to_modules_and_the_step_to_the_optimizer() -> None:
    from torch.profiler import profile, record_function

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(128, 64)

    def step() -> int:
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return 1

    with module_ranges(model), profile() as prof, record_function(MARK):
        step()
    intervals, _ = host_intervals(prof.events())
    calls = {i.owner for i in intervals if i.call}
    billed = {i.owner for i in intervals if not i.call}  # backward ops and the optimiser, not module calls
    assert calls == {ROOT, "0", "1", "2"}
    assert {"0", "1", "2"} <= billed and OPTIMIZER in billed  # AddmmBackward0 of both Linears, ReluBackward0
    assert all(i.start >= 0 and i.end > i.start for i in intervals)

    meter = Meter(samplers=[ClockCounter(watts=20.0)], counter_interval=0.05)
    try:
        train = energy_by_layer(model, step, meter=meter, repeats=3)
    finally:
        meter.close()
    parts = {p.name: p for p in train.layers}
    assert parts["0"].calls == 3 and parts[OPTIMIZER].calls == 0 and parts[OPTIMIZER].time_s > 0
    assert train.parts_j == pytest.approx(train.energy_j, rel=1e-9)


def test_the_fast_event_reader_finds_the_same_intervals_as_torchs_own_events() -> None:
    """``profiled_events`` replaces ``prof.events()`` for speed: on a real training step (forward ranges,
    backward ops on autograd's thread, the optimiser) and a transformer's nested modules, both give the
    same intervals, owners and origin."""
    from torch.profiler import profile, record_function

    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 2, 64, batch_first=True)
    model = nn.Sequential(nn.Linear(16, 32), nn.TransformerEncoder(layer, 2, enable_nested_tensor=False),
                          nn.Linear(32, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    x = torch.randn(4, 8, 16)

    def step() -> None:
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    with module_ranges(model), profile() as prof, record_function(MARK):
        step()
        with torch.inference_mode():
            model(x)
    slow, slow_origin = host_intervals(prof.events())
    fast, fast_origin = host_intervals(profiled_events(prof))
    key = lambda i: (i.owner, i.call, i.start)  # noqa: E731
    fast, slow = sorted(fast, key=key), sorted(slow, key=key)
    assert len(fast) > 50 and [(i.owner, i.call) for i in fast] == [(i.owner, i.call) for i in slow]
    # the same instants, to float rounding
    assert all(abs(f.start - s.start) < 1e-8 and abs(f.end - s.end) < 1e-8 for f, s in zip(fast, slow, strict=True))
    assert fast_origin == pytest.approx(slow_origin, abs=1e-3)
    assert {i.owner for i in fast if not i.call} >= {OPTIMIZER, "1.layers.0.linear1", "2"}


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="needs a torch.nn.Module"):
        energy_by_layer(lambda x: x, lambda: None, samplers=[ClockCounter()])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="repeats must be at least 1"):
        energy_by_layer(nn.Linear(2, 2), lambda: None, samplers=[ClockCounter()], repeats=0)


def test_public_name_and_the_layer_table_across_methods() -> None:
    assert eb.energy_by_layer is energy_by_layer
    names = [f"encoder.layers.{i}.{leaf}" for i in range(4) for leaf in ("linear1", "linear2")] + ["head"]
    assert choose_depth(names, max_rows=9) == 4 and choose_depth(names, max_rows=5) == 3
    m = _measurement(1.0, {"cpu:package-0": 10.0}, [(1.0, {"cpu:package-0": 10.0})])
    base = attribute(m, [Interval(0.0, 0.5, "enc.0", True), Interval(0.5, 1.0, "enc.1", True)])
    # a quantization wrapper's children are billed to the baseline's layer; a removed layer is "gone"
    small = attribute(m, [Interval(0.0, 0.3, "enc.0.module", True), Interval(0.3, 0.4, "enc.0.quant", True)])
    table = layer_table("b", "inference", "token", [("baseline", True, 2.0, base), ("q", False, 1.0, small)])
    assert table is not None
    rows = {r.name: r for r in table.rows}
    assert rows["enc.0"].baseline == pytest.approx(1.0) and rows["enc.0"].methods["q"] == pytest.approx(0.4)
    assert rows["enc.1"].methods["q"] is None and rows[OUTSIDE].methods["q"] == pytest.approx(0.6)
    assert rows["enc.0"].change("q") == pytest.approx(-0.6)
    assert layer_table("b", "inference", "token", [("baseline", True, 2.0, base)]) is None
