"""Scripted policies for tests and baselines: ``random``, ``oracle`` and ``replay``.

They read the live environment from ``request.env`` (``env.valid_actions()``,
``env.oracle_action()``; gymnasium wrappers are looked through via ``env.unwrapped``) and
return text only: ``token_ids`` and ``logprobs`` are empty.
"""

from __future__ import annotations

import json
import random
import string
import weakref
from pathlib import Path
from typing import Any, Callable, Sequence

from agentgym.errors import UserError
from agentgym.policy.base import Completion, GenerationRequest


def _env_method(env: Any, name: str) -> Callable[[], Any] | None:
    """``env.name`` or, through gymnasium wrappers, ``env.unwrapped.name``."""
    for candidate in (env, getattr(env, "unwrapped", None)):
        method = getattr(candidate, name, None)
        if callable(method):
            return method
    return None


class _Scripted:
    name: str

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        return [[self.act(r, i) for i in range(max(1, r.params.n))] for r in requests]

    def act(self, request: GenerationRequest, index: int) -> Completion:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class RandomPolicy(_Scripted):
    """Uniform over ``env.valid_actions()``; a random short word when the env lists none.

    Seeded by ``seed`` (or by ``params.seed`` per request, ``+ i`` for the i-th of ``n``).
    """

    def __init__(self, seed: int | None = None, name: str = "scripted:random"):
        self.name = name
        self._rng = random.Random(seed)

    def act(self, request: GenerationRequest, index: int) -> Completion:
        seed = request.params.seed
        rng = self._rng if seed is None else random.Random(seed + index)
        method = _env_method(request.env, "valid_actions") if request.env is not None else None
        actions = method() if method else None
        if actions:
            return Completion(text=rng.choice(list(actions)))
        length = rng.randint(1, 8)
        return Completion(text="".join(rng.choice(string.ascii_lowercase) for _ in range(length)))


class OraclePolicy(_Scripted):
    """``env.oracle_action()``: the environment's own optimal next action."""

    def __init__(self, name: str = "scripted:oracle"):
        self.name = name

    def act(self, request: GenerationRequest, index: int) -> Completion:
        if request.env is None:
            raise UserError("the oracle policy needs the environment (request.env); run it through the rollout engine.")
        method = _env_method(request.env, "oracle_action")
        try:
            if method is None:
                raise NotImplementedError
            action = method()
        except NotImplementedError as exc:
            env_name = type(getattr(request.env, "unwrapped", request.env)).__name__
            raise UserError(f"{env_name} has no oracle; use another policy (e.g. scripted:random).") from exc
        if action is None:
            return Completion(text="", finish_reason="error", error="the oracle has no action here")
        return Completion(text=str(action))


class ReplayPolicy(_Scripted):
    """Replays recorded actions in order, one cursor per environment.

    ``path`` is a text file with one action per line, or a ``.jsonl`` file whose lines are JSON
    strings or objects with ``"text"`` (or ``"action"``). When the actions run out the
    completion has ``finish_reason="error"``.
    """

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or f"scripted:replay:{path}"
        if not self.path.is_file():
            raise UserError(f"replay file {str(path)!r} does not exist; give a text or JSONL file of actions.")
        self.actions = self._read(self.path)
        self._cursors: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()
        self._shared = 0  # the cursor for requests without an env (or one that cannot be weak-referenced)

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

    def _next(self, env: Any) -> int:
        key = getattr(env, "unwrapped", env)
        try:
            at = self._cursors.get(key, 0)
            self._cursors[key] = at + 1
        except TypeError:
            at, self._shared = self._shared, self._shared + 1
        return at

    def act(self, request: GenerationRequest, index: int) -> Completion:
        at = self._next(request.env)
        if at >= len(self.actions):
            return Completion(text="", finish_reason="error", error=f"replay exhausted after {len(self.actions)} actions")
        return Completion(text=self.actions[at])
