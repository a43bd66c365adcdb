"""What a report over saved runs says (data): ``build_report`` computes every figure once.

Renderers live in ``energybench.render``: ``report_text.render_terminal``, ``report_markdown.render_markdown``
and ``report_html.render_html`` lay the same ``Report`` out as text, Markdown and one self-contained HTML page.
"""

from __future__ import annotations

from energybench.report.model import Report, build_report

__all__ = ["Report", "build_report"]
