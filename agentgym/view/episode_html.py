"""HTML for one trajectory: the episode turn by turn, its task and reward parts, its tokens.

All text from a trajectory is model or environment output: it is escaped everywhere and shown in
``<pre>`` blocks, never interpreted. The hidden task reference only appears when the page asks
for it (``reveal``), and the static export never asks. The list of episodes is drawn by
:mod:`agentgym.view.episodes_html`.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from agentgym.view.episode import EpisodeView, Message, TurnView
from agentgym.view.pages import num
from agentgym.view.tokens import TokenView

MAX_CHARS = 20_000  # longer messages are cut on the page (the file keeps everything)
CONTEXT_RUN = 2_000  # longer stretches of context tokens show their two ends


# ----------------------------------------------------------------------------- one episode
def episode_detail(ep: EpisodeView, where: str, *, static: bool = False, step: int | None = None) -> str:
    """One trajectory turn by turn (``where``: ``"FILE:LINE"``, for the buttons)."""
    badges = [
        '<span class="badge ok">success</span>'
        if ep.success
        else '<span class="badge bad">no success</span>',
        f'<span class="badge status-{escape(ep.status)}">{escape(ep.status)}</span>',
    ]
    if ep.guided:
        badges.append('<span class="badge guided">guided</span>')
    facts = [
        ("reward", num(ep.reward)),
        ("turns", str(len(ep.turns))),
        ("sampled tokens", f"{ep.sampled_tokens}" + (f" of {ep.total_tokens}" if ep.total_tokens else "")),
    ]
    if step is not None:
        facts.append(("learner step", str(step)))
    if ep.policy_version is not None:
        facts.append(("policy version", str(ep.policy_version)))
    facts += [("id", ep.id), ("group", ep.group_id or "–")]
    facts += [(k.replace("_s", " (s)"), num(v, 3)) for k, v in ep.timings.items()]
    out = [
        f'<article class="episode" data-where="{escape(where)}"><header><h3>{escape(ep.env_id)} · '
        f'<span class="task-id">{escape(ep.task_id)}</span> {" ".join(badges)}</h3><dl class="facts">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
        + "</dl></header>"
    ]
    if ep.error:
        out.append(f'<div class="error-box"><b>error:</b> <pre>{escape(ep.error)}</pre>')
        if ep.traceback:
            out.append(
                "<details><summary>traceback (recorded in the trajectory)</summary>"
                f"<pre>{escape(ep.traceback)}"
                "</pre></details>"
            )
        out.append("</div>")
    if ep.guidance:
        g = ep.guidance
        how = ", ".join(str(g[k]) for k in ("kind", "mode") if g.get(k)) + (
            ", every turn" if g.get("every_turn") else ""
        )
        out.append(
            f'<div class="guidance"><div class="label">guidance injected ({escape(how)})</div>'
            f"<pre>{escape(str(g.get('text') or ''))}</pre></div>"
        )
    elif ep.guided:
        out.append(
            '<div class="guidance"><div class="label">'
            "guided episode (the guidance text was not recorded)</div></div>"
        )
    if ep.task is not None:
        out.append(_task(ep, static))
    if ep.reward_parts not in (None, {}, []):
        out.append(
            f'<div class="reward-parts"><div class="label">reward parts</div>{kv_html(ep.reward_parts)}</div>'
        )
    if ep.opening:
        out.append(
            '<section class="opening">'
            + "".join(_message(m, opening=True) for m in ep.opening)
            + "</section>"
        )
    out.append('<ol class="turns">' + "".join(_turn(t) for t in ep.turns) + "</ol>")
    if ep.metadata:
        out.append(
            f'<details class="meta"><summary>other metadata</summary><pre>{escape(_json(ep.metadata))}</pre>'
            "</details>"
        )
    if not static:
        out.append(
            '<div class="tokens-box"><button type="button" data-action="tokens">show the loss mask over the '
            "exact tokens</button></div>"
        )
    out.append("</article>")
    return "".join(out)


def _task(ep: EpisodeView, static: bool) -> str:
    task = ep.task or {}
    shown = {k: v for k, v in task.items() if k not in ("id",)}
    out = [
        f'<details class="task-box"><summary>task {escape(str(task.get("id", ep.task_id)))}</summary>'
        f"{kv_html(shown) if shown else ''}"
    ]
    if ep.has_reference:
        if ep.reference is not None:
            out.append(
                f'<div class="reference"><div class="label">hidden reference (revealed)</div>'
                f"<pre>{escape(_json(ep.reference))}</pre></div>"
            )
        elif not static:
            out.append(
                '<p class="small">The reference answer is hidden. <button type="button" data-action="reveal">'
                "show the hidden reference</button></p>"
            )
        else:
            out.append('<p class="small muted">The reference answer is hidden in this report.</p>')
    out.append("</details>")
    return "".join(out)


def _turn(t: TurnView) -> str:
    facts = []
    if t.reward is not None:
        facts.append(f"reward {t.reward:+.3f}")
    if t.progress is not None:
        facts.append(f'<span class="progress">progress {t.progress:.3g}</span>')
    if t.tokens is not None:
        facts.append(f"{t.tokens} tokens")
    if t.generation_s is not None:
        facts.append(f"generation {t.generation_s:.2f} s")
    if t.env_s is not None:
        facts.append(f"env {t.env_s:.2f} s")
    if t.finish_reason and t.finish_reason != "stop":
        facts.append(f"finish: {escape(t.finish_reason)}")
    if t.policy_version is not None:
        facts.append(f"v{t.policy_version}")
    if t.invalid:
        facts.append('<span class="bad">invalid action</span>')
    out = [
        f'<li class="turn" data-turn="{t.number}"><div class="turn-head"><b>turn {t.number}</b> · '
        + " · ".join(facts)
        + "</div>"
    ]
    if t.reply is not None:
        out.append(_message(t.reply))
    out += [_message(m) for m in t.observations]
    if t.reward_parts not in (None, {}, []):
        out.append(
            '<div class="reward-parts small"><div class="label">reward parts</div>'
            f"{kv_html(t.reward_parts)}</div>"
        )
    if t.info:
        out.append(
            '<details class="info small"><summary>step info</summary>'
            f"<pre>{escape(_json(t.info))}</pre></details>"
        )
    out.append("</li>")
    return "".join(out)


def _message(m: Message, opening: bool = False) -> str:
    role = m.role
    if role == "assistant":
        label, cls = "model", "assistant"
    elif role == "tool":
        label, cls = (
            "tool result"
            + (f" ({m.name})" if m.name else "")
            + (f" for {m.tool_call_id}" if m.tool_call_id else ""),
            "observation tool",
        )
    elif opening:
        label, cls = ("system prompt", "system") if role == "system" else (role, "prompt")
    else:
        label, cls = f"observation ({role})", "observation"
    body = _clip(m.content)
    text = f"<pre>{escape(body)}</pre>" if body or not m.tool_calls else ""
    if opening and role == "system" and len(body) > 400:
        text = f"<details><summary>{len(body)} characters</summary>{text}</details>"
    calls = "".join(
        f'<div class="tool-call"><span class="label">tool call</span> <b>{escape(c.name)}</b> '
        f"<code>{escape(c.id)}</code><pre>{escape(_clip(c.arguments))}</pre></div>"
        for c in m.tool_calls
    )
    return f'<div class="msg {cls}"><div class="label">{escape(label)}</div>{text}{calls}</div>'


def _clip(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    return text[:MAX_CHARS] + f"\n… [{len(text) - MAX_CHARS} more characters]"


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, default=str)


def kv_html(value: Any, depth: int = 0) -> str:
    """Any JSON value as nested key/value tables (reward parts, task inputs, step info)."""
    if isinstance(value, dict):
        if not value:
            return "<i>{}</i>"
        rows = "".join(
            f"<tr><th>{escape(str(k))}</th><td>{kv_html(v, depth + 1)}</td></tr>" for k, v in value.items()
        )
        return f'<table class="kv">{rows}</table>'
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value) and depth < 3:
            keys = list(dict.fromkeys(k for v in value for k in v))
            head = "".join(f"<th>{escape(str(k))}</th>" for k in keys)
            body = "".join(
                "<tr>" + "".join(f"<td>{kv_html(v.get(k), depth + 1)}</td>" for k in keys) + "</tr>"
                for v in value
            )
            return f'<table class="kv list"><tr>{head}</tr>{body}</table>'
        return escape(", ".join(num(v) if isinstance(v, float) else _scalar(v) for v in value)) or "<i>[]</i>"
    if isinstance(value, float):
        return escape(num(value, 4))
    return f'<span class="pre">{escape(_clip(_scalar(value)))}</span>'


def _scalar(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


# ----------------------------------------------------------------------------- tokens
def _shown(view: TokenView) -> list[int]:
    """Token positions to draw: all sampled ones; stretches of more than ``CONTEXT_RUN`` context
    tokens keep their ends and give way in the middle to one negative count of what was left out."""
    out: list[int] = []
    n, tokens = 0, view.tokens
    while n < len(tokens):
        end = n
        while end < len(tokens) and tokens[end].mask == tokens[n].mask:
            end += 1
        if tokens[n].mask or end - n <= CONTEXT_RUN:
            out += range(n, end)
        else:
            keep = CONTEXT_RUN // 2
            out += [*range(n, n + keep), -(end - n - 2 * keep), *range(end - keep, end)]
        n = end
    return out


def token_html(view: TokenView) -> str:
    """Every token, sampled ones (mask 1: trained on) marked; hover shows id, log-prob and turn."""
    if not view.tokens:
        return f'<p class="muted">{escape(view.note)}</p>'
    sampled = view.sampled
    out = [
        f'<div class="token-view"><p class="small"><b>{len(view.tokens)}</b> tokens: '
        f'<span class="tok s">{sampled} sampled (loss mask 1, trained on)</span> '
        f'<span class="tok c">{len(view.tokens) - sampled} context '
        "(mask 0: prompt, observations, template)</span>"
        f' · {escape(view.note)}</p><div class="tokens">'
    ]
    turn = None
    for n in _shown(view):
        if n < 0:  # a long stretch of context tokens, cut in the middle
            out.append(f'<span class="turn-mark elided">… {-n} context tokens …</span>')
            continue
        t = view.tokens[n]
        if t.turn is not None and t.turn != turn:
            out.append(f'<span class="turn-mark">turn {t.turn}</span>')
        turn = t.turn if t.turn is not None else turn
        title = (
            f"#{n} id {t.id}"
            + (f" · logp {t.logprob:.3f}" if t.logprob is not None else "")
            + f" · mask {t.mask}"
        )
        text = t.text.replace("\n", "↵\n") if t.text else "∅"
        out.append(f'<span class="tok {"s" if t.mask else "c"}" title="{title}">{escape(text)}</span>')
    out.append("</div></div>")
    return "".join(out)
