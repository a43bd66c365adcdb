"""The README's and the manual's Python examples really run, and the manual stays buildable.

Every ```python block of README.md and of docs/**/*.md runs in its own interpreter, from a scratch directory
that holds a saved sample run (for the examples that load one) and a link to tests/ (for the fake NVML and
the intensity CSV). Blocks that are a user's own file are run elsewhere (markers in ELSEWHERE); a block that
is not meant to run is fenced as text, console, toml, yaml or json, never as python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import make_run

from energybench.record.storage import save_run

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
# a runnable block: a fence line that is exactly ```python, up to the next ``` line
FENCE = re.compile(r"^```python\n(.*?)^```$", flags=re.S | re.M)
# any fence that opens python code: it must be the exact form above, or the block would silently not run
PYTHON_FENCE = re.compile(r"^[ \t]*```[ \t]*(python|py|python3|pycon)\b.*$", flags=re.M)
# run elsewhere for real: the torchrun example by tests/distributed/test_distributed_runs.py, pytest files by pytester
ELSEWHERE = ("torchrun", "def test_")
README_LIMIT = 12_000  # bytes: the README is the front door, the manual is under docs/


def _blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


BLOCKS = [(page, i, code) for page in PAGES for i, code in enumerate(_blocks(page))]


def test_readme_has_examples():
    readme = _blocks(ROOT / "README.md")
    assert len(readme) >= 2
    assert any(not any(m in code for m in ELSEWHERE) for code in readme), "the README needs a runnable example"


def test_docs_have_examples():
    runnable = [code for page, _, code in BLOCKS if page != ROOT / "README.md"
                and not any(m in code for m in ELSEWHERE)]
    assert len(runnable) >= 9


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_python_fence_is_a_runnable_block(page):
    """```py, ```python title=..., an indented ```python: none of them would run, so none is allowed."""
    text = page.read_text(encoding="utf-8")
    fences = [m.group(0) for m in PYTHON_FENCE.finditer(text)]
    odd = [f for f in fences if f != "```python"]
    assert not odd, f"{_rel(page)}: python fences the tests would not run: {odd}; use ```python or ```text"


@pytest.mark.parametrize(("page", "index", "code"), BLOCKS, ids=[f"{_rel(p)}:{i}" for p, i, _ in BLOCKS])
def test_python_block_runs(page, index, code, tmp_path):
    if any(marker in code for marker in ELSEWHERE):
        pytest.skip("covered by its own multi-process / pytester test")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    save_run(make_run("0001_quick"), tmp_path / "results", "quick")  # for the examples that load a saved run
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, f"{_rel(page)} block {index} failed:\n{code}\n{proc.stderr[-2000:]}"


def test_readme_stays_a_front_door():
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_LIMIT, f"README.md is {size} bytes (limit {README_LIMIT}): move detail into docs/"


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$", nav, flags=re.M))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - listed == set(), f"pages missing from mkdocs.yml's nav: {sorted(pages - listed)}"
    assert listed - pages == set(), f"nav entries with no page: {sorted(listed - pages)}"


def test_readme_links_into_the_manual_resolve():
    targets = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert targets
    missing = sorted({t for t in targets if not (ROOT / t).exists()})
    assert not missing, f"README links to missing files: {missing}"


def test_readme_set_up_installs_what_ci_installs():
    """.ci/run mirrors the README's set-up command (and the manual repeats it): same torch pin, same extras."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    pattern = r"pip install (?:-q )?-e '\.\[([\w,]+)\]'"
    # the set-up command is the one that pins torch first; a page may also show one extra alone
    # (docs/integrations.md: pip install -e '.[mlflow]'), which is not the set-up
    setup = r"pip install torch==2\.13\.0 && pip install -e '\.\[([\w,]+)\]'"
    extras = {e for page in PAGES for e in re.findall(setup, page.read_text(encoding="utf-8"))}
    ci_extras = set(re.findall(pattern, ci))
    assert re.search(pattern, readme) and extras == ci_extras, (extras, ci_extras)
    assert "pip install torch==2.13.0" in readme and "pip install -q torch==2.13.0" in ci
    assert ". .venv/bin/activate && python -m pytest -q" in readme and "python -m pytest -q" in ci


def test_mkdocs_build_is_strict_clean(tmp_path):
    """The manual builds with --strict: no broken link or anchor, no page missing from the nav."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
