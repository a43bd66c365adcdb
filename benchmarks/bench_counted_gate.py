"""Counted energy as a CI gate: separate pytest runs of a 30-benchmark suite, some beside a CPU neighbour.

Issue 24's acceptance, with real sessions of ``pytest --energy-meter counted`` and the real ``energybench compare``:

* agreement: the same code counted in separate sessions, some beside a steady CPU neighbour
  (``benchmarks/neighbours.py``): the modeled energy per call of pure-Python and torch-inference benchmarks side
  by side, and the largest difference over all 30 and every pair of runs (the goal: within 0.5%);
* false alarms: ``energybench compare A B --fail-on energy:+2%`` of identical code (the goal: 0 failed);
* catches: one benchmark of the 30 does 2% more work (``test_sum_squares[2]``: 2% more loop iterations) in the
  ``more`` runs, all beside the neighbour (the goal: caught every time, no other row failing).

What is real and what is derived: every session and every ``energybench compare`` is real. A counted session of
the suite takes minutes (each window re-translates the code it runs), so the default makes three sessions
(``--same 2 --more 1``) and compares them in every real pairing (2 + 2 comparisons); then ``--cycles`` comparisons
of each kind run on run files assembled per benchmark from those real runs (each benchmark's baseline from one
real run and its new figures from another), so every figure compared is a real counted one. ``--same 5 --more 4``
gives 20 real comparisons of each kind instead.

``--history``: each real comparison as CI makes it once counted runs of main are saved: the baseline is one of a
store of the identical-code runs, the new run is not in it, and ``energybench compare --results STORE`` takes the
between-run spread from the store (``verdicts.drift.from_store``); ``--same 5 --more 4`` gives 20 comparisons of
each kind, every history 4 runs (or 5 for the runs with more work).

Run: ``python benchmarks/bench_counted_gate.py [--same 2] [--more 1] [--cycles 20] [--history] [--keep DIR]``;
``--reuse DIR`` judges the sessions a ``--keep DIR`` run saved again (after a change to the gate) without counting anew.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import neighbours  # noqa: E402  (benchmarks/ is not a package)

from energybench.record.storage import RunFile, load_run  # noqa: E402

TARGET = "test_sum_squares[2]"
EXTRA_ENV = "EB_EXTRA_WORK"
WIDTH = 40  # the variable's value has the same length in every run: the environment's size moves heap addresses

SUITE = textwrap.dedent('''
    """30 benchmarks: 24 pure-Python (8 kinds x 3 sizes) and 6 torch inferences (2 models x 3 batch sizes)."""
    import json
    import os
    import re

    import pytest
    import torch

    EXTRA = os.environ.get("EB_EXTRA_WORK", "").strip()
    # every call is over a million instructions: one call a round, pinned as a gate should (no calibration window)
    pytestmark = pytest.mark.energy(iterations=1)

    def size(node, n):
        """n, or 2% more for the one benchmark EB_EXTRA_WORK names."""
        name, _, factor = EXTRA.partition("=")
        return round(n * float(factor)) if name == node else n

    def sum_squares(n):
        return sum(i * i for i in range(n))

    def sort_keyed(n):
        return sorted(((i * 7919) % 10007 for i in range(n)), key=lambda x: (x % 97, -x))

    def json_round_trip(n):
        return json.loads(json.dumps([{"id": i, "name": f"item-{i}", "tags": [i % 7, i % 11]} for i in range(n)]))

    def dict_lookups(n):
        table = {f"k{i}": i for i in range(n)}
        return sum(table[f"k{i}"] for i in range(0, n, 2))

    def split_join(n):
        return len("-".join(str(i) for i in range(n)).split("-"))

    def regex_words(n):
        return len(re.findall(r"[a-z]+[0-9]", " ".join(f"word{i % 10} x{i}" for i in range(n))))

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    def set_algebra(n):
        a, b = set(range(0, n, 2)), set(range(0, n, 3))
        return len((a | b) - (a & b))

    PY = [("sum_squares", sum_squares, 20000), ("sort_keyed", sort_keyed, 4000),
          ("json_round_trip", json_round_trip, 300), ("dict_lookups", dict_lookups, 5000),
          ("split_join", split_join, 8000), ("regex_words", regex_words, 4000), ("fib", fib, 18),
          ("set_algebra", set_algebra, 12000)]

    def make_test(kind, fn, base):
        @pytest.mark.parametrize("scale", [1, 2, 3])
        def test(energy, scale):
            n = size(f"test_{kind}[{scale}]", base * scale if kind != "fib" else base + scale)
            energy(fn, n)
        test.__name__ = f"test_{kind}"
        return test

    for kind, fn, base in PY:
        globals()[f"test_{kind}"] = make_test(kind, fn, base)

    torch.manual_seed(0)
    MODELS = {
        "mlp": lambda: torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                           torch.nn.ReLU(), torch.nn.Linear(256, 10)),
        "conv": lambda: torch.nn.Sequential(torch.nn.Conv1d(8, 16, 5), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(4),
                                            torch.nn.Flatten(), torch.nn.Linear(64, 10)),
    }
    INPUTS = {"mlp": lambda b: torch.randn(b, 256), "conv": lambda b: torch.randn(b, 8, 128)}

    @pytest.mark.parametrize("model", ["mlp", "conv"])
    @pytest.mark.parametrize("batch", [8, 16, 32])
    def test_torch_inference(energy, model, batch):
        torch.manual_seed(batch)
        net, x = MODELS[model]().eval(), INPUTS[model](batch)
        with torch.no_grad():
            energy(net, x)
''')


def session(work: Path, name: str, extra: str, counted: bool = True) -> tuple[float, dict | None]:
    """One pytest session of the suite in ``work``; the wall time and the saved run (counted) or None."""
    out = work / f"{name}.json"
    args = ["--energy-meter", "counted", f"--energy-json={out}"] if counted else ["--energy-disable"]
    env = {**os.environ, EXTRA_ENV: extra.ljust(WIDTH)}
    began = time.perf_counter()
    # in a folder of its own that no run file joins, as a CI checkout's: the import system lists the folder pytest
    # puts on sys.path, and one more name in it leaves the allocator in another state (docs: Counted energy)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "test_suite.py", *args], cwd=work / "suite", env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"session {name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, json.loads(out.read_text()) if counted else None


def per_call(run: dict) -> dict[str, float]:
    """Modeled joules per call of each benchmark (the median round's; counted rounds repeat)."""
    out = {}
    for bench in run["benchmarks"]:
        values = [r["energy_j"] / (r.get("iterations") or 1) for r in bench["rounds"]]
        out[bench["name"].split("::")[-1]] = statistics.median(values)
    return out


def compare(work: Path, base: str, new: str, history: list[str] | None = None) -> tuple[int, list[str], dict]:
    """``energybench compare`` of two saved runs with the +2% gate: exit code, failing rows, the JSON. With
    ``history``, the baseline is one of a store of those runs (the new run never is), as CI's saved runs of main."""
    result = work / "cmp.json"
    result.unlink(missing_ok=True)
    store, base_path = work / "none", work / f"{base}.json"
    if history is not None:
        store = Path(tempfile.mkdtemp(prefix="store-", dir=work))
        for name in history:
            _, saved = RunFile.create(load_run(work / f"{name}.json"), str(store), "main")
            if name == base:
                base_path = Path(saved.path)
    try:
        proc = subprocess.run([sys.executable, "-m", "energybench", "compare", str(base_path),
                               str(work / f"{new}.json"), "--fail-on", "energy:+2%", "--results", str(store),
                               "--json", str(result)], capture_output=True, text=True)
    finally:
        if history is not None:  # a --keep or --reuse folder would gather one store per comparison
            shutil.rmtree(store, ignore_errors=True)
    if not result.is_file():
        return proc.returncode, [(proc.stderr.strip().splitlines() or ["?"])[-1]], {}
    data = json.loads(result.read_text())
    failing = [r["benchmark"].split("::")[-1] for r in data["rows"] if any(not g["passed"] for g in r["gates"])]
    return proc.returncode, failing, data


def derive(work: Path, runs: dict[str, dict], name: str, base_from: list[str], new_from: list[str], seed: int,
           target: str | None = None) -> tuple[str, str]:
    """Two run files assembled per benchmark from real runs: the baseline's benchmark from one of ``base_from``,
    the new run's from another real run of ``new_from``; ``TARGET``'s from the runs with more work when ``target``
    is given, else from the identical-code runs."""
    rng = random.Random(seed)
    template = runs[base_from[0]]
    base, new = [], []
    for i, bench in enumerate(template["benchmarks"]):
        key = bench["name"].split("::")[-1]
        b = rng.choice(base_from)
        pool = [r for r in new_from if r != b]  # identical code: any other run, the target's from the same runs
        if key == TARGET:
            pool = [r for r in pool if r.startswith("more" if target else "same")]
        n = rng.choice(pool)
        base.append(runs[b]["benchmarks"][i])
        new.append(runs[n]["benchmarks"][i])
    for side, benches in (("base", base), ("new", new)):
        (work / f"{name}-{side}.json").write_text(json.dumps({**template, "benchmarks": benches}))
    return f"{name}-base", f"{name}-new"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--same", type=int, default=2, help="identical-code runs (alternately quiet and busy)")
    parser.add_argument("--more", type=int, default=1, help="runs with +2%% work in one benchmark, all busy")
    parser.add_argument("--cycles", type=int, default=20, help="derived comparisons of each kind")
    parser.add_argument("--keep", metavar="DIR", help="keep the run files in DIR (default: a temporary directory)")
    parser.add_argument("--history", action="store_true", help="also compare each real pair against a store of the "
                        "other identical-code runs (each benchmark's own spread), as CI does once main's are saved")
    parser.add_argument("--reuse", metavar="DIR", help="judge the sessions a --keep DIR run saved (same-N.json, "
                        "more-N.json) again, with this checkout's gate, instead of running new ones")
    args = parser.parse_args()
    if args.reuse:
        work = Path(args.reuse)
        runs = {p.stem: json.loads(p.read_text()) for p in sorted(work.glob("*-*.json"), key=_order)
                if p.stem.startswith(("same-", "more-"))}
        if not any(r.startswith("same") for r in runs) or not any(r.startswith("more") for r in runs):
            sys.exit(f"--reuse {work}: no same-N.json and more-N.json run files there (make them with --keep)")
        report(work, runs, args.cycles, args.history)
        return
    with tempfile.TemporaryDirectory(prefix="bench-counted-gate-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "suite").mkdir(exist_ok=True)
        (work / "suite" / "test_suite.py").write_text(SUITE)
        plain, _ = session(work, "plain", "none=1.00", counted=False)
        runs: dict[str, dict] = {}
        plan = [(f"same-{i + 1}", "none=1.00", i % 2 == 1) for i in range(args.same)]
        plan += [(f"more-{i + 1}", f"{TARGET}=1.02", True) for i in range(args.more)]
        print(f"plain session (--energy-disable: each benchmark once, unmeasured): {plain:.1f} s", flush=True)
        for name, extra, busy in plan:
            pids = neighbours.start(1, "steady") if busy else []
            try:
                wall, runs[name] = session(work, name, extra)
            finally:
                neighbours.stop(pids)
            print(f"{name:<8} {'beside a CPU neighbour' if busy else 'quiet':<23} counted session {wall:6.1f} s "
                  f"({wall / plain:.0f}x the plain session)", flush=True)
        report(work, runs, args.cycles, args.history)


def _order(path: Path) -> tuple[bool, int]:
    kind, _, number = path.stem.partition("-")
    return kind != "same", int(number) if number.isdigit() else 0


def report(work: Path, runs: dict[str, dict], cycles: int, history: bool = False) -> None:
    same, more = [r for r in runs if r.startswith("same")], [r for r in runs if r.startswith("more")]
    figures = {name: per_call(run) for name, run in runs.items()}
    quiet, busy = same[0], same[1]
    print(f"\nmodeled energy per call, {quiet} (quiet) vs {busy} (beside a neighbour), a few of the 30:")
    print(f"{'benchmark':<34}{quiet:>14}{busy:>14}{'difference':>13}")
    for key in ("test_sum_squares[1]", "test_json_round_trip[2]", "test_fib[3]", "test_torch_inference[8-mlp]",
                "test_torch_inference[16-mlp]", "test_torch_inference[32-conv]"):
        a, b = figures[quiet][key], figures[busy][key]
        print(f"{key:<34}{a * 1e3:>12.5f}mJ{b * 1e3:>12.5f}mJ{(b - a) / a:>+13.4%}")
    pairs = list(itertools.combinations([*same, *more], 2))
    for kind, keys in (("pure-Python", [k for k in figures[same[0]] if "torch" not in k and k != TARGET]),
                       ("torch", [k for k in figures[same[0]] if "torch" in k])):
        diffs = sorted(abs(figures[y][k] / figures[x][k] - 1) for x, y in pairs for k in keys)
        within = sum(d <= 0.005 for d in diffs)
        print(f"identical code, {kind}: {len(keys)} benchmarks x {len(pairs)} pairs of runs: difference median "
              f"{statistics.median(diffs):.3%}, 90th percentile {diffs[int(0.9 * (len(diffs) - 1))]:.3%}, largest "
              f"{diffs[-1]:.3%}; within 0.5%: {within}/{len(diffs)}")
    target = [figures[m][TARGET] / figures[s][TARGET] - 1 for s in same for m in more]
    print(f"{TARGET} with 2% more loop iterations: modeled energy {min(target):+.3%} to {max(target):+.3%}")
    outcome(work, "real runs, identical code", list(itertools.permutations(same, 2)), None)
    outcome(work, f"real runs, +2% work in {TARGET}", [(s, m) for s in same for m in more], TARGET)
    if history:
        outcome(work, "real runs against a store of the other identical-code runs, identical code",
                list(itertools.permutations(same, 2)), None, same)
        outcome(work, f"real runs against a store of the identical-code runs, +2% work in {TARGET}",
                [(s, m) for s in same for m in more], TARGET, same)
    derived = [derive(work, runs, f"d{k}", same, [*same, *more], k) for k in range(cycles)]
    outcome(work, "derived from the real runs, identical code", derived, None)
    derived = [derive(work, runs, f"r{k}", same, [*same, *more], 1000 + k, TARGET) for k in range(cycles)]
    outcome(work, f"derived from the real runs, +2% work in {TARGET}", derived, TARGET)


def outcome(work: Path, what: str, pairs: list[tuple[str, str]], target: str | None,
            store: list[str] | None = None) -> None:
    """Run the comparisons and print how many failed (identical code) or caught the target (and nothing else);
    with ``store``, each against a store of those runs less the new one."""
    failed, caught, others, codes, mode = 0, 0, 0, [], ""
    for base, new in pairs:
        code, failing, data = compare(work, base, new, None if store is None else [r for r in store if r != new])
        codes.append(code)
        mode = mode or f"{data.get('mode')}, between-run sd {data.get('between_run_sd')}"
        failed += code != 0
        caught += target is not None and code == 1 and target in failing
        others += len([f for f in failing if f != target])
    counts = dict(sorted((c, codes.count(c)) for c in set(codes)))
    print(f"\n{what}: {len(pairs)} x `energybench compare BASE NEW --fail-on energy:+2%`\n"
          f"  ({mode}); exit codes {counts}")
    if target is None:
        print(f"  failed {failed}/{len(pairs)}; rows failing: {others}")
    else:
        print(f"  caught {caught}/{len(pairs)}; other rows failing: {others}")


if __name__ == "__main__":
    main()
