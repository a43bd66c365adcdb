"""Energy benchmarks in the pytest style: what `pytest benchmarks/ --energy-autosave` runs (docs/ci.md).

Each test hands its workload to the `energy` fixture, which calibrates iterations, runs warm-up and rounds,
and reports energy per call (and per item) with its provenance; saved runs are gated with
`--energy-compare --energy-compare-fail "energy:+5%"`.
"""

import pytest
import torch

torch.manual_seed(0)
MODEL = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256))
BATCH = torch.randn(64, 256)


@pytest.mark.energy(phase="inference", item_unit="sample")
def test_mlp_inference(energy):
    energy.items = len(BATCH)
    with torch.no_grad():
        out = energy(MODEL, BATCH)
    assert out.shape == (64, 256)


@pytest.mark.energy(phase="train", item_unit="sample")
def test_mlp_train_step(energy):
    opt = torch.optim.SGD(MODEL.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = MODEL(BATCH).square().mean()
        loss.backward()
        opt.step()
        return loss.item()

    energy.items = len(BATCH)
    assert energy(step) >= 0.0
