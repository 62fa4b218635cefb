"""HTML for eval results: the per-environment table and two runs compared side by side.

Success rates carry their Wilson 95% intervals (from ``agentgym.eval``); a comparison gives B − A
per environment with Newcombe's hybrid score interval and marks the differences whose interval
excludes 0. Inputs are ``results.json`` dicts, read tolerantly: a missing field shows as "–".
"""

from __future__ import annotations

from html import escape
from typing import Any, Sequence

from agentgym.eval.metrics import newcombe_diff
from agentgym.view.pages import ci_bar, num, pct, run_href, success_cell, value
from agentgym.view.runs import Run, Success


def eval_table(results: dict[str, Any]) -> str:
    """Per-environment results of an eval run, with Wilson intervals and pass@k."""
    envs = results.get("envs") if isinstance(results.get("envs"), dict) else {}
    rows = [(name, m) for name, m in envs.items() if isinstance(m, dict)]
    if isinstance(results.get("overall"), dict):
        rows.append(("overall", results["overall"]))
    if not rows:
        return '<p class="muted">No results yet: results.json is written when the evaluation ends.</p>'
    passks = sorted(
        {k for _, m in rows for k in m if k.startswith("pass@") and k[5:].isdigit()}, key=lambda k: int(k[5:])
    )
    head = [
        "env",
        "episodes",
        "success (95% CI)",
        "mean reward",
        *passks,
        "turns",
        "tokens",
        "invalid actions",
        "failed",
        "s / episode",
    ]
    out = [
        '<table class="grid eval-table"><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
    ]
    for name, m in rows:
        rate = value(m.get("success_rate"))
        low, high = (m.get("success_ci95") or [rate, rate])[:2]
        success = (
            Success(rate, float(low), float(high), int(m.get("episodes") or 0), name)
            if rate is not None
            else None
        )
        cls = ' class="overall"' if name == "overall" else ""
        out.append(
            f"<tr{cls}><td>{escape(name)}</td><td>{m.get('episodes', '–')}</td>{success_cell(success)}"
            f"<td>{num(m.get('mean_reward'))}</td>"
            + "".join(f"<td>{pct(value(m.get(k)))}</td>" for k in passks)
            + f"<td>{num(m.get('mean_turns'))}</td><td>{num(m.get('mean_tokens'))}</td>"
            f"<td>{pct(value(m.get('invalid_action_rate')))}</td><td>{m.get('failed', '–')}</td>"
            f"<td>{num(m.get('mean_episode_s'))}</td></tr>"
        )
    out.append("</tbody></table>")
    if results.get("wall_s") is not None:
        out.append(
            f'<p class="muted small">Suite {escape(str(results.get("suite", "")))}, policy '
            f"{escape(str(results.get('policy', '')))}; wall time {num(results.get('wall_s'))} s. "
            "Intervals are Wilson 95%; pass@k is the unbiased estimator over each task's samples.</p>"
        )
    return "".join(out)


def compare_table(a: Run, ra: dict[str, Any], b: Run, rb: dict[str, Any], *, static: bool = False) -> str:
    """B − A per environment: the success difference with Newcombe's 95% interval, reward and turns."""
    ea, eb = ra.get("envs") or {}, rb.get("envs") or {}
    names = [n for n in ea if n in eb]
    rows = [(n, ea[n], eb[n]) for n in names]
    if isinstance(ra.get("overall"), dict) and isinstance(rb.get("overall"), dict):
        rows.append(("overall", ra["overall"], rb["overall"]))
    out = [
        f'<p>A: <a href="{run_href(a.id, static)}">{escape(a.name)}</a> '
        f"({escape(str(ra.get('policy', '')))}) &nbsp; "
        f'B: <a href="{run_href(b.id, static)}">{escape(b.name)}</a> '
        f"({escape(str(rb.get('policy', '')))})</p>"
    ]
    if not rows:
        out.append('<p class="muted">These runs have no results.json yet (or no environment in common).</p>')
        return "".join(out)
    passks = sorted(
        {k for _, x, y in rows for k in x if k.startswith("pass@") and k in y and k[5:].isdigit()},
        key=lambda k: int(k[5:]),
    )
    head = [
        "env",
        "success A",
        "success B",
        "B − A (95% CI)",
        "",
        "reward B − A",
        "turns B − A",
        *[f"{k} A → B" for k in passks],
    ]
    out.append(
        '<table class="grid compare-table"><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
    )
    for name, x, y in rows:
        try:
            d, low, high = newcombe_diff(
                int(x["successes"]), int(x["episodes"]), int(y["successes"]), int(y["episodes"])
            )
        except (KeyError, TypeError, ValueError):
            continue
        sig = low > 0 or high < 0
        mark = '<span class="badge sig" title="the 95% interval excludes 0">significant</span>' if sig else ""
        cls = ' class="overall"' if name == "overall" else ""
        out.append(
            f"<tr{cls}><td>{escape(name)}</td><td>{pct(value(x.get('success_rate')))}</td>"
            f"<td>{pct(value(y.get('success_rate')))}</td>"
            f"<td>{ci_bar(d, low, high, -1.0, 1.0)} <b>{100 * d:+.1f}</b> "
            f'<span class="muted">[{100 * low:+.1f}, {100 * high:+.1f}]</span></td><td>{mark}</td>'
            f"<td>{_diff(x.get('mean_reward'), y.get('mean_reward'))}</td>"
            f"<td>{_diff(x.get('mean_turns'), y.get('mean_turns'), 2)}</td>"
            + "".join(f"<td>{pct(value(x.get(k)))} → {pct(value(y.get(k)))}</td>" for k in passks)
            + "</tr>"
        )
    out.append("</tbody></table>")
    only = sorted(set(ea) ^ set(eb))
    note = "Differences are in percentage points; intervals are Newcombe's hybrid score intervals."
    if only:
        note += f" In one run only: {', '.join(only)}."
    out.append(f'<p class="muted small">{escape(note)}</p>')
    return "".join(out)


def _diff(a: Any, b: Any, digits: int = 3) -> str:
    a, b = value(a), value(b)
    return "–" if a is None or b is None else f"{b - a:+.{digits}f}"


def compare_picker(eval_runs: Sequence[Run], a: str | None, b: str | None) -> str:
    """Two menus of eval runs; choosing one moves the page to that comparison."""

    def menu(name: str, chosen: str | None) -> str:
        opts = "".join(
            f'<option value="{escape(r.id)}"{" selected" if r.id == chosen else ""}>{escape(r.name)}</option>'
            for r in eval_runs
        )
        return (
            f'<label>{name.upper()}: <select name="{name}" data-action="compare-pick">'
            f'<option value="">choose…</option>{opts}</select></label>'
        )

    return f'<form class="toolbar" id="compare-picker">{menu("a", a)} {menu("b", b)}</form>'
