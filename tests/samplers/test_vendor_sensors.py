"""`energybench sensors` names every vendor sampler and, where it cannot read, says why in one line."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "energybench"]


def test_sensors_names_amd_apple_and_intel_gpu_with_their_reasons(tmp_path: Path) -> None:
    env = {**os.environ, "ENERGYBENCH_DRM_ROOT": str(tmp_path / "no-drm")}
    proc = subprocess.run([*CLI, "sensors", "--json"], capture_output=True, text=True, timeout=120, env=env)
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"amd", "apple", "intel-gpu"} <= set(rows)
    assert rows["intel-gpu"]["available"] is False
    assert rows["intel-gpu"]["reason"] == f"no {tmp_path / 'no-drm'}: no DRM devices here"
    if not rows["amd"]["available"]:
        assert "amdsmi" in rows["amd"]["reason"] or "AMD GPU" in rows["amd"]["reason"]
    if platform.system() != "Darwin":
        assert rows["apple"]["available"] is False and rows["apple"]["reason"].startswith("not an Apple-silicon Mac")
    for name in ("amd", "apple", "intel-gpu"):
        assert "\n" not in rows[name]["reason"]
    text = subprocess.run([*CLI, "sensors"], capture_output=True, text=True, timeout=120, env=env).stdout
    for name in ("amd", "apple", "intel-gpu"):
        assert any(line.startswith(name) for line in text.splitlines()), text
