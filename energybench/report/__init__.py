"""What a report over saved runs says (data): ``build_report`` computes every figure once.

Renderers live in ``energybench.render``: ``report_text.render_terminal``, ``report_markdown.render_markdown``
and ``report_html.render_html`` lay the same ``Report`` out as text, Markdown and one self-contained HTML page;
``run_table.format_table`` lays out a ``RunView``, the table ``energybench run`` prints.
"""

from __future__ import annotations

from energybench.report.model import Report, build_report
from energybench.report.run_view import RunView, run_view

__all__ = ["Report", "RunView", "build_report", "run_view"]
