"""SCI = (E x I + M) / R per functional unit, the factor kind on every CO2e, counterfactuals."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from energybench.carbon import load_intensity_csv, lookup_region, resolve_provider
from energybench.carbon.counterfactual import in_regions, run_counterfactuals, shift_in_time
from energybench.carbon.sci import SECONDS_PER_YEAR, parse_embodied, run_sci
from energybench.errors import ConfigError
from energybench.record import Benchmark, CarbonBasis, Embodied, Round, Run
from energybench.record.storage import load_run

DATA = Path(__file__).parents[1] / "support" / "data"


def _run(kind: str = "average") -> Run:
    """Two rounds of 100 tokens, 2 Wh and 1800 s each, priced at 300 g/kWh with PUE 1.5 by a real provider."""
    provider = resolve_provider(intensity=300, pue=1.5, intensity_kind=kind)
    assert provider is not None
    rounds = []
    for i in range(2):
        info = provider.carbon([(0.0, 1800.0, 7200.0)])
        rounds.append(Round(index=i, energy_j=7200.0, duration_s=1800.0, items=100.0, co2e_g=info.co2e_g,
                            source="measured"))
    bench = Benchmark(name="lm/inference-generate", item_unit="token", phase="inference", rounds=tuple(rounds))
    return Run(name="t", created="2026-12-02T00:00:00+00:00", benchmarks=(bench,),
               carbon=CarbonBasis.from_provider(provider), embodied=(Embodied("server", 1000.0, 4.0, 0.5),))


def test_sci_is_operational_plus_amortised_embodied_per_item():
    sci = run_sci(_run())
    assert sci is not None and sci.complete and sci.factor_kind == "average"
    r = sci.results[0]
    assert r.functional_unit == "token" and r.items == 200
    assert r.operational_g == pytest.approx(2 * 7200 / 3.6e6 * 300 * 1.5)  # 1.8 g: E x I x PUE
    m = 1000e3 * (3600 / (4 * SECONDS_PER_YEAR)) * 0.5  # TE x TiR/EL x RS
    assert r.embodied_g == pytest.approx(m)
    assert r.sci_g == pytest.approx((1.8 + m) / 200)
    assert r.intensity_g_per_kwh == pytest.approx(450.0)


def test_without_devices_sci_says_it_is_operational_only():
    from dataclasses import replace

    sci = run_sci(replace(_run(), embodied=()))
    assert sci is not None and not sci.complete
    assert sci.results[0].embodied_g is None and sci.results[0].sci_g == pytest.approx(1.8 / 200)
    from energybench.render.sci import format_sci

    text = format_sci(sci, width=100)
    assert "operational only" in text and "M: not given" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_sci_is_written_derived_and_recomputed_on_load(tmp_path):
    run = _run("marginal")
    data = json.loads(run.to_json())
    assert data["carbon"]["factor_kind"] == "marginal"
    block = data["sci"]
    assert block["inputs"]["embodied"] == [{"name": "server", "kgco2e": 1000.0, "lifetime_years": 4.0,
                                            "share": 0.5, "source": "given with --embodied"}]
    assert block["results"]["factor_kind"] == "marginal"
    # a tampered derived figure is ignored: the file cannot disagree with its rounds
    block["results"]["per_benchmark"][0]["sci_g_per_item"] = 123.0
    back = Run.from_dict(data)
    assert back.embodied == run.embodied and back.carbon.factor_kind == "marginal"
    assert json.loads(back.to_json())["sci"]["results"]["per_benchmark"][0]["sci_g_per_item"] != 123.0


def test_schema1_files_load_with_average_factors():
    for f in sorted((DATA / "schema1").glob("*.json")):
        run = load_run(f)
        assert run.embodied == ()
        if run.carbon is not None:
            assert run.carbon.factor_kind == "average"


@pytest.mark.parametrize("text,kg,years,share", [("gpu=150", 150, 4, 1), ("server=1200:5:0.25", 1200, 5, 0.25),
                                                  ("rack = 3000kg:6", 3000, 6, 1)])
def test_parse_embodied(text, kg, years, share):
    e = parse_embodied(text)
    assert (e.kgco2e, e.lifetime_years, e.share) == (kg, years, share)


@pytest.mark.parametrize("text", ["gpu", "gpu=", "gpu=abc", "gpu=150:0", "gpu=150:4:1.5", "gpu=-1", "=3"])
def test_bad_embodied_is_a_config_error(text):
    with pytest.raises(ConfigError, match="NAME=KGCO2E"):
        parse_embodied(text)


def test_real_run_json_html_and_load_results(real_run):
    from energybench.record.frames import load_results
    from energybench.render.report_html import render_html
    from energybench.report import build_report

    data = json.loads(Path(real_run.path).read_text())
    results = data["sci"]["results"]
    assert results["complete"] and {d["name"] for d in data["sci"]["inputs"]["embodied"]} == {"server", "gpu"}
    keys = {r["benchmark"] for r in results["per_benchmark"]}
    assert keys == {b.key for b in real_run.benchmarks if b.rounds}
    for r in results["per_benchmark"]:
        assert r["sci_g_per_item"] == pytest.approx(r["operational_g_per_item"] + r["embodied_g_per_item"])
    html = render_html(build_report([load_run(real_run.path)]))
    assert "Software Carbon Intensity" in html and "server 1200 kgCO2e embodied" in html
    assert "E x I: each measured round" in html and "(average)" in html
    df = load_results(real_run.path)
    sci = run_sci(real_run)
    assert sci is not None
    for key, r in sci.by_key().items():
        bench = next(b for b in real_run.benchmarks if b.key == key)
        rows = df[(df.benchmark == bench.name) & (df.method == bench.method)]
        assert (rows.sci_g_per_item == r.sci_g).all() and (rows.factor_kind == "average").all()


def test_energybench_run_prints_sci_with_assumptions(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    from exporter_fixtures import TINY

    (bench / "suite.py").write_text(f"from energybench import Suite\nSUITES = [Suite('lm', methods=[], "
                                    f"options={{'lm': {TINY!r}}})]\n")
    proc = subprocess.run([sys.executable, "-m", "energybench", "run", str(bench), "--trials", "2", "--idle", "0.1",
                           "--threads", "1", "--region", "DEU", "--embodied", "laptop=300:4", "--results",
                           str(tmp_path / "res"), "--cache-dir", str(tmp_path / "c"), "--phase", "inference"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Software Carbon Intensity per functional unit" in proc.stdout
    assert "M: laptop 300 kgCO2e embodied" in proc.stdout and "DEU, average factor" in proc.stdout


def test_bad_embodied_on_the_cli_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "energybench", "carbon", "latest", "--results", str(tmp_path),
                           "--embodied", "gpu=lots"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "NAME=KGCO2E" in proc.stderr


def test_marginal_series_is_recorded_as_marginal():
    p = resolve_provider(intensity_csv=DATA / "intensity_hourly.csv", intensity_kind="marginal")
    assert p is not None and p.factor_kind == "marginal"
    t0 = 1714521600
    assert p.carbon([(t0, t0 + 60, 3.6e6)]).factor_kind == "marginal"
    assert p.describe()["factor_kind"] == "marginal"
    assert resolve_provider(region="FRA").carbon([(0, 1, 1.0)]).factor_kind == "average"


def test_region_factors_cannot_be_declared_marginal():
    with pytest.raises(ConfigError, match="annual averages, not marginal"):
        resolve_provider(region="FRA", intensity_kind="marginal")
    with pytest.raises(ConfigError, match="neither 'average' nor 'marginal'"):
        resolve_provider(intensity=100, intensity_kind="median")


def test_measure_records_the_factor_kind(tmp_path):
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "energybench", "measure", "--intensity", "420", "--intensity-kind",
                           "marginal", "--json", str(out), "--", sys.executable, "-c", "pass"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    carbon = json.loads(out.read_text())["measurement"]["carbon"]
    assert carbon["factor_kind"] == "marginal" and carbon["intensity_g_per_kwh"] == 420
    bad = subprocess.run([sys.executable, "-m", "energybench", "measure", "--region", "FRA", "--intensity-kind",
                          "marginal", "--", sys.executable, "-c", "pass"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "annual averages" in bad.stderr and "Traceback" not in bad.stderr


def test_counterfactual_regions_restate_the_same_joules():
    rows = in_regions(3.6e6, 1.2, ["DEU", "FRA"], user=("custom", "mine", 100.0))
    assert rows[0].is_user and rows[0].co2e_g == pytest.approx(120.0)
    deu = lookup_region("DEU").intensity_g_per_kwh
    assert rows[1].name == "DEU" and rows[1].co2e_g == pytest.approx(1.2 * deu)
    assert rows[1].change == pytest.approx(1.2 * deu / 120.0 - 1)


def test_shift_finds_the_cleanest_start():
    series = load_intensity_csv(DATA / "intensity_hourly.csv")  # 52, 48.5, 61, 75.25 hourly from 00:00
    one_hour = shift_in_time(series, 3.6e6, 3600.0, 1.0)
    assert one_hour.best_start_iso == "2024-05-01T01:00:00Z" and one_hour.best_co2e_g == pytest.approx(48.5)
    assert one_hour.worst_start_iso == "2024-05-01T03:00:00Z" and one_hour.worst_co2e_g == pytest.approx(75.25)
    assert one_hour.mean_intensity_g_per_kwh == pytest.approx((52 + 48.5 + 61 + 75.25) / 4)
    two_hours = shift_in_time(series, 3.6e6, 7200.0, 2.0)  # spread evenly over two steps, PUE 2
    assert two_hours.best_start_iso == "2024-05-01T00:00:00Z"
    assert two_hours.best_co2e_g == pytest.approx((52 + 48.5) / 2 * 2)
    with pytest.raises(ConfigError, match="give a longer series"):
        shift_in_time(series, 1.0, 5 * 3600.0, 1.0)


def test_carbon_command_prints_sci_and_counterfactuals(real_run):
    results = str(Path(real_run.path).parent)
    proc = subprocess.run([sys.executable, "-m", "energybench", "carbon", real_run.label, "--results", results,
                           "--regions", "DEU,POL", "--shift-csv", str(DATA / "intensity_hourly.csv"), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    regions = data["counterfactuals"]["regions"]
    assert [r["name"] for r in regions] == ["FRA", "DEU", "POL"] and regions[0]["is_user"]
    kwh = real_run.energy_j / 3.6e6
    assert regions[2]["co2e_g"] == pytest.approx(kwh * lookup_region("POL").intensity_g_per_kwh)
    assert data["counterfactuals"]["shift"]["best_start"] == 1714525200  # 01:00, the 48.5 g/kWh hour
    assert data["sci"]["complete"] is True
    text = subprocess.run([sys.executable, "-m", "energybench", "carbon", real_run.label, "--results", results,
                           "--embodied", "laptop=300"], capture_output=True, text=True, timeout=120).stdout
    assert "M: laptop 300 kgCO2e" in text and "server" not in text  # --embodied re-assesses with other devices
    assert "The same" in text and "elsewhere" in text


def test_pue_and_energy_of_real_run_carry_into_counterfactuals(real_run):
    cf = run_counterfactuals(real_run, ["DEU"])
    user = cf.regions[0]
    assert user.is_user and user.co2e_g == pytest.approx(real_run.co2e_g, rel=1e-9)
    assert math.isclose(cf.energy_j, real_run.energy_j)


def test_pytest_plugin_records_embodied_devices_and_sci():
    """``--energy-embodied`` and ``--energy-intensity-kind`` reach the pytest run's saved JSON."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "test_work.py").write_text(
            "import pytest\n\n@pytest.mark.energy(item_unit='sample')\n"
            "def test_sum(energy):\n    energy.items = 10\n    energy(lambda: sum(range(20000)))\n")
        out = root / "run.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(root / "test_work.py"),
                               "--energy-intensity", "300", "--energy-intensity-kind", "marginal",
                               "--energy-embodied", "laptop=300:4:1", "--energy-json", str(out)],
                              capture_output=True, text=True, timeout=300, cwd=root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        data = json.loads(out.read_text())
    assert data["carbon"]["factor_kind"] == "marginal"
    assert data["sci"]["inputs"]["embodied"][0]["name"] == "laptop"
    (result,) = data["sci"]["results"]["per_benchmark"]
    assert result["functional_unit"] == "sample" and result["complete"] is True
    assert result["sci_g_per_item"] == pytest.approx(result["operational_g_per_item"] + result["embodied_g_per_item"])


def test_an_exporter_whose_library_is_missing_says_which_extra():
    from energybench.exporters import Exporter

    class NeedsNothingReal(Exporter):
        name = "x"
        description = "x"
        requires = "energybench_no_such_library"
        extra = "x-extra"

        def export(self, run, args):
            raise AssertionError("never called")

    assert NeedsNothingReal().unavailable_reason() == ("needs energybench_no_such_library: pip install "
                                                       "'energybench[x-extra]'")
