"""Score responses against rubrics: local criteria at once, judged ones batched per judge.

:func:`score_responses` is the one place a rubric meets a response. All judged
criteria of all responses in a call go to their judge together, so a training batch
of 64 trajectories x 5 criteria is a few large judge batches, not 320 calls.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Sequence, Union

from agentgym.rewards.aggregate import RubricResult
from agentgym.rewards.criteria import (
    CriterionScore,
    ScoringContext,
    evaluate_local,
    evaluate_local_sync,
    reference_answers,
)
from agentgym.rewards.judge import Judge, JudgeItem, JudgePanel
from agentgym.rewards.rubric import Rubric

JudgeLike = Union[Judge, JudgePanel]


def reference_text(reference: Mapping[str, Any]) -> str:
    """What a judge is shown of a task's hidden reference: the answer(s) and any solution."""
    parts = []
    answers = reference_answers(dict(reference))
    if answers:
        parts.append(" / ".join(answers))
    for key in ("solution", "explanation", "rationale"):
        if isinstance(reference.get(key), str) and reference[key].strip():
            parts.append(reference[key].strip())
    return "\n".join(parts)


def pick_judge(judges: Mapping[str, JudgeLike], name: str) -> JudgeLike | None:
    """The judge called ``name``; ``default`` falls back to the only judge there is."""
    if name in judges:
        return judges[name]
    if name == "default" and len(judges) == 1:
        return next(iter(judges.values()))
    return None


async def score_responses(
    pairs: Sequence[tuple[Rubric, ScoringContext]],
    judges: Mapping[str, JudgeLike] | None = None,
) -> list[RubricResult]:
    """Score each ``(rubric, context)``; judged criteria without a judge are ``skipped``."""
    judges = judges or {}
    table: list[list[CriterionScore | None]] = [[None] * len(r.criteria) for r, _ in pairs]
    local_jobs = []
    wanted: dict[str, list[tuple[int, int, JudgeItem]]] = {}
    for p, (rubric, ctx) in enumerate(pairs):
        ref = reference_text(ctx.reference)
        for c_i, criterion in enumerate(rubric.criteria):
            if not criterion.judged:
                local_jobs.append((p, c_i, evaluate_local(criterion, ctx)))
                continue
            if pick_judge(judges, criterion.judge) is None:
                why = f"no judge named {criterion.judge!r} is configured" if judges else "no judge is configured"
                table[p][c_i] = criterion.result(None, "skipped", why)
                continue
            item = JudgeItem(criterion.text, ctx.response, criterion.scale,
                             ref if criterion.show_reference else "", ctx.question)
            wanted.setdefault(criterion.judge, []).append((p, c_i, item))
    local_scores, judged = await asyncio.gather(
        asyncio.gather(*(job for _, _, job in local_jobs)),
        asyncio.gather(*(pick_judge(judges, name).judge([it for _, _, it in reqs])  # type: ignore[union-attr]
                         for name, reqs in wanted.items())),
    )
    for (p, c_i, _), score in zip(local_jobs, local_scores):
        table[p][c_i] = score
    for reqs, verdicts in zip(wanted.values(), judged):
        for (p, c_i, _), v in zip(reqs, verdicts):
            c = pairs[p][0].criteria[c_i]
            table[p][c_i] = CriterionScore(c.id, c.kind, c.weight, c.hard, v.score, v.status, v.rationale,
                                           v.cached, v.raw if v.status != "ok" else None)
    return [rubric.combine(scores) for (rubric, _), scores in zip(pairs, table)]  # type: ignore[arg-type]


async def score_response(rubric: Rubric, ctx: ScoringContext,
                         judges: Mapping[str, JudgeLike] | None = None) -> RubricResult:
    """Score one response (see :func:`score_responses`)."""
    return (await score_responses([(rubric, ctx)], judges))[0]


def score_local(rubric: Rubric, ctx: ScoringContext) -> RubricResult:
    """Score a rubric's deterministic and verifiable criteria from sync code; judged ones are skipped."""
    scores = [
        evaluate_local_sync(c, ctx) if not c.judged else c.result(None, "skipped", "no judge is configured")
        for c in rubric.criteria
    ]
    return rubric.combine(scores)
