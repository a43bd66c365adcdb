"""Shared test set-up: make the test helpers in tests/support/ (doubles, fake trees, fake NVML) importable."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "support"))

# The real pytest sessions the tests start (the plugin's runs, A/B sessions, the examples) leave out
# hypothesis's plugin: importing it is half of a session's start-up (0.5 of 1.1 s on the 2-core VM) and none of
# them uses it. This session keeps it: it read PYTEST_ADDOPTS before this file ran.
os.environ["PYTEST_ADDOPTS"] = f"{os.environ.get('PYTEST_ADDOPTS', '')} -p no:hypothesispytest".strip()

from conftest_powercap import powercap_tree  # noqa: E402,F401  (the fake RAPL tree fixture)
from exporter_fixtures import real_run  # noqa: E402,F401  (one real run shared by the exporter and SCI tests)
