"""One trajectory, as the page shows it: turns with their replies, tool calls and observations.

Built from the plain JSON of a line, so any writer's trajectories show: keys this version does
not know are kept in "other metadata", missing ones get defaults. A turn pairs the assistant
message with the messages that answer it (one observation, or one ``tool`` message per tool call
with its ``tool_call_id``), and the turn record's reward, progress score, timing and token count.
The task's ``reference`` is the hidden answer: it is left out unless ``reveal`` is asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from agentgym.view.episodes import as_dict, as_list, content_text, number

# Metadata keys shown elsewhere on the page, or too bulky to be worth showing.
_SHOWN_META = {"guidance", "guided", "traceback", "unguided_prompt_ids", "eval"}


@dataclass
class ToolCall:
    """One OpenAI-style tool call of an assistant message."""

    id: str
    name: str
    arguments: str  # pretty-printed JSON when it parses, else as written


@dataclass
class Message:
    """A chat message as shown: text content, tool calls, the tool call it answers."""

    role: str
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    name: str = ""


@dataclass
class TurnView:
    """One turn: the reply, what answered it, and the turn record's numbers."""

    number: int
    reply: Message | None
    observations: list[Message]
    reward: float | None = None
    progress: float | None = None
    invalid: bool = False
    finish_reason: str = ""
    generation_s: float | None = None
    env_s: float | None = None
    tokens: int | None = None
    policy_version: int | None = None
    reward_parts: Any = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class EpisodeView:
    """Everything the episode page shows, with defaults for what a writer left out."""

    id: str
    env_id: str
    task_id: str
    group_id: str
    reward: float | None
    success: bool
    status: str
    error: str
    traceback: str
    policy_version: int | None
    timings: dict[str, float]
    guided: bool
    guidance: dict[str, Any] | None
    opening: list[Message]
    turns: list[TurnView]
    task: dict[str, Any] | None  # without its reference unless revealed
    has_reference: bool
    reference: Any
    reward_parts: Any
    sampled_tokens: int
    total_tokens: int
    metadata: dict[str, Any]


def message_of(raw: Any) -> Message:
    """A chat message from any dict (OpenAI format, content parts, tool calls, tool results)."""
    raw = as_dict(raw)
    calls = []
    for n, call in enumerate(as_list(raw.get("tool_calls"))):
        call = as_dict(call)
        fn = as_dict(call.get("function")) or call
        calls.append(
            ToolCall(
                str(call.get("id") or f"call {n + 1}"),
                str(fn.get("name") or "?"),
                pretty_json(fn.get("arguments")),
            )
        )
    return Message(
        role=str(raw.get("role") or "?"),
        content=content_text(raw.get("content")),
        tool_calls=calls,
        tool_call_id=str(raw.get("tool_call_id") or ""),
        name=str(raw.get("name") or ""),
    )


def pretty_json(value: Any) -> str:
    """Arguments as a person reads them: parsed and indented when they are JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
        if isinstance(value, str):
            return value
    return json.dumps(value, indent=1, ensure_ascii=False)


def episode_view(data: Mapping[str, Any], *, reveal: bool = False) -> EpisodeView:
    """The page's view of one trajectory (``data``: the parsed JSON line)."""
    meta = as_dict(data.get("metadata"))
    messages = [m for m in as_list(data.get("messages")) if isinstance(m, dict)]
    records = [as_dict(t) for t in as_list(data.get("turns"))]
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    opening = [message_of(m) for m in messages[:first]]
    segments: list[list[dict]] = []
    for m in messages[first:]:
        if m.get("role") == "assistant" or not segments:
            segments.append([m])
        else:
            segments[-1].append(m)
    turns = [
        _turn(n, segments[n] if n < len(segments) else None, records[n] if n < len(records) else {})
        for n in range(max(len(segments), len(records)))
    ]
    task = as_dict(data.get("task")) or None
    has_reference = bool(task) and "reference" in task
    reference = task.get("reference") if task and reveal else None
    if task is not None:
        task = {k: v for k, v in task.items() if k != "reference"}
    mask = as_list(data.get("loss_mask"))
    sampled = sum(1 for m in mask if m) or sum(t.tokens or 0 for t in turns)
    guidance = as_dict(meta.get("guidance")) or None
    return EpisodeView(
        id=str(data.get("id") or ""),
        env_id=str(data.get("env_id") or ""),
        task_id=str(data.get("task_id") or (task or {}).get("id") or ""),
        group_id=str(data.get("group_id") or ""),
        reward=number(data.get("reward"), None),
        success=bool(data.get("success")),
        status=str(data.get("status") or "completed"),
        error=str(data.get("error") or ""),
        traceback=str(meta.get("traceback") or ""),
        policy_version=_int(data.get("policy_version")),
        timings={k: v for k, v in as_dict(data.get("timings")).items() if number(v, None) is not None},
        guided=bool(meta.get("guided") or guidance),
        guidance=guidance,
        opening=opening,
        turns=turns,
        task=task,
        has_reference=has_reference,
        reference=reference,
        reward_parts=data.get("reward_parts"),
        sampled_tokens=int(sampled),
        total_tokens=len(as_list(data.get("token_ids"))),
        metadata={k: v for k, v in meta.items() if k not in _SHOWN_META},
    )


def _turn(n: int, segment: list[dict] | None, record: dict[str, Any]) -> TurnView:
    if segment is not None:
        reply = message_of(segment[0]) if segment[0].get("role") == "assistant" else None
        answers = segment[1:] if reply is not None else segment
        observations = [message_of(m) for m in answers]
    else:  # no messages were recorded: the turn record alone
        reply = Message("assistant", str(record.get("action") or "")) if "action" in record else None
        observations = (
            [message_of(record["observation"])] if isinstance(record.get("observation"), dict) else []
        )
    info = as_dict(record.get("info"))
    start, end = _int(record.get("start")), _int(record.get("end"))
    tokens = _int(record.get("num_tokens"))
    if not tokens and start is not None and end is not None and end > start:
        tokens = end - start
    return TurnView(
        number=n + 1,
        reply=reply,
        observations=observations,
        reward=number(record.get("reward"), None),
        progress=number(info.get("progress"), None),
        invalid=bool(info.get("invalid_action")),
        finish_reason=str(record.get("finish_reason") or ""),
        generation_s=number(record.get("generation_s"), None),
        env_s=number(record.get("env_s"), None),
        tokens=tokens,
        policy_version=_int(record.get("policy_version")),
        reward_parts=record.get("reward_parts"),
        info={k: v for k, v in info.items() if k not in ("progress", "invalid_action")},
    )


def _int(value: Any) -> int | None:
    value = number(value, None)
    return int(value) if value is not None else None
