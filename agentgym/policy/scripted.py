"""Scripted players for tests and baselines: ``random``, ``oracle`` and ``replay``.

They are :class:`~agentgym.policy.base.ActionSource` s: each turn the rollout engine calls
``act(env, request)`` and they ask the environment through the async env protocol
(``avalid_actions()``, ``aoracle_action()``). They return text (or an assistant message's
tool calls) only: ``token_ids`` and ``logprobs`` are empty.
"""

from __future__ import annotations

import json
import random
import string
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from agentgym.errors import UserError
from agentgym.policy.base import Completion, GenerationRequest

if TYPE_CHECKING:
    from agentgym.core.protocol import AsyncEnv


def completion_of(action: Any) -> Completion:
    """A completion from an env's action: text, or an assistant message (content + tool calls)."""
    if isinstance(action, dict):
        calls = action.get("tool_calls") or None
        return Completion(text=action.get("content") or "", tool_calls=calls,
                          finish_reason="tool_calls" if calls else "stop")
    return Completion(text=str(action))


class _Scripted:
    name: str

    async def close(self) -> None:
        return None


class RandomPolicy(_Scripted):
    """Uniform over ``env.avalid_actions()``; a random short word when the env lists none.

    Seeded by ``seed`` (or by ``params.seed`` per request).
    """

    def __init__(self, seed: int | None = None, name: str = "scripted:random"):
        self.name = name
        self._rng = random.Random(seed)

    async def act(self, env: AsyncEnv, request: GenerationRequest) -> Completion:
        seed = request.params.seed
        rng = self._rng if seed is None else random.Random(seed)
        actions = await env.avalid_actions()
        if actions:
            return Completion(text=rng.choice(list(actions)))
        length = rng.randint(1, 8)
        return Completion(text="".join(rng.choice(string.ascii_lowercase) for _ in range(length)))


class OraclePolicy(_Scripted):
    """``env.aoracle_action()``: the environment's own optimal next action."""

    def __init__(self, name: str = "scripted:oracle"):
        self.name = name

    async def act(self, env: AsyncEnv, request: GenerationRequest) -> Completion:
        action = await env.aoracle_action()
        if action is None:
            raise UserError(f"{type(env).__name__} has no oracle; use another policy (e.g. scripted:random).")
        return completion_of(action)


class ReplayPolicy(_Scripted):
    """Replays recorded actions in order, one cursor per environment.

    ``path`` is a text file with one action per line, or a ``.jsonl`` file whose lines are JSON
    strings or objects with ``"text"`` (or ``"action"``). When the actions run out the
    completion has ``finish_reason="error"``. It is also a :class:`~agentgym.policy.base.Policy`
    (``generate`` replays from one shared cursor): a judge or teacher can be a replay.
    """

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or f"scripted:replay:{path}"
        if not self.path.is_file():
            raise UserError(f"replay file {str(path)!r} does not exist; give a text or JSONL file of actions.")
        self.actions = self._read(self.path)
        self._cursors: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._shared = 0  # the cursor of generate(), which has no env

    @staticmethod
    def _read(path: Path) -> list[str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        if path.suffix != ".jsonl":
            return lines
        actions = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number} is not JSON ({exc.msg}); write one JSON string or object a line.")
            if isinstance(item, dict):
                item = item.get("text", item.get("action"))
            if not isinstance(item, str):
                raise UserError(f"{path}:{number} has no action text; use a JSON string or {{\"text\": ...}}.")
            actions.append(item)
        return actions

    async def act(self, env: AsyncEnv, request: GenerationRequest) -> Completion:
        at = self._cursors.get(env, 0)
        self._cursors[env] = at + 1
        return self._replay(at)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        out = []
        for request in requests:
            out.append([self._replay(self._shared + i) for i in range(max(1, request.params.n))])
            self._shared += max(1, request.params.n)
        return out

    def _replay(self, at: int) -> Completion:
        if at >= len(self.actions):
            return Completion(text="", finish_reason="error", error=f"replay exhausted after {len(self.actions)} actions")
        return Completion(text=self.actions[at])
