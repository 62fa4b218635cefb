"""``agentgym play ID``: a person (or a scripted policy) plays any text environment.

Type the reply a model would give. Lines starting with ``:`` are commands:
``:hint`` asks the environment for guidance, ``:oracle`` shows the oracle's move,
``:valid`` lists valid actions, ``:tools`` shows tool schemas, ``:reset`` starts a new
episode, ``:quit`` leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from agentgym.core.actions import reply_message, tool_params
from agentgym.errors import UserError

HELP = ":hint  :oracle  :valid  :tools  :reset  :quit"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env_id", help="environment id, e.g. maze/v0")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    parser.add_argument("--split", choices=["train", "test"], default="train", help="task split to draw from")
    parser.add_argument(
        "--policy", default=None, help="let a policy play instead of you, e.g. scripted:oracle or scripted:random"
    )
    parser.add_argument("--episodes", type=int, default=1, help="episodes to play with --policy (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="environment argument, e.g. --set preset=hard (repeatable; values parsed as JSON when possible)")
    parser.set_defaults(func=play)


def parse_kv(pairs: list[str]) -> dict:
    """Turn ``["a=1", "b=x"]`` into ``{"a": 1, "b": "x"}`` (values parsed as JSON when possible)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"expected KEY=VALUE, got {pair!r}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def play(args: argparse.Namespace) -> int:
    """Play (or watch a policy play) through the async env protocol, the env from the local factory."""
    from agentgym.core.factory import env_factory

    factory = env_factory("local")
    kwargs = {"split": args.split, **parse_kv(args.set)}
    factory.validate(args.env_id, kwargs)
    return asyncio.run(_play(factory, args, kwargs))  # Ctrl-C and SIGTERM: agentgym.cli.main says so


async def _play(factory, args: argparse.Namespace, kwargs: dict) -> int:
    env = await factory.create(args.env_id, kwargs)
    try:
        return await (_auto(env, args) if args.policy else _interactive(env, args))
    finally:
        await env.aclose()
        await factory.aclose()


async def _interactive(env, args: argparse.Namespace) -> int:
    print(f"Playing {args.env_id}. Commands: {HELP}\n")
    seed = args.seed
    info = await _start(env, seed)
    total, done = 0.0, False
    while True:
        try:
            line = await asyncio.to_thread(input, "\n> ")
        except EOFError:
            print()
            return 0
        cmd = line.strip()
        if cmd == ":quit":
            return 0
        if cmd == ":reset" or (done and cmd == ""):
            seed += 1
            total, done = 0.0, False
            info = await _start(env, seed)
            continue
        if cmd in (":hint", ":oracle", ":valid", ":tools"):
            print(await _ask(env, info, cmd))
            continue
        if done:
            print("The episode is over: press Enter (or :reset) for a new one, :quit to leave.")
            continue
        result = await env.astep(reply_message(line, tool_params(info.get("tools")), _turn(info)))
        info["turn"] = result.info.get("turn", _turn(info))
        total += result.reward
        for message in result.messages:
            print(f"[{message['role']}] {message.get('content') or ''}")
        flag = "  [invalid action]" if result.info.get("invalid_action") else ""
        print(f"reward {result.reward:+.3f} (total {total:.3f}){flag}")
        if result.done:
            done = True
            outcome = "SUCCESS" if result.info.get("success") else "failure"
            print(f"\nEpisode over after {info['turn']} turns: {outcome}. Enter for a new episode, :quit to leave.")


def _turn(info: dict) -> int:
    return int(info.get("turn", 0)) + 1


async def _ask(env, info: dict, cmd: str) -> str:
    if cmd == ":tools":
        return json.dumps(info["tools"], indent=2) if info.get("tools") else "This environment takes free text."
    if cmd == ":valid":
        valid = await env.avalid_actions()
        return ", ".join(valid) if valid else "This environment does not list valid actions."
    if cmd == ":hint":
        return await env.ahint() or "No hint available."
    action = await env.aoracle_action()
    if action is None:
        return "This environment has no oracle."
    return f"oracle: {action if isinstance(action, str) else json.dumps(action)}"


async def _start(env, seed: int) -> dict:
    obs, info = await env.areset(seed=seed)
    if info.get("system_prompt"):
        print(f"[system] {info['system_prompt']}\n")
    print(f"[{obs['role']}] {obs['content']}")
    return dict(info)


async def _auto(env, args: argparse.Namespace) -> int:
    from agentgym.core.protocol import merge_messages
    from agentgym.policy import load_policy
    from agentgym.policy.base import ActionSource, GenerationRequest, SamplingParams

    policy = load_policy(args.policy)
    wins = 0
    try:
        for ep in range(args.episodes):
            obs, info = await env.areset(seed=args.seed + ep)
            messages = [{"role": "system", "content": info["system_prompt"]}] if info.get("system_prompt") else []
            messages.append(obs)
            print(f"\n=== episode {ep + 1} (seed {args.seed + ep})\n[{obs['role']}] {obs['content']}")
            params, turn, result = SamplingParams(max_tokens=128), 0, None
            while result is None or not result.done:
                turn += 1
                request = GenerationRequest(messages=list(messages), tools=info.get("tools"), params=params)
                if isinstance(policy, ActionSource):
                    completion = await policy.act(env, request)
                else:
                    completion = (await policy.generate([request]))[0][0]
                if completion.error:
                    print(f"the policy failed: {completion.error}", file=sys.stderr)
                    return 1
                if completion.tool_calls:
                    reply = {"role": "assistant", "content": completion.text or None, "tool_calls": completion.tool_calls}
                else:
                    reply = reply_message(completion.text, tool_params(info.get("tools")), turn)
                print(f"[assistant] {completion.text}" + (f" {json.dumps(reply['tool_calls'])}" if reply.get("tool_calls") else ""))
                result = await env.astep(reply)
                messages += [reply, *result.messages]
                print(f"[{merge_messages(result.messages)['role']}] {merge_messages(result.messages)['content']}\n"
                      f"reward {result.reward:+.3f}")
            wins += bool(result.info.get("success"))
            print("SUCCESS" if result.info.get("success") else "failure")
    finally:
        await policy.close()
    print(f"\n{wins}/{args.episodes} episodes solved")
    return 0
