"""Shared test set-up: make the test helpers in tests/support/ (doubles, fake trees, fake NVML) importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "support"))

from conftest_powercap import powercap_tree  # noqa: E402,F401  (the fake RAPL tree fixture)
from exporter_fixtures import real_run  # noqa: E402,F401  (one real run shared by the exporter and SCI tests)
