"""Every string a user reads: units, terminal tables, Markdown, HTML and plots.

Core modules (measurement, compare, gate, report model, runner) return data; the modules here lay it out,
so a figure reads the same in a terminal, a pull-request comment and an HTML page. Import the renderer you
need from its module, e.g. ``from energybench.render.report_html import render_html``.
"""
