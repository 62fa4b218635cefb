"""``agentgym serve-policy POLICY``: any local policy as an OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse
import asyncio
import sys

from agentgym.policy.load import SPEC_HELP


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", help=f"the policy to serve: {SPEC_HELP}")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--served-model-name", default=None,
                        help="the model name clients use (default: the policy spec)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentgym.errors import UserError
    from agentgym.policy.load import parse_policy_spec

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port: give a number from 1 to 65535 (0 picks a free one).")
    parse_policy_spec(args.policy)  # a bad spec fails before anything loads
    asyncio.run(_serve(args))
    return 0


async def _serve(args: argparse.Namespace) -> None:
    from agentgym.errors import UserError
    from agentgym.policy.load import load_policy
    from agentgym.policy.server import start_server

    policy = load_policy(args.policy)
    name = args.served_model_name or args.policy
    try:
        runner = await start_server(policy, args.host, args.port, name)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); choose another --port.") from exc
    print(f"agentgym: serving {name} at http://{args.host}:{args.port}/v1 (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await policy.close()
