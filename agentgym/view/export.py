"""``agentgym view --export DIR``: the runs as one self-contained HTML file that opens from disk.

The report is made of the live page's own fragments in their static form: the stylesheet is
inlined, curves are inline SVG, tables are plain HTML, and a sample of each run's episodes is
shown turn by turn in collapsible sections. It needs no script and no network, so it can be
mailed or attached to an issue as it is. Hidden task references never appear in it.
"""

from __future__ import annotations

import sys
import time
from html import escape
from pathlib import Path

from agentgym.view.episodes import EpisodeFilter
from agentgym.view.pages import anchor, num
from agentgym.view.runs import Run, read_json
from agentgym.view.server import ASSETS
from agentgym.view.viewer import Viewer

REPORT = "index.html"


def export_report(viewer: Viewer, out_dir: Path, *, episodes: int = 50, progress: bool = True) -> Path:
    """Write ``out_dir/index.html`` (atomically) and return its path."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = viewer.ordered_runs()
    css = (ASSETS / "app.css").read_text(encoding="utf-8")
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>agentgym report</title>'
        f"<style>{css}</style></head><body>"
        '<header class="top"><span class="brand">agentgym report</span>'
        f'<span class="live-state">written {time.strftime("%Y-%m-%d %H:%M")}</span></header><main>',
        viewer.runs_fragment(static=True),
    ]
    trains = [r for r in runs if r.kind == "train"]
    if len(trains) > 1:
        parts.append(
            "<section><h2>Training curves, overlaid</h2>"
            + viewer.curves_fragment([r.id for r in trains], static=True)
            + "</section>"
        )
    evals = [r for r in runs if r.kind == "eval" and read_json(r.path / "results.json")]
    if len(evals) > 1:
        parts.append("<section><h2>Comparisons</h2>")
        for other in evals[1:]:
            parts.append(
                f"<h3>{escape(other.name)} against {escape(evals[0].name)}</h3>"
                + viewer.compare_table_static(evals[0], other)
            )
        parts.append("</section>")
    bar = tqdm(runs, desc="export", unit="run", file=sys.stderr, disable=not progress or len(runs) < 2)
    for run in bar:
        parts.append(_run_section(viewer, run, episodes))
    parts.append("</main></body></html>")
    path = out_dir / REPORT
    tmp = path.with_name(f".{REPORT}.tmp")
    tmp.write_text("".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path


def _run_section(viewer: Viewer, run: Run, episodes: int) -> str:
    out = [f'<section class="report-run">{viewer.head_fragment(run.id, static=True)}']
    if run.kind == "train":
        out.append("<h3>Training curves</h3>" + viewer.curves_fragment([run.id], static=True))
    out.append(viewer.results_fragment(run.id, static=True))
    if episodes > 0:
        newest = run.kind == "train"  # a training run's latest episodes say most about where it got
        page = viewer.episodes(run).page(EpisodeFilter(), 0, episodes, newest=newest)
        if page.total:
            which = "newest first" if newest else "in the order they were written"
            out.append(
                f'<h3>Episodes</h3><p class="muted small">{len(page.items)} of {page.total}, {which}.</p>'
            )
        for item in page.items:
            s = item.summary
            if s is None:
                out.append(f'<p class="error small">line {item.line + 1}: unreadable</p>')
                continue
            mark = '<span class="ok">✓</span>' if s["success"] else '<span class="bad">✗</span>'
            step = f"step {item.step} · " if item.step is not None else ""
            guided = ' <span class="badge guided">guided</span>' if s["guided"] else ""
            detail = viewer.episode_fragment(run.id, f"{item.file}:{item.line}", static=True)
            out.append(
                f'<details class="report-episode" id="{anchor(run.id)}-{item.file}-{item.line}"><summary>'
                f"{mark} {step}line {item.line + 1} · {escape(s['entry'] or s['env'])} · "
                f"{escape(s['task'])} · "
                f"reward {num(s['reward'])} · {s['status']}{guided}</summary>{detail}</details>"
            )
    out.append("</section>")
    return "".join(out)
