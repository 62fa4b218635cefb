"""The teacher provider: a policy reads the failed attempt and the hidden reference and writes a plan.

Its text is filtered before any student sees it: every occurrence of a reference answer is
redacted (or the plan dropped, ``answer_filter="drop"``); if one survives redaction the plan
is dropped. The teacher's own prompt holds the reference and never enters a trained context.
"""

from __future__ import annotations

import asyncio

from agentgym.core.task import Task
from agentgym.guidance.config import ReferenceConfig, TeacherConfig
from agentgym.guidance.providers import FailedGroup, reference_solution, shorten
from agentgym.guidance.redaction import answer_strings, redact_answers
from agentgym.policy.base import GenerationRequest, Policy, SamplingParams
from agentgym.rewards.verifiable import contains_answer


TEACHER_SYSTEM = (
    "You are a teacher. A student attempted a task and failed. You see the student's attempt and a "
    "reference solution the student cannot see. Write brief, concrete advice (a plan or a critique) that "
    "helps the student succeed on their own. Never reveal the reference solution or the final answer."
)
TEACHER_USER = (
    "Task:\n<<<\n{task}\n>>>\n\nThe student's failed attempt:\n{attempt}\n\n"
    "Reference solution (hidden from the student, do not quote it): {reference}\n\n"
    "Write at most four sentences of advice for the next attempt."
)


class TeacherProvider:
    """A policy writes a plan from the failed attempt and the hidden reference; the answer is filtered."""

    kind = "plan"

    def __init__(self, policy: Policy, config: TeacherConfig | None = None, reference: ReferenceConfig | None = None):
        self.policy = policy
        self.config = config or TeacherConfig()
        self.reference = reference or ReferenceConfig(start=1.0)
        self.stats = {"requests": 0, "redacted": 0, "dropped": 0, "errors": 0}

    def prompt(self, failed: FailedGroup) -> list[dict[str, str]]:
        best = failed.best
        attempt = "(no steps)"
        if best is not None:
            attempt = "\n".join(
                f"{i}. {shorten(t.action, 120)} -> {shorten(t.observation.get('content'), 160)}"
                for i, t in enumerate(best.turns[:12], 1)
            )
        steps = reference_solution(failed.task, self.reference.model_copy(update={"key": None}))
        reference = " ".join(steps) if steps else "(none)"
        first = next((m for m in (best.messages if best else []) if m.get("role") == "user"), {})
        task_text = shorten(first.get("content") or failed.task.inputs, 1500)
        user = TEACHER_USER.format(task=task_text, attempt=attempt, reference=shorten(reference, 1500))
        return [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": user}]

    async def provide(self, failed: FailedGroup) -> str | None:
        c = self.config
        request = GenerationRequest(
            messages=self.prompt(failed), params=SamplingParams(temperature=c.temperature, max_tokens=c.max_tokens)
        )
        self.stats["requests"] += 1
        try:
            (options,) = await asyncio.wait_for(self.policy.generate([request]), c.timeout_s)
        except Exception:  # a teacher failure only means no teacher guidance for this group
            self.stats["errors"] += 1
            return None
        if not options or options[0].error:
            self.stats["errors"] += 1
            return None
        return self.filter(options[0].text, failed.task)

    def filter(self, text: str, task: Task) -> str | None:
        """Redact (or drop on) reference answers; drop if one still shows after redaction."""
        text = (text or "").strip()
        answers = answer_strings(task, self.config.answer_keys)
        if not text:
            return None
        leaked = any(contains_answer(text, a) for a in answers)
        if leaked and self.config.answer_filter == "drop":
            self.stats["dropped"] += 1
            return None
        if leaked:
            text, n = redact_answers(text, answers)
            self.stats["redacted"] += n
            if any(contains_answer(text, a) for a in answers):
                self.stats["dropped"] += 1
                return None
        return text or None
