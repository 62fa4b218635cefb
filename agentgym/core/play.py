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
    from agentgym.core.registry import make

    env = make(args.env_id, split=args.split, **parse_kv(args.set))
    if args.policy:
        return _auto(env, args)
    print(f"Playing {env.spec_id}. Commands: {HELP}\n")
    seed = args.seed
    _show_start(env, *env.reset(seed=seed))
    total = 0.0
    while True:
        try:
            line = input("\n> ")
        except EOFError:
            print()
            return 0
        cmd = line.strip()
        if cmd == ":quit":
            return 0
        if cmd == ":reset" or (env.done and cmd == ""):
            seed += 1
            total = 0.0
            _show_start(env, *env.reset(seed=seed))
            continue
        if cmd in (":hint", ":oracle", ":valid", ":tools"):
            print(_ask(env, cmd))
            continue
        if env.done:
            print("The episode is over: press Enter (or :reset) for a new one, :quit to leave.")
            continue
        obs, reward, terminated, truncated, info = env.step(line)
        total += reward
        print(f"[{obs['role']}] {obs['content']}")
        print(f"reward {reward:+.3f} (total {total:.3f})" + ("  [invalid action]" if info.get("invalid_action") else ""))
        if terminated or truncated:
            outcome = "SUCCESS" if info.get("success") else "failure"
            print(f"\nEpisode over after {info['turn']} turns: {outcome}. Enter for a new episode, :quit to leave.")


def _ask(env, cmd: str) -> str:
    if cmd == ":tools":
        return json.dumps(env.tool_schemas, indent=2) if env.tools else "This environment takes free text."
    if cmd == ":valid":
        valid = env.valid_actions()
        return ", ".join(valid) if valid else "This environment does not list valid actions."
    if cmd == ":hint":
        return env.hint() or "No hint available."
    try:
        return f"oracle: {env.oracle_action()}"
    except NotImplementedError:
        return "This environment has no oracle."


def _show_start(env, obs, info) -> None:
    if env.system_prompt:
        print(f"[system] {env.system_prompt}\n")
    print(f"[{obs['role']}] {obs['content']}")


def _auto(env, args: argparse.Namespace) -> int:
    from agentgym.policy import load_policy
    from agentgym.policy.base import GenerationRequest, SamplingParams

    policy = load_policy(args.policy)

    async def run() -> int:
        wins = 0
        for ep in range(args.episodes):
            obs, info = env.reset(seed=args.seed + ep)
            messages = [{"role": "system", "content": env.system_prompt}] if env.system_prompt else []
            messages.append(obs)
            print(f"\n=== episode {ep + 1} (seed {args.seed + ep})\n[{obs['role']}] {obs['content']}")
            while not env.done:
                req = GenerationRequest(messages=messages, tools=env.tool_schemas or None,
                                        params=SamplingParams(max_tokens=128), env=env)
                completion = (await policy.generate([req]))[0][0]
                print(f"[assistant] {completion.text}")
                obs, reward, terminated, truncated, info = env.step(completion.text)
                messages += [{"role": "assistant", "content": completion.text}, obs]
                print(f"[{obs['role']}] {obs['content']}\nreward {reward:+.3f}")
            wins += bool(info.get("success"))
            print("SUCCESS" if info.get("success") else "failure")
        await policy.close()
        print(f"\n{wins}/{args.episodes} episodes solved")
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    finally:
        env.close()
