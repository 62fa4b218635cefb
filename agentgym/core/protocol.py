"""The async environment protocol: the one way anything outside an environment talks to it.

The rollout engine, guidance, scripted players, reward scoring, evaluation and ``play``
reach environments only through :class:`AsyncEnv`, so a local env, a pooled one or a
remote session (a WebSocket client) are interchangeable. The protocol is small:

* ``await env.areset(seed=None, options=None) -> (message, info)``: the first user
  message and the reset info (``task_id``, ``task``, ``system_prompt``, ``tools``,
  ``valid_actions``; see :data:`RESET_INFO_KEYS`). ``options={"task": Task | dict}``
  plays that task.
* ``await env.astep(message) -> StepResult``: ``message`` is the assistant's reply,
  ``{"role": "assistant", "content": str | None, "tool_calls": [...]}`` (plain text
  replies carry content only). The env answers with one user message, or one tool
  message per tool call carrying that call's ``tool_call_id``.
* optional hooks, each answering ``None`` when the env cannot tell: ``aprogress()``
  (progress toward the goal in [0, 1]), ``ahint()`` (guidance text), ``aoracle_action()``
  (an optimal next reply), ``avalid_actions()`` (the replies valid now); and ``aclose()``.

Subclass :class:`AsyncEnv` to inherit those ``None`` defaults; :class:`agentgym.TextEnv`
implements the whole protocol for environments written as typed tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]
"""A chat message in OpenAI format: ``{"role", "content"}`` plus ``tool_calls`` / ``tool_call_id``."""

RESET_INFO_KEYS = ("task_id", "task", "system_prompt", "tools", "valid_actions", "hooks")
"""What ``areset``'s info holds: the task's id and the :class:`~agentgym.core.task.Task` itself
(hidden reference included: for scoring, never shown to the policy), the system prompt, the
OpenAI tool schemas (absent for free-text envs), when the env can list them the valid replies,
and optionally ``hooks``: which of the optional hooks (``OPTIONAL_HOOKS``) the env answers, so
callers skip the others (a remote env saves a round trip per turn); absent means all may answer."""

OPTIONAL_HOOKS = ("progress", "hint", "oracle_action", "valid_actions")

STEP_INFO_KEYS = ("turn", "invalid_action", "invalid_actions", "success", "reason", "valid_actions")
"""What ``StepResult.info`` holds: the 1-based turn, whether this reply was rejected, how many were
so far, on the last step a bool ``success`` (and a ``reason`` when truncated), the valid replies
when the env lists them; envs add their own keys (``progress``, ``answer``...)."""


@dataclass(slots=True)
class StepResult:
    """What one ``astep`` returns: the env's answer messages, the reward, the end flags, info.

    It also unpacks like gymnasium's step tuple, ``obs, reward, terminated, truncated, info =
    result`` (``obs`` the merged :attr:`observation`, the messages in ``info["messages"]``), so
    code written against the gymnasium API reads it unchanged.
    """

    messages: list[Message]
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """Whether the episode is over (terminated or truncated)."""
        return self.terminated or self.truncated

    @property
    def observation(self) -> Message:
        """The answer as one ``{"role", "content"}`` message (several tool messages merged)."""
        return merge_messages(self.messages)

    def __iter__(self):
        return iter((self.observation, self.reward, self.terminated, self.truncated,
                     {**self.info, "messages": self.messages}))


def merge_messages(messages: list[Message]) -> Message:
    """One ``{"role", "content"}`` message for readers that show a single observation.

    A lone message keeps its role and content; several tool messages become one ``tool``
    message whose content labels each result with its tool's name.
    """
    if len(messages) == 1:
        only = messages[0]
        if len(only) == 2 and isinstance(only.get("content"), str) and "role" in only:
            return only  # already one plain message (the common case, on every step)
        return {"role": only.get("role", "user"), "content": only.get("content") or ""}
    parts = [f"[{m.get('name', m.get('role', ''))}] {m.get('content') or ''}" for m in messages]
    role = "tool" if messages and all(m.get("role") == "tool" for m in messages) else "user"
    return {"role": role, "content": "\n\n".join(parts)}


def assistant_message(content: str | None, tool_calls: list[dict[str, Any]] | None = None) -> Message:
    """The assistant message ``astep`` takes: content and, when there are any, tool calls."""
    message: Message = {"role": "assistant", "content": content if content or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


@runtime_checkable
class AsyncEnv(Protocol):
    """A multi-turn text environment driven from asyncio (see the module docstring).

    Implementations never raise on model output: garbage replies give an observation
    saying what was wrong. ``astep`` after the episode ended raises.
    """

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Message, dict]:
        """Start an episode; returns the first user message and the reset info."""
        ...

    async def astep(self, message: Message) -> StepResult:
        """Answer the assistant's ``message``."""
        ...

    async def aprogress(self) -> float | None:
        """Progress of the current state toward the goal, in [0, 1], or None."""
        return None

    async def ahint(self) -> str | None:
        """Guidance for a re-attempt from the current state, or None."""
        return None

    async def aoracle_action(self) -> Message | str | None:
        """An optimal next reply, or None when the env has no oracle."""
        return None

    async def avalid_actions(self) -> list[str] | None:
        """The replies that are valid now, or None when the env cannot list them."""
        return None

    async def aclose(self) -> None:
        """Release what the env holds (sandboxes, connections); idempotent."""
        return None
