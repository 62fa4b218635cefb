"""``agentgym trajectories show FILE``: read a trajectory turn by turn.

The model's replies and the environment's answers are told apart by labels and, on a
terminal, by colour (``--color`` overrides; ``NO_COLOR`` is honoured).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterable, TextIO

from agentgym.errors import UserError
from agentgym.rollout.trajectory import Trajectory, read_jsonl

_COLOURS = {"model": "36", "env": "33", "system": "35", "meta": "2", "good": "32", "bad": "31", "head": "1"}


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="traj_command", metavar="{show}")
    show = sub.add_parser("show", help="print trajectories turn by turn")
    show.add_argument("file", type=Path, help="a trajectories JSONL file (e.g. from `agentgym eval`)")
    pick = show.add_mutually_exclusive_group()
    pick.add_argument("-i", "--index", type=int, default=0, help="which trajectory (0-based line; default 0)")
    pick.add_argument("--id", help="the trajectory with this id (a prefix is enough)")
    pick.add_argument("--task", help="trajectories of this task id")
    pick.add_argument("--failed", action="store_true", help="trajectories that failed or did not succeed")
    pick.add_argument("--all", action="store_true", help="every trajectory in the file")
    show.add_argument("--limit", type=int, default=20, help="at most this many trajectories (default 20)")
    show.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    show.add_argument("--max-chars", type=int, default=4000, help="cut messages longer than this (0: never)")
    show.set_defaults(func=show_command)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def show_command(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise UserError(f"{args.file} does not exist; pass a trajectories JSONL file.")
    trajs = list(read_jsonl(args.file))
    if not trajs:
        raise UserError(f"{args.file} holds no trajectories.")
    chosen = select(trajs, index=None if (args.id or args.task or args.failed or args.all) else args.index,
                    id=args.id, task=args.task, failed=args.failed)
    if not chosen and args.failed and not (args.id or args.task):  # good news, not a mistake
        print(f"No failed or unsuccessful trajectories in {args.file}: all {len(trajs)} succeeded.")
        return 0
    if not chosen:
        raise UserError("no trajectory matches; drop the filter or check the id.")
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
    try:
        for traj in chosen[: max(1, args.limit)]:
            render(traj, sys.stdout, colour=colour, max_chars=args.max_chars)
        if len(chosen) > args.limit:
            print(f"... {len(chosen) - args.limit} more (raise --limit)")
        sys.stdout.flush()
    except BrokenPipeError:  # piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def select(
    trajs: list[Trajectory], *, index: int | None = 0, id: str | None = None, task: str | None = None, failed: bool = False
) -> list[Trajectory]:
    if id:
        return [t for t in trajs if t.id.startswith(id)]
    if task:
        return [t for t in trajs if t.task_id == task]
    if failed:
        return [t for t in trajs if t.status == "failed" or not t.success]
    if index is not None:
        if not -len(trajs) <= index < len(trajs):
            raise UserError(f"--index {index} is out of range; the file holds {len(trajs)} trajectories.")
        return [trajs[index]]
    return trajs


def render(traj: Trajectory, out: TextIO, *, colour: bool = False, max_chars: int = 4000) -> None:
    """Print one trajectory: header, opening messages, then each turn's action and observation."""

    def paint(kind: str, text: str) -> str:
        return f"\033[{_COLOURS[kind]}m{text}\033[0m" if colour else text

    def block(label: str, kind: str, text: Any) -> None:
        body = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
        if max_chars and len(body) > max_chars:
            body = body[:max_chars] + f" ... [{len(body) - max_chars} more characters]"
        out.write(paint(kind, label) + "\n")
        out.write(paint(kind, textwrap.indent(body, "  ") if body else "  (empty)") + "\n")

    outcome = paint("good", "success") if traj.success else paint("bad", "no success")
    out.write(paint("head", f"=== {traj.env_id}  task {traj.task_id}  trajectory {traj.id[:12]}") + "\n")
    timings = "  ".join(f"{k} {v:.2f}" for k, v in traj.timings.items())
    out.write(
        f"{outcome}  status {traj.status}  reward {traj.reward:.3f}  turns {traj.num_turns}  "
        f"sampled tokens {traj.num_sampled_tokens or sum(t.num_tokens for t in traj.turns)}  "
        f"policy v{traj.policy_version}\n"
    )
    if timings:
        out.write(paint("meta", f"timings (s): {timings}") + "\n")
    if traj.error:
        out.write(paint("bad", f"error: {traj.error}") + "\n")
    guidance = traj.metadata.get("guidance")
    if guidance:
        out.write(paint("meta", f"guidance ({guidance.get('kind')}, {guidance.get('mode')}): {guidance.get('text')}") + "\n")
    opening = _opening(traj.messages, len(traj.turns))
    for message in opening:
        role = message.get("role", "?")
        block(f"[{role}]", "system" if role == "system" else "env", message.get("content", ""))
    for n, turn in enumerate(traj.turns, 1):
        out.write(paint("head", f"--- turn {n}") + "\n")
        extra = f" ({turn.finish_reason})" if turn.finish_reason != "stop" else ""
        calls = "\n".join(f"-> {c['function']['name']}({c['function'].get('arguments', '')})  [{c.get('id')}]"
                          for c in turn.tool_calls if isinstance(c.get("function"), dict))
        block(f"model{extra}:", "model", "\n".join(p for p in (turn.action, calls) if p))
        flags = [f"reward {turn.reward:+.3f}"]
        if turn.info.get("invalid_action"):
            flags.append("invalid action")
        flags.append(f"gen {turn.generation_s:.2f}s env {turn.env_s:.2f}s")
        block(f"env [{turn.observation.get('role', 'user')}] ({', '.join(flags)}):", "env", turn.observation.get("content", ""))
    if traj.metadata.get("truncation"):
        out.write(paint("meta", f"truncated: {traj.metadata['truncation']}") + "\n")
    out.write("\n")


def _opening(messages: Iterable[dict], turns: int) -> list[dict]:
    """The messages before the first assistant reply (system prompt, task, guidance)."""
    opening = []
    for message in messages:
        if message.get("role") == "assistant":
            break
        opening.append(message)
    return opening
