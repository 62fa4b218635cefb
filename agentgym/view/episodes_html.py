"""HTML for the list of trajectories: the filter form, one page of the list, the pager.

The list is :mod:`agentgym.view.episodes`' page of summaries; an opened episode is drawn by
:mod:`agentgym.view.episode_html`. Every text from a trajectory (env ids, task ids) is
escaped; the links are the viewer's ``#/run/ID?...`` addresses, which carry the filters,
the page's offset and the episode to open.
"""

from __future__ import annotations

from html import escape
from typing import Sequence
from urllib.parse import urlencode

from agentgym.view.episodes import STATUSES, Item, Page
from agentgym.view.pages import num


def filter_form(envs: Sequence[str], *, train: bool) -> str:
    """The list's filters; ``app.js`` fills in the values from the address and submits them."""

    def choice(name: str, label: str, options: Sequence[tuple[str, str]]) -> str:
        opts = "".join(f'<option value="{escape(v)}">{escape(t)}</option>' for v, t in options)
        return f'<label>{label} <select name="{name}"><option value="">any</option>{opts}</select></label>'

    env_opts = [(e, e) for e in envs]
    step = '<label>step <input name="step" type="number" min="0" step="1" size="5"></label>' if train else ""
    return (
        '<form id="episode-filters" class="filters" autocomplete="off">'
        + choice("env", "env", env_opts)
        + '<label>task <input name="task" type="text" size="14" placeholder="id contains"></label>'
        + choice("success", "success", [("yes", "succeeded"), ("no", "failed")])
        + '<label>reward <input name="rmin" type="number" step="any" size="5" placeholder="min"> to '
        '<input name="rmax" type="number" step="any" size="5" placeholder="max"></label>'
        + choice("guided", "guided", [("yes", "guided"), ("no", "not guided")])
        + choice("status", "status", [(s, s) for s in STATUSES])
        + step
        + _order(train)
        + '<label>text <input name="q" type="search" size="16" placeholder="search the text"></label>'
        '<button type="submit">apply</button> '
        '<button type="button" data-action="clear-filters">clear</button>'
        "</form>"
    )


def _order(train: bool) -> str:
    """Newest first is a training run's default (the latest policy's episodes), oldest an eval's."""
    first, other = ("newest", "oldest") if train else ("oldest", "newest")
    return (
        f'<label>order <select name="order"><option value="">{first} first</option>'
        f'<option value="{other}">{other} first</option></select></label>'
    )


def episode_list(page: Page, run_id: str, query: dict[str, str], *, train: bool) -> str:
    """One page of the list, with links that open an episode and move between pages."""
    shown = f"{page.offset + 1}–{page.offset + len(page.items)}" if page.items else "none"
    notes = [
        f"<b>{page.total}</b> episode{'s' if page.total != 1 else ''}"
        + (" match" if any(query.get(k) for k in query if k != "offset") else ""),
        f"showing {shown}",
    ]
    if page.unreadable:
        notes.append(f"{page.unreadable} unreadable line{'s' if page.unreadable != 1 else ''} skipped")
    if page.pending:
        notes.append("a line is still being written")
    out = [f'<p class="list-notes">{" · ".join(notes)}</p>', _pager(page, run_id, query)]
    head = (["step"] if train else []) + [
        "line",
        "env",
        "task",
        "reward",
        "success",
        "status",
        "guided",
        "turns",
        "tokens",
        "s",
    ]
    out.append(
        '<table class="grid episodes"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
    )
    for item in page.items:
        out.append(_row(item, run_id, query, train))
    out.append("</tbody></table>")
    out.append(_pager(page, run_id, query))
    return "".join(out)


def _row(item: Item, run_id: str, query: dict[str, str], train: bool) -> str:
    href = _href(run_id, {**query, "open": f"{item.file}:{item.line}"})
    step = f"<td>{item.step if item.step is not None else '–'}</td>" if train else ""
    s = item.summary
    if s is None:
        cols = 10
        return (
            f'<tr class="unreadable">{step}<td>{item.line + 1}</td><td colspan="{cols - 1}">'
            "unreadable line (not a trajectory)</td></tr>"
        )
    ok = '<span class="ok">✓</span>' if s["success"] else '<span class="bad">✗</span>'
    guided = '<span class="badge guided">guided</span>' if s["guided"] else ""
    env = s["entry"] or s["env"]
    return (
        f'<tr class="episode-row" data-open="{item.file}:{item.line}" data-success="{int(s["success"])}" '
        f'data-guided="{int(s["guided"])}">{step}<td><a href="{href}">{item.line + 1}</a></td>'
        f'<td>{escape(env)}</td><td class="task" title="{escape(s["task"])}">'
        f'<a href="{href}">{escape(s["task"])}</a></td>'
        f'<td>{num(s["reward"])}</td><td>{ok}</td><td class="status-{s["status"]}">{s["status"]}'
        f"{' (error)' if s['error'] else ''}</td><td>{guided}</td><td>{s['turns']}</td><td>{s['tokens']}</td>"
        f"<td>{_seconds(s['seconds'])}</td></tr>"
    )


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _href(run_id: str, query: dict[str, str]) -> str:
    q = urlencode({k: v for k, v in query.items() if v not in (None, "")})
    return f"#/run/{run_id}" + (f"?{q}" if q else "")


def _pager(page: Page, run_id: str, query: dict[str, str]) -> str:
    if page.total <= page.limit:
        return ""
    pages = (page.total + page.limit - 1) // page.limit
    current = page.offset // page.limit
    base = {k: v for k, v in query.items() if k != "open"}
    wanted = sorted(
        {0, current - 2, current - 1, current, current + 1, current + 2, pages - 1} & set(range(pages))
    )
    links, last = [], -1
    for p in wanted:
        if p > last + 1:
            links.append('<span class="gap">…</span>')
        cls = ' class="current"' if p == current else ""
        links.append(f'<a{cls} href="{_href(run_id, {**base, "offset": str(p * page.limit)})}">{p + 1}</a>')
        last = p

    def link(rel: str, to: int, text: str) -> str:
        return f'<a rel="{rel}" href="{_href(run_id, {**base, "offset": str(to * page.limit)})}">{text}</a>'

    prev = link("prev", current - 1, "‹ previous") if current > 0 else ""
    nxt = link("next", current + 1, "next ›") if current < pages - 1 else ""
    return f'<nav class="pager">{prev} {" ".join(links)} {nxt}</nav>'
