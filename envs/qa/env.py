"""``qa/v0``: answer a question; the reward is the task's rubric score.

The shipped set (``data/questions.yaml``) has 50 short factual and explanatory
questions written for agentgym, each with a reference answer, a reference
explanation and a rubric. The agent sees only the question. It answers by calling
``answer(text)`` or by replying in plain text; the episode ends with the answer.

Deterministic criteria are always scored. Judged criteria are scored when the
environment is given a ``judge`` (a policy spec, a :class:`JudgeConfig` mapping, or a
ready :class:`Judge`), otherwise they are skipped and left out of the reward — the
learner's reward pipeline can judge them later in batches. ``info["rubric"]`` holds
per-criterion scores on the last step.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import yaml

from agentgym.core.actions import ToolCall
from agentgym.core.env import TextEnv
from agentgym.core.task import Task, load_tasks, split_of
from agentgym.core.tools import tool
from agentgym.errors import UserError
from agentgym.rewards.criteria import ScoringContext
from agentgym.rewards.rubric import Rubric
from agentgym.rewards.scoring import score_response

DATA = Path(__file__).parent / "data" / "questions.yaml"


@lru_cache(maxsize=8)
def _load(path: str) -> tuple[Task, ...]:
    p = Path(path)
    if not p.exists():
        raise UserError(f"question file {p} does not exist.")
    if p.suffix == ".jsonl":
        tasks = load_tasks(p)
    else:
        rows = yaml.safe_load(p.read_text(encoding="utf-8")) or []
        tasks = [_task(row) for row in rows]
    for t in tasks:
        if t.rubric is None:
            raise UserError(f"task {t.id} in {p} has no rubric; qa/v0 is scored by rubrics only.")
        Rubric.coerce(t.rubric)
    return tuple(tasks)


def _task(row: dict[str, Any]) -> Task:
    reference = {k: row[k] for k in ("answer", "aliases", "solution") if k in row}
    return Task(id=str(row["id"]), inputs={"question": row["question"]}, reference=reference,
                rubric=row.get("rubric"), metadata={"source": "agentgym-qa"})


def questions(split: str | None = None, path: str | Path = DATA) -> list[Task]:
    """The question set (all, or one split by content hash)."""
    tasks = list(_load(str(path)))
    return tasks if split is None else [t for t in tasks if split_of(t.fingerprint()) == split]


class QAEnv(TextEnv):
    """Answer a question in one reply; rewarded by the task's rubric."""

    system_prompt: ClassVar[str] = (
        "Answer the user's question correctly and concisely, with a short explanation when the question asks why. "
        "Give your final answer with the answer tool or as a plain reply."
    )

    def __init__(self, *, data: str | None = None, judge: Any = None, success_threshold: float = 0.5,
                 max_turns: int = 2, **kwargs: Any):
        super().__init__(max_turns=max_turns, **kwargs)
        self.data = str(data or DATA)
        self.all_tasks = list(_load(self.data))
        self.success_threshold = success_threshold
        self._judge_spec = judge
        self._judges: dict[str, Any] = {}
        self._judge_loop: int | None = None

    # ------------------------------------------------------------------ tasks
    def generate_task(self, index: int) -> Task:
        return self.all_tasks[index % len(self.all_tasks)]

    def setup(self, task: Task) -> str:
        question = task.inputs.get("question")
        if not isinstance(question, str):
            raise UserError(f"task {task.id} has no inputs.question.")
        return question

    # ------------------------------------------------------------------ actions
    @tool
    async def answer(self, text: str) -> str:
        """Give your final answer; the episode ends.

        Args:
            text: the answer, with a short explanation if the question asks why.
        """
        assert self.task is not None
        rubric = Rubric.coerce(self.task.rubric)
        ctx = ScoringContext(text, self.task.inputs.get("question", ""), dict(self.task.reference), self.task)
        result = await score_response(rubric, ctx, self._judges_now())
        reward = result.score if result.score is not None else 0.0
        success = result.score is not None and not result.gated and result.score >= self.success_threshold
        self.finish(reward, success, answer=text, rubric=result.to_dict(),
                    rubric_unscored=result.score is None)
        return f"Answer recorded. Score: {reward:.2f}."

    def on_text(self, text: str) -> list[ToolCall] | None:
        """A plain reply is the answer (empty replies are invalid)."""
        return [ToolCall("answer", {"text": text.strip()})] if text.strip() else None

    def oracle_action(self) -> str:
        assert self.task is not None
        return str(self.task.reference.get("solution") or self.task.reference.get("answer", ""))

    # ------------------------------------------------------------------ judging
    def _judges_now(self) -> dict[str, Any]:
        """The configured judge, rebuilt when the event loop changed (policies hold loop-bound sessions)."""
        if self._judge_spec is None:
            return {}
        from agentgym.rewards.judge import Judge, JudgePanel

        if isinstance(self._judge_spec, (Judge, JudgePanel)):
            return {"default": self._judge_spec}
        loop = id(asyncio.get_running_loop())
        if loop != self._judge_loop:
            from agentgym.rewards.pipeline import JudgeConfig, build_judge

            spec = self._judge_spec
            cfg = JudgeConfig(policy=spec) if isinstance(spec, (str, list)) else JudgeConfig.model_validate(spec)
            self._judges = {"default": build_judge(cfg)}
            self._judge_loop = loop
        return self._judges
