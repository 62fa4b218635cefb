"""``agentgym train CONFIG [key.sub=value ...] [--resume]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a YAML config (configs/maze.yaml), or a run folder with --resume")
    parser.add_argument(
        "overrides", nargs=argparse.REMAINDER, metavar="KEY=VALUE",
        help="dotted overrides, e.g. trainer.lr=1e-6 rollout.group_size=8 envs.0.kwargs.preset=easy",
    )
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest valid checkpoint in the run folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--print-config", action="store_true",
                        help="check the config (envs built once, policy spec parsed), print it resolved and exit")
    parser.set_defaults(func=run)


_FLAGS = {"--resume": "resume", "--no-progress": "no_progress", "--print-config": "print_config"}


def run(args: argparse.Namespace) -> int:
    from agentgym.errors import UserError, interrupted_exit_code
    from agentgym.train.config import load_config

    overrides = []
    for item in args.overrides:  # flags may also come after the overrides
        flag = _FLAGS.get(item)
        if flag:
            setattr(args, flag, True)
        elif item.startswith("-"):
            raise UserError(f"unknown option {item}; see `agentgym train --help`.")
        else:
            overrides.append(item)
    args.overrides = overrides
    source = Path(args.config)
    if source.is_dir():
        if not (source / "config.yaml").is_file():
            raise UserError(f"{source} is a folder without config.yaml; give a YAML config or a run folder.")
        if not args.resume and not args.print_config:
            raise UserError(f"{source} is a run folder; pass --resume to continue it.")
        source = source / "config.yaml"
    config = load_config(source, args.overrides)
    from agentgym.train.preflight import preflight

    preflight(config, str(source))  # every env built once, the policy spec parsed: before any model loads
    if args.print_config:
        sys.stdout.write(config.to_yaml())
        return 0
    from agentgym.console import show_logs
    from agentgym.train.loop import train

    show_logs()
    try:
        result = train(config, resume=args.resume, progress=False if args.no_progress else None)
    except KeyboardInterrupt as exc:
        print(f"agentgym: interrupted. {_resume_hint(config)}", file=sys.stderr)
        return interrupted_exit_code(exc)
    if result.rank != 0:  # another learner rank under torchrun: rank 0 reports
        return 0
    summary = {"run_dir": str(result.run_dir), "final_step": result.final_step, "wall_s": round(result.wall_s, 1)}
    for record in result.evals:
        summary[f"eval_{record['tag']}_success"] = round(record["success_rate"], 4)
    print(json.dumps(summary))
    return 0


def _resume_hint(config) -> str:
    """How to continue an interrupted run, and from which step."""
    from agentgym.train.checkpoint import list_checkpoints

    checkpoints = list_checkpoints(config.run_path / "checkpoints")
    if not checkpoints:
        return "No checkpoint was written yet; rerunning the same command starts again from step 0."
    return (f"Continue from step {checkpoints[-1][0]} (the newest checkpoint) with "
            f"`agentgym train {config.run_path} --resume`.")
