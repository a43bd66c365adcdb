"""The ``powercap_tree`` fixture: a fake RAPL powercap tree in ``tmp_path`` whose writer is always stopped.

Wire it into a test session with ``from conftest_powercap import powercap_tree  # noqa: F401`` in
``tests/conftest.py`` (the tests directory is on ``sys.path`` under pytest's default import mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from powercap_tree import FakePowercap


@pytest.fixture
def powercap_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePowercap]:
    """An empty fake tree; ``ENERGYBENCH_POWERCAP_ROOT`` points at it so detection finds it."""
    tree = FakePowercap(tmp_path / "powercap")
    monkeypatch.setenv("ENERGYBENCH_POWERCAP_ROOT", str(tree.root))
    try:
        yield tree
    finally:
        tree.stop()
