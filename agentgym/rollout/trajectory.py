"""Trajectories: the exact record of one episode, shared by eval and training.

Token-in, token-out: ``token_ids`` is the whole sequence the policy saw and produced,
``loss_mask`` is 1 exactly on tokens the policy sampled (0 on prompt, observation and
chat-template tokens), and ``logprobs`` holds the behaviour logprob of each sampled
token (0.0 elsewhere). Each :class:`Turn` records where its sampled tokens sit
(``start``/``end`` into ``token_ids``) so turn-level rewards can be placed on them.
``token_ids`` ends with the last sampled token: the observation that ended the episode is
in ``messages`` and the last turn, never seen by the policy, so not in the tokens.
Text-only policies (scripted, OpenAI chat) leave the token fields empty.

A trajectory carries its :class:`~agentgym.core.task.Task` (hidden reference included, for
scoring: the engine never renders it into a prompt) and, once the scoring pass of
:mod:`agentgym.rewards` ran, its :class:`RewardParts`. ``reward`` stays the environment's
own; :attr:`Trajectory.score` is what the learner trains on.
Trajectories stream to JSONL, one per line, and read back unchanged.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Literal

from agentgym.core.task import Task

Status = Literal["completed", "truncated", "failed"]


@dataclass
class RewardParts:
    """One trajectory's reward by part, filled once by the scoring pass (:mod:`agentgym.rewards`).

    ``total = env_weight * outcome + rubric_weight * rubric - sum(penalties)`` (the rubric term
    only when it was scored). ``progress`` holds per-turn retrospective progress scores: they
    shape turn-level credit in the learner, not the total.
    """

    outcome: float
    rubric: float | None = None
    criteria: dict[str, float | None] = field(default_factory=dict)
    progress: list[float | None] = field(default_factory=list)
    #: How the progress scores came about: "ok", "partial", "unavailable", "unparseable", "error"...
    progress_status: str = ""
    penalties: dict[str, float] = field(default_factory=dict)
    total: float = 0.0


@dataclass
class Turn:
    """One policy action and the environment's answer to it."""

    action: str
    observation: dict[str, Any]
    reward: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    start: int = 0  # first sampled token of this turn in Trajectory.token_ids
    end: int = 0  # one past the last sampled token
    finish_reason: str = "stop"
    generation_s: float = 0.0  # waiting for the policy (batching queue + generation)
    env_s: float = 0.0
    num_tokens: int = 0  # sampled tokens of this turn (also for text-only policies that report them)
    policy_version: int = 0  # the policy version that sampled this turn
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # the reply's calls, with ids

    def assistant_message(self) -> dict[str, Any]:
        """The reply as the environment received it (to replay the turn)."""
        if not self.tool_calls:
            return {"role": "assistant", "content": self.action}
        return {"role": "assistant", "content": self.action or None, "tool_calls": self.tool_calls}


@dataclass
class Trajectory:
    """One episode: messages, exact tokens with masks and logprobs, rewards, outcome."""

    id: str
    env_id: str
    task_id: str
    group_id: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    reward: float = 0.0
    success: bool = False
    status: Status = "completed"
    error: str | None = None
    policy_version: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    task: Task | None = None
    rewards: RewardParts | None = None

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    @property
    def num_sampled_tokens(self) -> int:
        return sum(self.loss_mask)

    @property
    def score(self) -> float:
        """The reward the learner trains on: the scoring pass's total (the env's reward before it ran)."""
        return self.rewards.total if self.rewards is not None else self.reward

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["task"] = self.task.model_dump(mode="json") if self.task is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trajectory":
        """Build from a dict; keys this version does not know are ignored (newer writers)."""
        known = {f.name for f in fields(cls)}
        turn_known = {f.name for f in fields(Turn)}
        parts_known = {f.name for f in fields(RewardParts)}
        data = {k: v for k, v in data.items() if k in known}
        data["turns"] = [Turn(**{k: v for k, v in t.items() if k in turn_known}) for t in data.get("turns", [])]
        if data.get("task") is not None:
            data["task"] = Task.model_validate(data["task"])
        if data.get("rewards") is not None:
            data["rewards"] = RewardParts(**{k: v for k, v in data["rewards"].items() if k in parts_known})
        return cls(**data)


def jsonable(value: Any) -> Any:
    """A JSON-safe copy (numpy scalars, sets and other objects become plain values or strings).

    Called on every turn's info: a value JSON holds as it is (str-keyed dicts, lists, plain
    scalars) is copied directly, at a tenth of the cost of the JSON round trip the rest takes.
    """
    copied = _copy_plain(value)
    return copied if copied is not _NOT_PLAIN else json.loads(json.dumps(value, default=_plain))


_NOT_PLAIN = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy_plain(value: Any) -> Any:
    """A copy of ``value`` when a JSON round trip would give it back unchanged, else ``_NOT_PLAIN``."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            item = _copy_plain(item)
            if item is _NOT_PLAIN:
                return _NOT_PLAIN
            out[key] = item
        return out
    if kind is list:
        items = [_copy_plain(item) for item in value]
        return _NOT_PLAIN if any(item is _NOT_PLAIN for item in items) else items
    return _NOT_PLAIN


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return str(obj)


def write_jsonl(trajectories: list[Trajectory], path: str | Path, append: bool = True) -> None:
    """Append (or write) trajectories to a JSONL file, flushing each line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as fh:
        for traj in trajectories:
            fh.write(json.dumps(traj.to_dict(), ensure_ascii=False) + "\n")
            fh.flush()


def read_jsonl(path: str | Path) -> Iterator[Trajectory]:
    """Read trajectories back; a torn last line (crash mid-write) is skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            yield Trajectory.from_dict(data)


class JsonlSink:
    """Streams finished trajectories to a JSONL file (one line each, flushed), off the event loop."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock: asyncio.Lock | None = None

    async def __call__(self, traj: Trajectory) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await asyncio.to_thread(write_jsonl, [traj], self.path)
