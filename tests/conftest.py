"""Shared test set-up: make the test helper modules (doubles, fake trees, fake NVML) importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest_powercap import powercap_tree  # noqa: E402,F401  (the fake RAPL tree fixture)
