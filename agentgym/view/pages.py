"""HTML for run-level views: the run list, a run's overview, curves, eval tables, comparisons.

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

from agentgym.eval.metrics import newcombe_diff
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
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x: Any, digits: int = 3) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "–"


def anchor(run_id: str) -> str:
    """The id of a run's section in the static report."""
    return "run-" + re.sub(r"[^A-Za-z0-9_-]", "-", run_id)


def run_href(run_id: str, static: bool = False) -> str:
    return f"#{anchor(run_id)}" if static else f"#/run/{quote(run_id, safe='/')}"


def ci_bar(rate: float, low: float, high: float, lo_end: float = 0.0, hi_end: float = 1.0) -> str:
    """A small horizontal bar: the interval shaded, the estimate marked (CSS only)."""
    span = hi_end - lo_end

    def at(v: float) -> float:
        return max(0.0, min(100.0, (v - lo_end) / span * 100))

    zero = f'<span class="zero" style="left:{at(0):.1f}%"></span>' if lo_end < 0 < hi_end else ""
    return (f'<span class="cibar">{zero}<span class="ci" style="left:{at(low):.1f}%;width:{at(high) - at(low):.1f}%">'
            f'</span><span class="pt" style="left:{at(rate):.1f}%"></span></span>')


def success_cell(s: Success | None) -> str:
    if s is None:
        return '<td class="muted">–</td>'
    return (f'<td class="success" title="{escape(s.label)}">{ci_bar(s.rate, s.low, s.high)} <b>{pct(s.rate)}</b> '
            f'<span class="muted">[{pct(s.low)}, {pct(s.high)}] n={s.episodes}</span></td>')


def state_badge(overview: dict[str, Any]) -> str:
    if overview.get("live"):
        return '<span class="badge live">live</span>'
    if overview.get("finished"):
        return '<span class="badge done">finished</span>'
    return '<span class="badge">stopped</span>'


# ----------------------------------------------------------------------------- run list
def run_list(rows: Sequence[tuple[Run, dict[str, Any]]], warnings: Sequence[str], *, static: bool = False) -> str:
    """The table of runs: kind, env, policy, steps, success with CI, when, state."""
    head = ["", "run", "kind", "env", "policy", "steps / episodes", "success (95% CI)", "started", "state"]
    if static:
        head = head[1:]
    out = ['<section class="runs"><h2>Runs</h2>', _warnings(warnings)]
    if not rows:
        out.append('<p class="muted">No runs to show.</p></section>')
        return "".join(out)
    if not static:
        out.append('<form id="run-picker" class="toolbar"><button type="button" data-action="overlay">'
                   "overlay curves of the selected runs</button> <button type=\"button\" data-action=\"compare\">"
                   "compare two selected eval runs</button></form>")
    out.append('<table class="grid runs-table"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>")
    for run, ov in rows:
        nested = ' class="nested"' if run.parent else ""
        cells = []
        if not static:
            cells.append(f'<td><input type="checkbox" name="pick" value="{escape(run.id)}" '
                         f'data-kind="{run.kind}" aria-label="select {escape(run.name)}"></td>')
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
    return text if len(text) <= n else "…" + text[-(n - 1):]


def _warnings(warnings: Iterable[str]) -> str:
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return f'<ul class="warnings">{items}</ul>' if items else ""


# ----------------------------------------------------------------------------- a run's overview
def run_header(run: Run, ov: dict[str, Any], parent: Run | None = None, *, static: bool = False) -> str:
    facts = [("kind", run.kind), ("path", str(run.path))]
    if run.kind == "train":
        total = ov.get("total_steps")
        facts += [("env", ", ".join(ov["envs"]) or "–"), ("policy", ov["policy"] or "–"),
                  ("steps", f"{ov['steps']} / {total}" if total else str(ov["steps"]))]
        if ov.get("wall_s"):
            facts.append(("wall time", f"{ov['wall_s']:.0f} s"))
    elif run.kind == "eval":
        facts += [("suite", ov.get("suite") or "–"), ("env", ", ".join(ov["envs"]) or "–"),
                  ("policy", ov.get("policy") or "–"), ("episodes", str(ov.get("episodes", 0)))]
    facts.append(("started", when(ov.get("started"))))
    out = [f'<section class="run-head" id="{anchor(run.id) if static else "head"}">'
           f'<h2>{escape(run.name)} {state_badge(ov)}</h2><dl class="facts">']
    out += [f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts]
    s = ov.get("success")
    if s is not None:
        out.append(f"<dt>success</dt><dd>{ci_bar(s.rate, s.low, s.high)} <b>{pct(s.rate)}</b> "
                   f"[{pct(s.low)}, {pct(s.high)}], n={s.episodes} ({escape(s.label)})</dd>")
    out.append("</dl>")
    if parent is not None:
        out.append(f'<p>Evaluation of the training run <a href="{run_href(parent.id, static)}">'
                   f"{escape(parent.name)}</a>.</p>")
    out.append("</section>")
    return "".join(out)


# ----------------------------------------------------------------------------- curves
def curves(runs: Sequence[tuple[Run, list[dict[str, Any]]]], extra: Sequence[str] = (), *, static: bool = False) -> str:
    """Training curves of one or more runs, overlaid, one small chart per metric."""
    metrics = list(CURVES) + [(k, k) for k in extra if k not in dict(CURVES)]
    out = ['<div class="legend">']
    for n, (run, _) in enumerate(runs):
        out.append(f'<span class="key"><i style="background:{color(n)}"></i>{escape(run.name)}</span>')
    out.append('<span class="key muted"><i class="dash"></i>evaluation, 95% CI</span></div><div class="charts">')
    missing = []
    for key, title in metrics:
        series = []
        for n, (run, records) in enumerate(runs):
            train = train_records(records)
            points = [(float(r["step"]), _value(r.get(key))) for r in train]
            if any(y is not None for _, y in points):
                series.append(Series(run.name, color(n), points, key=run.id))
            if key == "success/mean":
                evals = [r for r in eval_records(records) if _value(r.get("success_rate")) is not None]
                if evals:
                    series.append(Series(
                        f"{run.name} (eval)", color(n), [(float(r["step"]), _value(r["success_rate"])) for r in evals],
                        [(float(r["step"]), _value(r.get("success_ci_low")) or 0.0,
                          _value(r.get("success_ci_high")) or 0.0) for r in evals],
                        key=run.id, dashed=True,
                    ))
        if not series:
            missing.append(title)
            continue
        y_range = (0.0, 1.0) if key in _UNIT_RANGE else (None, None)
        out.append(f'<figure class="chart-box">{line_chart(title, series, metric=key, y_range=y_range)}</figure>')
    out.append("</div>")
    if missing:
        out.append(f'<p class="muted small">Not logged by {"this run" if len(runs) == 1 else "these runs"}: '
                   f"{escape(', '.join(missing))}.</p>")
    if not static:
        keys = sorted({k for _, records in runs for r in train_records(records) for k, v in r.items()
                       if _value(v) is not None and k not in ("step",) and k not in dict(metrics)})
        if keys:
            options = "".join(f'<option value="{escape(k)}">{escape(k)}</option>' for k in keys)
            out.append(f'<p class="small"><label>another metric: <select data-action="add-metric">'
                       f'<option value="">choose…</option>{options}</select></label></p>')
    return "".join(out)


def _value(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return None
    return float(v)


def training_evals(run: Run, records: list[dict[str, Any]], children: Sequence[Run], *, static: bool = False) -> str:
    """The evaluations a training run made (from its metrics), linked to their eval runs."""
    evals = eval_records(records)
    if not evals and not children:
        return ""
    by_name = {c.path.name: c for c in children}
    out = ['<h3>Evaluations</h3><table class="grid"><thead><tr><th>step</th><th>when</th><th>success (95% CI)</th>'
           "<th>episodes</th><th>mean reward</th><th>run</th></tr></thead><tbody>"]
    linked = set()
    for r in evals:
        step = int(r["step"])
        child = by_name.get(f"{r.get('tag', '')}-step-{step:06d}")
        if child is not None:
            linked.add(child.id)
        rate, low, high = _value(r.get("success_rate")), _value(r.get("success_ci_low")), _value(r.get("success_ci_high"))
        cell = (success_cell(Success(rate, low if low is not None else rate, high if high is not None else rate,
                                     int(r.get("episodes") or 0), "evaluation")) if rate is not None else "<td>–</td>")
        link = f'<a href="{run_href(child.id, static)}">{escape(child.path.name)}</a>' if child else "–"
        out.append(f"<tr><td>{step}</td><td>{escape(str(r.get('tag', '')))}</td>{cell}<td>{r.get('episodes', '–')}</td>"
                   f"<td>{num(r.get('reward_mean'))}</td><td>{link}</td></tr>")
    for child in children:
        if child.id not in linked:
            out.append(f'<tr><td colspan="5" class="muted">(not in metrics yet)</td>'
                       f'<td><a href="{run_href(child.id, static)}">{escape(child.path.name)}</a></td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


# ----------------------------------------------------------------------------- eval tables
def eval_table(results: dict[str, Any]) -> str:
    """Per-environment results of an eval run, with Wilson intervals and pass@k."""
    envs = results.get("envs") if isinstance(results.get("envs"), dict) else {}
    rows = [(name, m) for name, m in envs.items() if isinstance(m, dict)]
    if isinstance(results.get("overall"), dict):
        rows.append(("overall", results["overall"]))
    if not rows:
        return '<p class="muted">No results yet: results.json is written when the evaluation ends.</p>'
    passks = sorted({k for _, m in rows for k in m if k.startswith("pass@") and k[5:].isdigit()}, key=lambda k: int(k[5:]))
    head = ["env", "episodes", "success (95% CI)", "mean reward", *passks, "turns", "tokens", "invalid actions",
            "failed", "s / episode"]
    out = ['<table class="grid eval-table"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for name, m in rows:
        rate = _value(m.get("success_rate"))
        low, high = (m.get("success_ci95") or [rate, rate])[:2]
        success = Success(rate, float(low), float(high), int(m.get("episodes") or 0), name) if rate is not None else None
        cls = ' class="overall"' if name == "overall" else ""
        out.append(
            f"<tr{cls}><td>{escape(name)}</td><td>{m.get('episodes', '–')}</td>{success_cell(success)}"
            f"<td>{num(m.get('mean_reward'))}</td>" + "".join(f"<td>{pct(_value(m.get(k)))}</td>" for k in passks)
            + f"<td>{num(m.get('mean_turns'))}</td><td>{num(m.get('mean_tokens'))}</td>"
            f"<td>{pct(_value(m.get('invalid_action_rate')))}</td><td>{m.get('failed', '–')}</td>"
            f"<td>{num(m.get('mean_episode_s'))}</td></tr>"
        )
    out.append("</tbody></table>")
    if results.get("wall_s") is not None:
        out.append(f'<p class="muted small">Suite {escape(str(results.get("suite", "")))}, policy '
                   f'{escape(str(results.get("policy", "")))}; wall time {num(results.get("wall_s"))} s. '
                   "Intervals are Wilson 95%; pass@k is the unbiased estimator over each task's samples.</p>")
    return "".join(out)


def compare_table(a: Run, ra: dict[str, Any], b: Run, rb: dict[str, Any], *, static: bool = False) -> str:
    """B − A per environment: the success difference with Newcombe's 95% interval, reward and turns."""
    ea, eb = ra.get("envs") or {}, rb.get("envs") or {}
    names = [n for n in ea if n in eb]
    rows = [(n, ea[n], eb[n]) for n in names]
    if isinstance(ra.get("overall"), dict) and isinstance(rb.get("overall"), dict):
        rows.append(("overall", ra["overall"], rb["overall"]))
    out = [f'<p>A: <a href="{run_href(a.id, static)}">{escape(a.name)}</a> '
           f'({escape(str(ra.get("policy", "")))}) &nbsp; B: <a href="{run_href(b.id, static)}">{escape(b.name)}</a> '
           f'({escape(str(rb.get("policy", "")))})</p>']
    if not rows:
        out.append('<p class="muted">These runs have no results.json yet (or no environment in common).</p>')
        return "".join(out)
    passks = sorted({k for _, x, y in rows for k in x if k.startswith("pass@") and k in y and k[5:].isdigit()},
                    key=lambda k: int(k[5:]))
    head = ["env", "success A", "success B", "B − A (95% CI)", "", "reward B − A", "turns B − A",
            *[f"{k} A → B" for k in passks]]
    out.append('<table class="grid compare-table"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
               + "</tr></thead><tbody>")
    for name, x, y in rows:
        try:
            d, low, high = newcombe_diff(int(x["successes"]), int(x["episodes"]), int(y["successes"]), int(y["episodes"]))
        except (KeyError, TypeError, ValueError):
            continue
        sig = low > 0 or high < 0
        mark = '<span class="badge sig" title="the 95% interval excludes 0">significant</span>' if sig else ""
        cls = ' class="overall"' if name == "overall" else ""
        out.append(
            f"<tr{cls}><td>{escape(name)}</td><td>{pct(_value(x.get('success_rate')))}</td>"
            f"<td>{pct(_value(y.get('success_rate')))}</td>"
            f"<td>{ci_bar(d, low, high, -1.0, 1.0)} <b>{100 * d:+.1f}</b> "
            f'<span class="muted">[{100 * low:+.1f}, {100 * high:+.1f}]</span></td><td>{mark}</td>'
            f"<td>{_diff(x.get('mean_reward'), y.get('mean_reward'))}</td>"
            f"<td>{_diff(x.get('mean_turns'), y.get('mean_turns'), 2)}</td>"
            + "".join(f"<td>{pct(_value(x.get(k)))} → {pct(_value(y.get(k)))}</td>" for k in passks) + "</tr>"
        )
    out.append("</tbody></table>")
    only = sorted(set(ea) ^ set(eb))
    note = "Differences are in percentage points; intervals are Newcombe's hybrid score intervals."
    if only:
        note += f" In one run only: {', '.join(only)}."
    out.append(f'<p class="muted small">{escape(note)}</p>')
    return "".join(out)


def _diff(a: Any, b: Any, digits: int = 3) -> str:
    a, b = _value(a), _value(b)
    return "–" if a is None or b is None else f"{b - a:+.{digits}f}"


def compare_picker(eval_runs: Sequence[Run], a: str | None, b: str | None) -> str:
    """Two menus of eval runs; choosing one moves the page to that comparison."""

    def menu(name: str, chosen: str | None) -> str:
        opts = "".join(f'<option value="{escape(r.id)}"{" selected" if r.id == chosen else ""}>{escape(r.name)}</option>'
                       for r in eval_runs)
        return f'<label>{name.upper()}: <select name="{name}" data-action="compare-pick"><option value="">choose…</option>{opts}</select></label>'

    return f'<form class="toolbar" id="compare-picker">{menu("a", a)} {menu("b", b)}</form>'
