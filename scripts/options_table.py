"""Print the shared-options table of docs/configuration.md from energybench.options (the one declaration).

    python scripts/options_table.py            # print it
    python scripts/options_table.py --write    # replace the table in docs/configuration.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from energybench.options import OPTIONS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
HEADER = "| command line | pytest | environment | `pyproject.toml` | default | meaning |\n|---|---|---|---|---|---|\n"


def table() -> str:
    rows = []
    for o in OPTIONS.values():
        cli = " ".join(f"`{f}`" for f in (o.cli_flag, *o.cli_aliases))
        pt = " ".join(f"`{f}`" for f in (o.pytest_flag, *o.pytest_aliases))
        env = f"`{o.env}`" if o.env else "-"
        cfg = f"`{o.name}`" if o.in_config else "-"
        default = "-" if o.default in (None, (), False) else f"`{o.default}`"
        meaning = o.help.replace("%%", "%").replace("|", "\\|")
        rows.append(f"| {cli} | {pt} | {env} | {cfg} | {default} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


def replace_table(page: str) -> str:
    start = page.index(HEADER)
    end = page.index("\n\n", start)
    return page[:start] + table().rstrip("\n") + page[end:]


if __name__ == "__main__":
    if "--write" in sys.argv:
        PAGE.write_text(replace_table(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(table(), end="")
