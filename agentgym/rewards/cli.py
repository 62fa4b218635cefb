"""``agentgym rubrics``: build rubrics for tasks from their hidden references; validate rubric files.

    agentgym rubrics build TASKS.jsonl --generator POLICY --out RUBRICS.jsonl
    agentgym rubrics validate RUBRIC.yaml|RUBRICS.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from agentgym.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rubrics_command", metavar="ACTION")
    build = sub.add_parser("build", help="write one rubric per task with a generator policy",
                           description="Write one rubric per task: a generator policy reads each task's hidden "
                           "reference and writes task-specific criteria. Failed generations are reported and get a "
                           "deterministic fallback rubric built from the reference answer.")
    build.add_argument("tasks", help="task JSONL (one agentgym Task per line, with `reference`)")
    build.add_argument("--generator", required=True, help="policy spec for load_policy (e.g. default, openai:URL)")
    build.add_argument("--out", required=True, help="output JSONL: {task_id, source, rubric[, error]} per line")
    build.add_argument("--batch-size", type=int, default=8)
    build.add_argument("--max-tokens", type=int, default=512)
    build.add_argument("--temperature", type=float, default=0.0)
    build.add_argument("--no-answer-check", action="store_true",
                       help="do not add a token-F1 check on the reference answer to generated rubrics")
    build.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    build.set_defaults(func=run_build)
    validate = sub.add_parser("validate", help="check a rubric file (YAML/JSON rubric or a rubrics JSONL)")
    validate.add_argument("path")
    validate.set_defaults(func=run_validate)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_build(args: argparse.Namespace) -> int:
    from agentgym.core.task import load_tasks
    from agentgym.policy.base import SamplingParams
    from agentgym.rewards.generation import reference_solution

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1.")
    tasks = load_tasks(args.tasks)[: args.limit]
    if not tasks:
        raise UserError(f"{args.tasks} holds no tasks.")
    bare = [t.id for t in tasks if not reference_solution(t)]
    if bare:
        raise UserError(f"{len(bare)} task(s) have no reference answer or solution (first: {bare[0]}); "
                        "add `reference.answer` or `reference.solution`.")
    params = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens)
    results = asyncio.run(_build(tasks, args.generator, params, args.batch_size, not args.no_answer_check))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for r in results:
            fh.write(json.dumps(r.to_row(), ensure_ascii=False) + "\n")
    failed = [r for r in results if r.source == "fallback"]
    for r in failed:
        print(f"rubrics: {r.task_id}: generation failed ({r.error}); used the fallback rubric", file=sys.stderr)
    print(f"wrote {len(results)} rubrics to {out}: {len(results) - len(failed)} generated, {len(failed)} fallback")
    return 0


async def _build(tasks, spec, params, batch_size, answer_check):
    from agentgym.policy import load_policy
    from agentgym.rewards.generation import generate_rubrics

    policy = load_policy(spec)
    try:
        return await generate_rubrics(tasks, policy, params=params, batch_size=batch_size, answer_check=answer_check)
    finally:
        await policy.close()


def run_validate(args: argparse.Namespace) -> int:
    from agentgym.rewards.rubric import Rubric, load_rubric_table

    path = Path(args.path)
    if path.suffix == ".jsonl":
        table = load_rubric_table(path)
        print(f"{path}: {len(table)} valid rubrics")
    else:
        rubric = Rubric.load(path)
        kinds = ", ".join(sorted({c.kind for c in rubric.criteria}))
        print(f"{path}: valid rubric with {len(rubric.criteria)} criteria ({kinds})")
    return 0
