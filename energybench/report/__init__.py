"""Comparative reports over saved runs: terminal text, Markdown for a PR, and one self-contained HTML page.

``build_report`` computes the figures once (``model``); each renderer only lays them out, so the formats
agree. Renderers are imported lazily by the CLI; this package imports neither torch nor pandas.
"""

from __future__ import annotations

from energybench.report.html import render_html
from energybench.report.markdown import markdown_table, md_escape, render_markdown
from energybench.report.model import Report, build_report
from energybench.report.terminal import render_terminal

__all__ = ["Report", "build_report", "markdown_table", "md_escape", "render_html", "render_markdown",
           "render_terminal"]
