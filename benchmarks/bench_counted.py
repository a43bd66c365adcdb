"""Counted energy: does it repeat, does a CPU neighbour move it, and how much slower is the simulator?

For a pure-Python workload and a small torch model's inference, prints side by side: the modeled energy and
instruction count of two separate counted runs (fresh processes under callgrind), the second while a CPU
neighbour (``python -c "while True: pass"``) runs in the background, their relative difference (the goal is
within 0.5%), and the slowdown of the counted window over the same calls run plainly in this process; then the
torch window with ten times the calls (the re-translation at a window's start amortised), and the slowdown
of counting a whole command (``energybench measure --meter counted``) over running it plainly.

Run: ``python benchmarks/bench_counted.py [--python-calls 5] [--torch-calls 50]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from energybench import units
from energybench.counted.result import CountedResult
from energybench.counted.runner import count_target

HERE = Path(__file__).resolve()
PY_SNIPPET = ("import json; data = [{'id': i, 'name': f'item-{i}', 'tags': [i % 7, i % 11]} for i in range(4000)]\n"
              "for _ in range(5): sorted(json.loads(json.dumps(data)), key=lambda d: (d['tags'][0], -d['id']))")


def python_workload() -> Callable[[], object]:
    """A JSON round trip of 4,000 records and a sort by a computed key: interpreter, allocator, dicts."""
    data = [{"id": i, "name": f"item-{i}", "tags": [i % 7, i % 11]} for i in range(4000)]

    def run() -> object:
        return sorted(json.loads(json.dumps(data)), key=lambda d: (d["tags"][0], -d["id"]))

    return run


def torch_inference() -> Callable[[], object]:
    """A 3-layer MLP (256-512-256-10, ~0.3 M parameters) on a batch of 16, one thread, no autograd."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    batch = torch.randn(16, 256)

    def run() -> object:
        with torch.no_grad():
            return model(batch)

    return run


@contextmanager
def cpu_neighbour() -> Iterator[None]:
    """A busy loop in another process for the duration, killed afterwards."""
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it get going
        yield
    finally:
        neighbour.kill()
        neighbour.wait()


def plain_seconds(factory: Callable[[], Callable[[], object]], calls: int, repeats: int = 5) -> float:
    """Median wall time of ``calls`` calls run plainly in this process, after one warm-up call."""
    fn = factory()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(label: str, factory: str, calls: int) -> list[str]:
    """Two separate counted runs of the same calls, the second beside a CPU neighbour."""
    target = f"{HERE}:{factory}"
    quiet = count_target(target, calls, name=label)
    with cpu_neighbour():
        busy = count_target(target, calls, name=label)
    plain = plain_seconds(globals()[factory], calls)
    diff = (busy.energy_j - quiet.energy_j) / quiet.energy_j
    ir_diff = (busy.counts["Ir"] - quiet.counts["Ir"]) / quiet.counts["Ir"]
    return [_row(f"{label} x{calls}", "quiet", quiet, "", plain),
            _row("", "CPU neighbour", busy, f"{diff:+.4%} (Ir {ir_diff:+.5%})", plain)]


def amortised(label: str, factory: str, calls: int) -> str:
    """One quiet run with many calls: the share of the window spent re-translating code falls."""
    result = count_target(f"{HERE}:{factory}", calls, name=label)
    return _row(f"{label} x{calls}", "quiet", result, "", plain_seconds(globals()[factory], calls, repeats=3))


def _row(label: str, run: str, r: CountedResult, diff: str, plain: float) -> str:
    window = r.wall_s
    process = float(r.details.get("process_wall_s", 0.0))
    return (f"{label:<26}{run:<15}{units.joules(r.energy_j):>10}{r.counts['Ir']:>15,}{diff:>30}"
            f"{window:>9.2f} s{process:>9.1f} s{plain * 1e3:>10.2f} ms{window / plain:>9.0f}x")


def whole_command() -> str:
    """``energybench measure --meter counted -- python -c ...`` against the same command run plainly."""
    cmd = [sys.executable, "-c", PY_SNIPPET]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    plain = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m.json"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "energybench", "measure", "--meter", "counted", "--json", str(out),
                        "--", *cmd], check=True, capture_output=True)
        counted = time.perf_counter() - t0
        payload = json.loads(out.read_text())["counted"]
    return (f"whole command (python -c: 5 x the python workload, interpreter start-up included): counted "
            f"{counted:.1f} s ({units.joules(payload['energy_j'])}, {payload['counts']['Ir']:,} instructions), "
            f"plain {plain:.2f} s: {counted / plain:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python-calls", type=int, default=5)
    parser.add_argument("--torch-calls", type=int, default=50)
    args = parser.parse_args()
    head = (f"{'workload':<26}{'run':<15}{'modeled':>10}{'instructions':>15}{'vs quiet run':>30}"
            f"{'window':>11}{'process':>11}{'plain':>13}{'slowdown':>10}")
    print(head)
    print("-" * len(head))
    for line in compare("python: json + sort", "python_workload", args.python_calls):
        print(line, flush=True)
    for line in compare("torch: MLP inference", "torch_inference", args.torch_calls):
        print(line, flush=True)
    print(amortised("torch: MLP inference", "torch_inference", 10 * args.torch_calls), flush=True)
    print("window = the counted calls' wall time under callgrind (code is re-translated with instrumentation at "
          "every window\nstart); process = the whole counted process (valgrind start-up and uninstrumented imports "
          "included); plain =\nthe same calls run plainly here; slowdown = window / plain")
    print(whole_command())


if __name__ == "__main__":
    main()
