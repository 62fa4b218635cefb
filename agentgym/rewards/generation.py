"""Rubric generation from a task's hidden reference (in the spirit of ExpRL and OpenRubrics).

A generator policy reads the question and the reference solution and writes
task-specific criteria: the final answer, the key intermediate steps, and common
errors (which become penalties). The reference only ever reaches the generator and
later the judge; the agent never sees it. Generators are models and their output is
messy, so parsing accepts JSON in many shapes and falls back to bullet lists; when
nothing usable comes back, the failure is reported and a deterministic rubric built
from the reference answer is used instead (:func:`fallback_rubric`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from agentgym.core.task import Task
from agentgym.policy.base import GenerationRequest, Policy, SamplingParams
from agentgym.rewards.criteria import JudgedCriterion, VerifiableCriterion, reference_answers
from agentgym.rewards.parsing import extract_json
from agentgym.rewards.rubric import Rubric

GENERATOR_SYSTEM = (
    "You write grading rubrics. Given a question and its reference solution, you list the specific, "
    "checkable criteria a correct response must meet, and the mistakes a response is likely to make."
)
GENERATOR_USER = (
    "Question:\n{question}\n\nReference solution (hidden from the person answering):\n{reference}\n\n"
    "Write 3 to 6 criteria as a JSON list. Each item is an object with:\n"
    '  "text": one sentence a grader can check against a response,\n'
    '  "type": "answer" (the final answer), "step" (a key intermediate step or fact) or "error" (a common mistake),\n'
    '  "weight": an integer from 1 (minor) to 5 (essential).\n'
    "Reply with the JSON list only, for example:\n"
    '[{{"text": "States that the answer is 42", "type": "answer", "weight": 5}}]'
)

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$")
_WEIGHT_TAG = re.compile(r"[\[(]\s*(?:weight\s*[:=]?\s*)?([1-5])\s*[\])]", re.IGNORECASE)
_ERROR_WORDS = re.compile(r"^(?:error|mistake|penalty|penalise|penalize|incorrect)\b\s*[:\-]?\s*", re.IGNORECASE)
MAX_CRITERIA = 10


@dataclass
class GenerationResult:
    """The rubric built for one task, and whether it came from the generator."""

    task_id: str
    rubric: Rubric
    source: str  # "generated" or "fallback"
    error: str | None = None
    raw: str | None = None

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"task_id": self.task_id, "source": self.source, "rubric": self.rubric.to_dict()}
        if self.error:
            row["error"] = self.error
        return row


def question_text(task: Task) -> str:
    for key in ("question", "prompt", "instruction", "query", "problem"):
        if isinstance(task.inputs.get(key), str):
            return task.inputs[key]
    return "\n".join(f"{k}: {v}" for k, v in task.inputs.items())


def reference_solution(task: Task) -> str:
    """The reference as the generator sees it: solution/explanation and the short answer."""
    parts = []
    for key in ("solution", "explanation", "rationale"):
        if isinstance(task.reference.get(key), str) and task.reference[key].strip():
            parts.append(task.reference[key].strip())
    answers = reference_answers(task.reference)
    if answers:
        parts.append("Final answer: " + " / ".join(answers))
    return "\n".join(parts)


def parse_criteria(text: str) -> list[dict[str, Any]]:
    """Criteria dicts ``{"text", "type", "weight"}`` from a generator's reply (maybe empty)."""
    data = extract_json(text)
    items: list[Any] = []
    if isinstance(data, dict):
        for key in ("criteria", "rubric", "items", "rubrics"):
            if isinstance(data.get(key), list):
                items = data[key]
                break
    elif isinstance(data, list):
        items = data
    out = [c for c in (_coerce_item(i) for i in items) if c]
    if out:
        return out[:MAX_CRITERIA]
    for line in text.splitlines() if isinstance(text, str) else []:
        m = _BULLET.match(line)
        if m:
            c = _coerce_item(m.group(1))
            if c:
                out.append(c)
    return out[:MAX_CRITERIA]


def _coerce_item(item: Any) -> dict[str, Any] | None:
    kind, weight = "step", 1.0
    if isinstance(item, str):
        text = item
        m = _WEIGHT_TAG.search(text)
        if m:
            weight = float(m.group(1))
            text = _WEIGHT_TAG.sub("", text)
        if _ERROR_WORDS.match(text):
            kind, text = "error", _ERROR_WORDS.sub("", text)
    elif isinstance(item, dict):
        text = next((item[k] for k in ("text", "criterion", "description", "name") if isinstance(item.get(k), str)), "")
        raw_kind = str(item.get("type", item.get("kind", "step"))).lower()
        kind = "error" if raw_kind.startswith(("err", "mistake", "penal", "pitfall")) else (
            "answer" if raw_kind.startswith(("answer", "final")) else "step")
        try:
            weight = float(item.get("weight", item.get("points", 1)))
        except (TypeError, ValueError):
            weight = 1.0
    else:
        return None
    text = " ".join(str(text).split()).strip(" .;:-*\"'")
    if len(text) < 4 or len(text) > 400:
        return None
    weight = min(5.0, max(1.0, abs(weight)))
    return {"text": text, "type": kind, "weight": weight}


def rubric_from_criteria(task: Task, criteria: list[dict[str, Any]], *, answer_check: bool = True) -> Rubric:
    """Judged criteria (errors as penalties), plus a token-F1 check on the short answer if there is one."""
    built: list[Any] = []
    if answer_check and reference_answers(task.reference):
        built.append(VerifiableCriterion(id="answer_f1", check="token_f1", weight=1.0,
                                         description="token F1 against the reference answer"))
    for i, c in enumerate(criteria, 1):
        weight = -c["weight"] if c["type"] == "error" else c["weight"]
        built.append(JudgedCriterion(id=f"{c['type']}{i}", text=c["text"], weight=weight))
    return Rubric(criteria=built, name=f"generated:{task.id}")


def fallback_rubric(task: Task) -> Rubric:
    """A rubric from the reference alone: answer containment and F1, plus one judged agreement check."""
    answers = reference_answers(task.reference)
    criteria: list[Any] = []
    if answers:
        criteria += [
            VerifiableCriterion(id="answer_contained", check="contains_answer", weight=2.0,
                                description="the reference answer appears in the response"),
            VerifiableCriterion(id="answer_f1", check="token_f1", weight=1.0,
                                description="token F1 against the reference answer"),
        ]
    solution = reference_solution(task)
    if solution:
        criteria.append(JudgedCriterion(
            id="agrees_with_reference", weight=2.0,
            text="The response's final answer agrees with the reference answer and does not contradict it.",
        ))
    if not criteria:
        raise ValueError(f"task {task.id} has no reference answer or solution to build a rubric from")
    return Rubric(criteria=criteria, name=f"fallback:{task.id}")


async def generate_rubrics(
    tasks: Sequence[Task],
    generator: Policy,
    *,
    params: SamplingParams | None = None,
    batch_size: int = 8,
    answer_check: bool = True,
) -> list[GenerationResult]:
    """One rubric per task; failed generations are reported and replaced by :func:`fallback_rubric`."""
    params = params or SamplingParams(temperature=0.0, max_tokens=512)
    results: list[GenerationResult] = []
    for start in range(0, len(tasks), batch_size):
        chunk = list(tasks[start: start + batch_size])
        requests = [
            GenerationRequest(messages=[
                {"role": "system", "content": GENERATOR_SYSTEM},
                {"role": "user", "content": GENERATOR_USER.format(question=question_text(t),
                                                                   reference=reference_solution(t) or "(none)")},
            ], params=params)
            for t in chunk
        ]
        try:
            outputs = await generator.generate(requests)
            error = None
        except Exception as exc:  # the generator backend failing must not lose the other tasks
            outputs, error = [[] for _ in chunk], f"{type(exc).__name__}: {exc}"
        for task, options in zip(chunk, outputs):
            results.append(_one(task, options, error, answer_check))
    return results


def _one(task: Task, options: list[Any], error: str | None, answer_check: bool) -> GenerationResult:
    raw = options[0].text if options else None
    if error is None and options and options[0].error:
        error = options[0].error
    criteria = parse_criteria(raw or "") if error is None else []
    if criteria:
        return GenerationResult(task.id, rubric_from_criteria(task, criteria, answer_check=answer_check),
                                "generated", None, raw)
    if error is None:
        error = "the generator's reply held no usable criteria" if raw else "the generator returned nothing"
    return GenerationResult(task.id, fallback_rubric(task), "fallback", error, raw)
