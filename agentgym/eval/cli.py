"""``agentgym eval``: run a suite against a policy; ``agentgym eval compare A B``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from agentgym.errors import UserError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", help="suite name (configs/suites/NAME.yaml) or a YAML path")
    parser.add_argument("--env", action="append", metavar="ID",
                        help="instead of --suite: these environment ids (repeatable), 20 test-split tasks each "
                             "(change with --num-tasks), the env's own arguments")
    parser.add_argument("--policy", help="policy spec, e.g. scripted:oracle, scripted:random, hf:PATH, openai:URL")
    parser.add_argument("-n", "--samples", type=int, help="samples per task (overrides the suite)")
    parser.add_argument("--num-tasks", type=int, help="tasks per environment (overrides the suite)")
    parser.add_argument("--max-turns", type=int, help="turn limit per episode (overrides the suite)")
    parser.add_argument("--out", type=Path, help="run directory (default runs/eval/SUITE__POLICY); reruns resume")
    parser.add_argument("--temperature", type=float, help="sampling temperature (overrides the suite)")
    parser.add_argument("--max-tokens", type=int, help="tokens per reply (overrides the suite)")
    parser.add_argument("--max-batch", type=int, default=64, help="largest batch sent to the policy (default 64)")
    parser.add_argument("--timeout", type=float, help="seconds per episode before it fails (default: no limit)")
    parser.add_argument("--step-timeout", type=float, default=300.0,
                        help="seconds per environment step before the episode fails (default 300)")
    parser.add_argument("--env-concurrency", type=_limit, action="append", metavar="ENV=N",
                        help="at most N episodes of this env id or family at once, e.g. swe=4 (repeatable)")
    parser.add_argument("--env-factory", metavar="SPEC",
                        help="where the environments run: local (default), or remote:ws://HOST:PORT[,ws://...] "
                             "for `agentgym serve-envs` servers (overrides the suite's env_factory)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    sub = parser.add_subparsers(dest="eval_command", metavar="{compare}")
    cmp = sub.add_parser("compare", help="print the differences between two eval runs, with 95%% CIs")
    cmp.add_argument("run_a", type=Path, help="run directory (or its results.json)")
    cmp.add_argument("run_b", type=Path, help="run directory (or its results.json)")
    cmp.set_defaults(func=compare)


def _limit(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected ENV=N with N >= 1, got {text!r}")
    return name, int(value)


def default_out(suite: str, policy: str) -> Path:
    slug = lambda s: re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(s).stem if s.endswith((".yaml", ".yml")) else s).strip("-")
    return Path("runs") / "eval" / f"{slug(suite)}__{slug(policy)}"


def run(args: argparse.Namespace) -> int:
    if bool(args.suite) == bool(args.env) or not args.policy:
        raise UserError("give --suite (or --env ID) and --policy, e.g. `agentgym eval --suite maze_easy --policy "
                        "scripted:oracle` or `agentgym eval --env maze/v0 --policy scripted:oracle`.")
    for flag, value in (("-n", args.samples), ("--num-tasks", args.num_tasks), ("--max-turns", args.max_turns),
                        ("--max-batch", args.max_batch)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1.")
    from agentgym.eval.report import REPORT, SUCCESS_PLOT, TURNS_PLOT
    from agentgym.eval.runner import evaluate
    from agentgym.eval.suite import load_suite
    from agentgym.rollout.config import RolloutConfig

    suite = load_suite(args.suite) if args.suite else env_suite(args.env)
    out = args.out or default_out(args.suite or suite.name, args.policy)
    preflight(suite, args.policy, out, args.env_factory)
    from agentgym.console import show_logs

    show_logs()
    config = RolloutConfig(max_batch=args.max_batch, episode_timeout_s=args.timeout, step_timeout_s=args.step_timeout,
                           env_concurrency=dict(args.env_concurrency or []))
    result = evaluate(
        suite,
        args.policy,
        samples=args.samples,
        num_tasks=args.num_tasks,
        max_turns=args.max_turns,
        out_dir=out,
        config=config,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        progress=not args.no_progress,
        factory=args.env_factory,
    )
    print((out / REPORT).read_text(encoding="utf-8"))
    print(f"Wrote {out}/results.json, {REPORT}, {SUCCESS_PLOT}, {TURNS_PLOT} and trajectories.jsonl.")
    overall = result.results["overall"]
    if overall["failed"]:
        print(f"{overall['failed']} episode(s) failed; see `error` in trajectories.jsonl "
              f"(`agentgym trajectories show {out}/trajectories.jsonl --failed`).", file=sys.stderr)
    return 0


def env_suite(env_ids: list[str]):
    """A suite of the given env ids with the defaults of a suite entry (``--env``)."""
    from agentgym.eval.suite import Suite, SuiteEnv

    name = "+".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", i).strip("-") for i in env_ids)
    try:
        return Suite(name=name, envs=[SuiteEnv(id=i) for i in env_ids])
    except ValueError as exc:
        raise UserError(f"--env: {str(exc).splitlines()[-1].strip()}") from exc


def preflight(suite, policy: str, out: Path, factory_spec: str | None) -> None:
    """Before any model loads: the policy spec parsed, --out writable, every suite env built once
    (:func:`agentgym.core.preflight.check_env`); each failure one line naming the file and key."""
    import asyncio

    from agentgym.core.factory import env_factory
    from agentgym.core.preflight import check_env, check_writable_dir
    from agentgym.policy.load import parse_policy_spec

    try:
        parse_policy_spec(policy)
    except UserError as exc:
        raise UserError(f"--policy: {exc}") from exc
    check_writable_dir(out, where="--out")

    async def check() -> None:
        factory = env_factory(factory_spec or suite.env_factory)
        try:
            for i, entry in enumerate(suite.envs):
                await check_env(factory, entry.id, entry.env_kwargs(), where=f"{suite.source or suite.name}: envs.{i}")
        finally:
            await factory.aclose()

    asyncio.run(check())


def compare(args: argparse.Namespace) -> int:
    from agentgym.eval.report import compare as compare_runs
    from agentgym.eval.report import load_results

    print(compare_runs(load_results(args.run_a), load_results(args.run_b)))
    return 0
