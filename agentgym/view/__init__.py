"""``agentgym view``: runs as a local web page (curves, eval tables, trajectories, live) or a static report.

:class:`~agentgym.view.viewer.Viewer` reads run folders; :mod:`agentgym.view.server` serves it
with aiohttp; :func:`~agentgym.view.export.export_report` writes the same views to one HTML file.
See docs/view.md.
"""
