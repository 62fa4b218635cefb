"""HTML for run-level views: the run list, a run's overview, its curves and its evaluations.

Every function returns an HTML fragment built from escaped strings, shared by the live page
(fetched and inserted by ``app.js``) and the static export. ``static=True`` leaves out what needs
the server (checkboxes, menus, links into the live page's router).
"""

from __future__ import annotations

import re
import time
from html import escape
from typing import Any, Iterable, Sequence
from urllib.parse import quote

from agentgym.view.charts import Series, color, line_chart
from agentgym.view.runs import Run, Success, eval_records, train_records

#: Training curves, in the order shown: (metrics key, title).
CURVES: tuple[tuple[str, str], ...] = (
    ("reward/mean", "reward (mean)"),
    ("success/mean", "success"),
    ("kl", "KL to the reference"),
    ("entropy", "entropy"),
    ("clip_fraction", "clip fraction"),
    ("guidance/rate", "guidance rate (groups guided)"),
    ("groups/nonzero_adv_fraction", "groups with non-zero advantage"),
    ("tokens/generated_per_s", "generated tokens / s"),
    ("time/step_s", "wall time per step (s)"),
)
_UNIT_RANGE = {"success/mean", "guidance/rate", "groups/nonzero_adv_fraction", "clip_fraction"}


def pct(x: float | None) -> str:
    """A rate as a percentage with one decimal."""
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x: Any, digits: int = 3) -> str:
    """A number for a table cell; anything that is not one shows as a dash."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"


def when(ts: float | None) -> str:
    """A timestamp as local date and minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "–"


def anchor(run_id: str) -> str:
    """The id of a run's section in the static report."""
    return "run-" + re.sub(r"[^A-Za-z0-9_-]", "-", run_id)


def run_href(run_id: str, static: bool = False) -> str:
    """A link to a run: the live page's route, or the report's section."""
    return f"#{anchor(run_id)}" if static else f"#/run/{quote(run_id, safe='/')}"


def ci_bar(rate: float, low: float, high: float, lo_end: float = 0.0, hi_end: float = 1.0) -> str:
    """A small horizontal bar: the interval shaded, the estimate marked (CSS only)."""
    span = hi_end - lo_end

    def at(v: float) -> float:
        return max(0.0, min(100.0, (v - lo_end) / span * 100))

    zero = f'<span class="zero" style="left:{at(0):.1f}%"></span>' if lo_end < 0 < hi_end else ""
    ci = f"left:{at(low):.1f}%;width:{at(high) - at(low):.1f}%"
    return (
        f'<span class="cibar">{zero}<span class="ci" style="{ci}">'
        f'</span><span class="pt" style="left:{at(rate):.1f}%"></span></span>'
    )


def success_cell(s: Success | None) -> str:
    """A table cell with a success rate, its interval bar and its sample size."""
    if s is None:
        return '<td class="muted">–</td>'
    return (
        f'<td class="success" title="{escape(s.label)}">{ci_bar(s.rate, s.low, s.high)} <b>{pct(s.rate)}</b> '
        f'<span class="muted">[{pct(s.low)}, {pct(s.high)}] n={s.episodes}</span></td>'
    )


def state_badge(overview: dict[str, Any]) -> str:
    """Live (written to lately), finished, or neither: still running slowly, or stopped."""
    if overview.get("live"):
        return '<span class="badge live">live</span>'
    if overview.get("finished"):
        return '<span class="badge done">finished</span>'
    last = overview.get("last_write")
    return f'<span class="badge" title="last written {when(last)}">not finished</span>'


# ----------------------------------------------------------------------------- run list
def run_list(
    rows: Sequence[tuple[Run, dict[str, Any]]], warnings: Sequence[str], *, static: bool = False
) -> str:
    """The table of runs: kind, env, policy, steps, success with CI, when, state."""
    head = ["", "run", "kind", "env", "policy", "steps / episodes", "success (95% CI)", "started", "state"]
    if static:
        head = head[1:]
    out = ['<section class="runs"><h2>Runs</h2>', _warnings(warnings)]
    if not rows:
        out.append('<p class="muted">No runs to show.</p></section>')
        return "".join(out)
    if not static:
        out.append(
            '<form id="run-picker" class="toolbar"><button type="button" data-action="overlay">'
            'overlay curves of the selected runs</button> <button type="button" data-action="compare">'
            "compare two selected eval runs</button></form>"
        )
    out.append(
        '<table class="grid runs-table"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
    )
    for run, ov in rows:
        nested = ' class="nested"' if run.parent else ""
        cells = []
        if not static:
            cells.append(
                f'<td><input type="checkbox" name="pick" value="{escape(run.id)}" '
                f'data-kind="{run.kind}" aria-label="select {escape(run.name)}"></td>'
            )
        steps = ov.get("steps")
        if run.kind == "train":
            total = ov.get("total_steps")
            steps_text = f"{steps} / {total}" if total else str(steps)
        else:
            steps_text = f"{ov.get('episodes', 0)} episodes"
        policy = ov.get("policy") or ""
        cells += [
            f'<td{nested}><a href="{run_href(run.id, static)}">{escape(run.name)}</a></td>',
            f"<td>{run.kind}</td>",
            f"<td>{escape(', '.join(ov.get('envs') or []) or '–')}</td>",
            f'<td class="policy" title="{escape(policy)}">{escape(_short(policy))}</td>',
            f"<td>{escape(steps_text)}</td>",
            success_cell(ov.get("success")),
            f"<td>{when(ov.get('started'))}</td>",
            f"<td>{state_badge(ov)}</td>",
        ]
        out.append(f'<tr data-run="{escape(run.id)}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></section>")
    return "".join(out)


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1) :]


def _warnings(warnings: Iterable[str]) -> str:
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return f'<ul class="warnings">{items}</ul>' if items else ""


# ----------------------------------------------------------------------------- a run's overview
def run_header(run: Run, ov: dict[str, Any], parent: Run | None = None, *, static: bool = False) -> str:
    """A run's facts: kind, path, envs, policy, steps, success, state."""
    facts = [("kind", run.kind), ("path", str(run.path))]
    if run.kind == "train":
        total = ov.get("total_steps")
        facts += [
            ("env", ", ".join(ov["envs"]) or "–"),
            ("policy", ov["policy"] or "–"),
            ("steps", f"{ov['steps']} / {total}" if total else str(ov["steps"])),
        ]
        if ov.get("wall_s"):
            facts.append(("wall time", f"{ov['wall_s']:.0f} s"))
    elif run.kind == "eval":
        facts += [
            ("suite", ov.get("suite") or "–"),
            ("env", ", ".join(ov["envs"]) or "–"),
            ("policy", ov.get("policy") or "–"),
            ("episodes", str(ov.get("episodes", 0))),
        ]
    facts.append(("started", when(ov.get("started"))))
    out = [
        f'<section class="run-head" id="{anchor(run.id) if static else "head"}">'
        f'<h2>{escape(run.name)} {state_badge(ov)}</h2><dl class="facts">'
    ]
    out += [f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts]
    s = ov.get("success")
    if s is not None:
        out.append(
            f"<dt>success</dt><dd>{ci_bar(s.rate, s.low, s.high)} <b>{pct(s.rate)}</b> "
            f"[{pct(s.low)}, {pct(s.high)}], n={s.episodes} ({escape(s.label)})</dd>"
        )
    out.append("</dl>")
    if parent is not None:
        out.append(
            f'<p>Evaluation of the training run <a href="{run_href(parent.id, static)}">'
            f"{escape(parent.name)}</a>.</p>"
        )
    out.append("</section>")
    return "".join(out)


# ----------------------------------------------------------------------------- curves
def curves(
    runs: Sequence[tuple[Run, list[dict[str, Any]]]], extra: Sequence[str] = (), *, static: bool = False
) -> str:
    """Training curves of one or more runs, overlaid, one small chart per metric."""
    metrics = list(CURVES) + [(k, k) for k in extra if k not in dict(CURVES)]
    out = ['<div class="legend">']
    for n, (run, _) in enumerate(runs):
        out.append(f'<span class="key"><i style="background:{color(n)}"></i>{escape(run.name)}</span>')
    out.append(
        '<span class="key muted"><i class="dash"></i>evaluation, 95% CI</span></div><div class="charts">'
    )
    missing = []
    for key, title in metrics:
        series = []
        for n, (run, records) in enumerate(runs):
            train = train_records(records)
            points = [(float(r["step"]), value(r.get(key))) for r in train]
            if any(y is not None for _, y in points):
                series.append(Series(run.name, color(n), points, key=run.id))
            if key == "success/mean":
                evals = [r for r in eval_records(records) if value(r.get("success_rate")) is not None]
                if evals:
                    series.append(
                        Series(
                            f"{run.name} (eval)",
                            color(n),
                            [(float(r["step"]), value(r["success_rate"])) for r in evals],
                            [
                                (
                                    float(r["step"]),
                                    value(r.get("success_ci_low")) or 0.0,
                                    value(r.get("success_ci_high")) or 0.0,
                                )
                                for r in evals
                            ],
                            key=run.id,
                            dashed=True,
                        )
                    )
        if not series:
            missing.append(title)
            continue
        y_range = (0.0, 1.0) if key in _UNIT_RANGE else (None, None)
        out.append(
            f'<figure class="chart-box">{line_chart(title, series, metric=key, y_range=y_range)}</figure>'
        )
    out.append("</div>")
    if missing:
        out.append(
            f'<p class="muted small">Not logged by {"this run" if len(runs) == 1 else "these runs"}: '
            f"{escape(', '.join(missing))}.</p>"
        )
    if not static:
        keys = sorted(
            {
                k
                for _, records in runs
                for r in train_records(records)
                for k, v in r.items()
                if value(v) is not None and k not in ("step",) and k not in dict(metrics)
            }
        )
        if keys:
            options = "".join(f'<option value="{escape(k)}">{escape(k)}</option>' for k in keys)
            out.append(
                f'<p class="small"><label>another metric: <select data-action="add-metric">'
                f'<option value="">choose…</option>{options}</select></label></p>'
            )
    return "".join(out)


def value(v: Any) -> float | None:
    """A finite float from a metrics value, else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return None
    return float(v)


def training_evals(
    run: Run, records: list[dict[str, Any]], children: Sequence[Run], *, static: bool = False
) -> str:
    """The evaluations a training run made (from its metrics), linked to their eval runs."""
    evals = eval_records(records)
    if not evals and not children:
        return ""
    by_name = {c.path.name: c for c in children}
    out = [
        '<h3>Evaluations</h3><table class="grid"><thead><tr><th>step</th><th>when</th>'
        "<th>success (95% CI)</th>"
        "<th>episodes</th><th>mean reward</th><th>run</th></tr></thead><tbody>"
    ]
    linked = set()
    for r in evals:
        step = int(r["step"])
        child = by_name.get(f"{r.get('tag', '')}-step-{step:06d}")
        if child is not None:
            linked.add(child.id)
        rate, low, high = (
            value(r.get("success_rate")),
            value(r.get("success_ci_low")),
            value(r.get("success_ci_high")),
        )
        cell = (
            success_cell(
                Success(
                    rate,
                    low if low is not None else rate,
                    high if high is not None else rate,
                    int(r.get("episodes") or 0),
                    "evaluation",
                )
            )
            if rate is not None
            else "<td>–</td>"
        )
        link = f'<a href="{run_href(child.id, static)}">{escape(child.path.name)}</a>' if child else "–"
        out.append(
            f"<tr><td>{step}</td><td>{escape(str(r.get('tag', '')))}</td>{cell}"
            f"<td>{r.get('episodes', '–')}</td>"
            f"<td>{num(r.get('reward_mean'))}</td><td>{link}</td></tr>"
        )
    for child in children:
        if child.id not in linked:
            out.append(
                f'<tr><td colspan="5" class="muted">(not in metrics yet)</td>'
                f'<td><a href="{run_href(child.id, static)}">{escape(child.path.name)}</a></td></tr>'
            )
    out.append("</tbody></table>")
    return "".join(out)
