"""Issue 25, class 5: plugin code is named as its own (``energybench.plugin_boundary``), with real installed
plugins: a workload that calls ``sys.exit(5)`` is one failed cell while the run goes on, and a sampler that
raises is left out with a warning naming it while the other samplers measure (CLI and pytest)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

from faults import ENERGY_TESTS, energybench, env_with, error_lines, pytest_run

from energybench.record import storage

SUBJECT = textwrap.dedent('''
    """A subject plugin whose second workload calls sys.exit(5)."""
    import sys

    from energybench.subjects.api import Model, Quality, Subject, Workload


    class QuitterSubject(Subject):
        name = "quitter"
        description = "one workload that works, one that calls sys.exit(5)"

        def baseline(self, ctx):
            import torch

            self.x = torch.randn(16, 8)
            return Model(torch.nn.Linear(8, 8))

        def workloads(self, model, ctx):
            import torch

            def work():
                with torch.inference_mode():
                    model.module(self.x)
                return 16

            def quit():
                sys.exit(5)

            return [Workload("work", "inference", "row", work), Workload("quits", "inference", "row", quit)]

        def quality(self, model, baseline, ctx):
            return Quality("mse", 0.0, higher_is_better=False)
''')

SAMPLER = textwrap.dedent('''
    """A sampler plugin whose sensor read raises (a bug in the plugin, not in energybench)."""
    from energybench.samplers import Availability, BaseSampler, Domain, SamplerFactory


    class RaisingSampler(BaseSampler):
        name = "toy-raising"
        kind = "counter"

        def domains(self):
            return [Domain("board:rail-0", "measured", "toy")]

        def read(self):
            raise RuntimeError("sensor bus exploded")


    def samplers():
        from sampler_doubles import ClockCounter

        return [ClockCounter(watts=10.0), RaisingSampler()]


    FACTORY = SamplerFactory(
        name="toy-raising",
        probe=lambda options: Availability("toy-raising", True, "measured", domains=("board:rail-0",)),
        create=lambda options: [RaisingSampler()],
    )
''')


def _install(target: Path, module: str, source: str, group: str, entry: str) -> Path:
    """A plugin as ``pip install --target`` leaves it: the module and a ``.dist-info`` whose entry point
    ``entry`` (``name = module:attribute``) is in ``group``."""
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{module}.py").write_text(source)
    info = target / f"{module}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    return target


def test_a_workload_calling_sys_exit_is_a_failed_cell_and_the_run_goes_on(tmp_path: Path):
    plugin = _install(tmp_path / "plugin", "eb_quitter", SUBJECT, "energybench.subjects",
                      "quitter = eb_quitter:QuitterSubject")
    suite = tmp_path / "bench"
    suite.mkdir()
    (suite / "suite.py").write_text("from energybench import Suite\nSUITES = [Suite('quitter', methods=[])]\n")
    proc = energybench("run", str(suite), "--trials", "2", "--idle", "0", "--results", str(tmp_path / "res"),
                       env=env_with(plugin))
    assert proc.returncode == 3, proc.stderr  # a plugin failed; never its own exit code 5
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "quitter/quits [baseline]" in lines[0] and "called sys.exit(5)" in lines[0]
    assert "eb_quitter:" in lines[0] and "the other cells were measured and saved" in lines[0], lines[0]
    run = storage.load_run(next((tmp_path / "res").glob("*.json")))
    cells = {b.name: b for b in run.benchmarks}
    assert cells["quitter/quits"].status == "failed" and "sys.exit(5)" in cells["quitter/quits"].status_reason
    assert cells["quitter/work"].ok and len(cells["quitter/work"].rounds) == 2


def test_a_raising_sampler_is_left_out_with_a_warning_naming_it(tmp_path: Path):
    plugin = _install(tmp_path / "plugin", "eb_raising_sampler", SAMPLER, "energybench.samplers",
                      "toy-raising = eb_raising_sampler:FACTORY")
    out = tmp_path / "m.json"
    proc = energybench("measure", "--json", str(out), "--", sys.executable, "-c", "pass", env=env_with(plugin))
    assert proc.returncode == 0, proc.stderr  # never "internal error" (70): the other samplers measured
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    said = "sampler toy-raising failed mid-run and is left out: it raised RuntimeError: sensor bus exploded"
    assert said in " ".join(proc.stderr.split()) and "eb_raising_sampler:RaisingSampler.read" in proc.stderr
    assert "board:rail-0" in json.loads(out.read_text())["measurement"]["missing"]

    project = tmp_path / "project"  # pytest imports the samplers from its own directory (python -m puts it first)
    project.mkdir()
    (project / "eb_raising_sampler.py").write_text(SAMPLER)
    (project / "test_energy.py").write_text(ENERGY_TESTS)
    session = pytest_run(project, "test_energy.py", "--energy-samplers-from=eb_raising_sampler:samplers")
    text = session.stdout + session.stderr
    assert session.returncode == 0, text  # pytest's 3 (internal error) before
    assert "INTERNALERROR" not in text and "internal error" not in text
    assert "toy-raising failed mid-run and is left out" in " ".join(text.split()), text
    assert "\ntest_sum[3] " in session.stdout  # every benchmark measured with the other sampler

