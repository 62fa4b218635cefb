"""Checks every text environment must pass (``agentgym envs check``).

On top of Gymnasium's :func:`~gymnasium.utils.env_checker.check_env`, a text env must
be reproducible (same seed, same actions -> same episode), survive arbitrary model
output (thousands of fuzzed replies: empty, huge, binary-looking, unicode, malformed
and wrong tool calls) without raising, return string observations in its space, put a
boolean ``success`` in the info of every final step, and keep the async protocol's
contract (one tool message per tool call, carrying its id). A second fuzzer sends ten
thousand garbage tool calls in one long episode: integers past Python's digit limit,
nesting a hundred thousand deep, lone surrogates, truncated JSON, and now and then a
well-formed call to a real tool with such values.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from agentgym.core import hook_checks
from agentgym.core.actions import openai_calls, parse_text, tool_params
from agentgym.core.env import TextEnv
from agentgym.core.protocol import AsyncEnv, StepResult


@dataclass
class CheckResult:
    """The outcome of one check on one environment."""

    name: str
    passed: bool
    detail: str = ""


def check_text_env(
    make_env: Callable[[], TextEnv], *, fuzz_actions: int = 2000, time_budget_s: float = 60.0, seed: int = 0,
    garbage_actions: int | None = None,
) -> list[CheckResult]:
    """Run all checks on fresh environments from ``make_env``; never raises.

    ``garbage_actions`` defaults to five times ``fuzz_actions``, at most 10,000 (what
    ``agentgym envs check`` sends with its default ``--fuzz 2000``).
    """
    if garbage_actions is None:
        garbage_actions = min(5 * fuzz_actions, 10_000)
    checks = [
        ("gymnasium check_env", lambda: _gymnasium_check(make_env())),
        ("same seed, same episode", lambda: _determinism(make_env, seed)),
        ("observations and final info", lambda: _contract(make_env(), seed)),
        ("fuzzed actions never raise", lambda: _fuzz(make_env(), fuzz_actions, time_budget_s, seed)),
        ("garbage tool calls never raise", lambda: fuzz_garbage(make_env(), garbage_actions, time_budget_s, seed)),
        ("async protocol", lambda: asyncio.run(_protocol(make_env(), seed))),
        ("tools described", lambda: hook_checks.tools_described(_class_of(make_env))),
        ("tasks split", lambda: hook_checks.tasks_split(make_env())),
        ("oracle solves episodes", lambda: hook_checks.oracle_solves(make_env, seed)),
        ("progress in [0, 1]", lambda: hook_checks.progress_in_range(make_env, seed)),
    ]
    results = []
    for name, fn in checks:
        try:
            detail = fn() or ""
            results.append(CheckResult(name, True, detail))
        except Exception as exc:  # the point of a checker is to report, not to crash
            tb = traceback.format_exc(limit=-3)
            results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}\n{tb}"))
    return results


def _class_of(make_env: Callable[[], TextEnv]) -> type:
    env = make_env()
    env.close()
    return type(env)


def _gymnasium_check(env: TextEnv) -> str:
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    env.close()
    relevant = [str(w.message) for w in caught if "precision" not in str(w.message)]
    return f"{len(relevant)} warning(s)" + (f": {relevant[0][:120]}" if relevant else "")


def _episode(env: TextEnv, seed: int, actions: list[Any]) -> list[Any]:
    obs, _ = env.reset(seed=seed)
    trace: list[Any] = [obs]
    for action in actions:
        if env.done:
            break
        obs, reward, term, trunc, info = env.step(action)
        trace.append((obs, reward, term, trunc, _plain(info)))
    return trace


def _plain(info: dict) -> Any:
    return json.loads(json.dumps(info, sort_keys=True, default=str))


def _determinism(make_env: Callable[[], TextEnv], seed: int) -> str:
    probe = make_env()
    probe.reset(seed=seed)
    actions = _scripted_actions(probe, 12)
    a = _episode(make_env(), seed, actions)
    b = _episode(make_env(), seed, actions)
    if a != b:
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                raise AssertionError(f"episodes differ at step {i}: {str(x)[:200]} != {str(y)[:200]}")
        raise AssertionError("episodes differ in length")
    return f"{len(a) - 1} steps replayed identically"


def _scripted_actions(env: TextEnv, n: int) -> list[Any]:
    """A deterministic action list: oracle moves when available, else valid actions, else text."""
    try:
        first = env.oracle_action()
        return [first] * 2 + ["", "nonsense"] + [first] * (n - 4)
    except NotImplementedError:
        valid = env.valid_actions() or ["hello"]
        return [valid[i % len(valid)] for i in range(n)]


def _contract(env: TextEnv, seed: int) -> str:
    episodes = 0
    for s in range(seed, seed + 3):
        obs, info = env.reset(seed=s)
        _check_obs(env, obs)
        assert isinstance(info, dict), "reset info must be a dict"
        steps = 0
        while not env.done and steps < 500:
            try:
                action = env.oracle_action()
            except NotImplementedError:
                action = (env.valid_actions() or ["x"])[0]
            obs, reward, term, trunc, info = env.step(action)
            steps += 1
            _check_obs(env, obs)
            assert isinstance(reward, (int, float)), f"reward must be a number, got {type(reward).__name__}"
            if term or trunc:
                assert isinstance(info.get("success"), bool), "the final step's info must have a bool 'success'"
        episodes += 1
    return f"{episodes} episodes played to the end"


def _check_obs(env: TextEnv, obs: Any) -> None:
    assert isinstance(obs, dict) and isinstance(obs.get("content"), str), f"observation must be a message, got {obs!r:.80}"
    assert obs.get("role") in ("user", "tool"), f"observation role must be 'user' or 'tool', got {obs.get('role')!r}"
    assert env.observation_space.contains(obs), "observation is outside the observation space"


async def _protocol(env: TextEnv, seed: int) -> str:
    """An episode through the async protocol, the oracle's calls sent as native ``tool_calls``."""
    assert isinstance(env, AsyncEnv), "the env does not implement the async env protocol"
    obs, info = await env.areset(seed=seed)
    assert obs.get("role") == "user" and isinstance(obs.get("content"), str), "areset must return a user message"
    assert isinstance(info.get("task_id"), str), "the reset info needs a str 'task_id'"
    params = tool_params(info.get("tools"))
    steps, result = 0, None
    while steps < 500 and (result is None or not result.done):
        action = await env.aoracle_action()
        if action is None:
            action = ((await env.avalid_actions()) or ["x"])[0]
        message = action if isinstance(action, dict) else {"role": "assistant", "content": str(action)}
        calls = parse_text(message.get("content") or "", params) if "tool_calls" not in message else None
        if isinstance(calls, list):  # as a policy with a tool parser sends them
            message = {"role": "assistant", "content": None, "tool_calls": openai_calls(calls, 100 + steps)}
        result = await env.astep(message)
        steps += 1
        assert isinstance(result, StepResult), f"astep must return a StepResult, got {type(result).__name__}"
        sent = [c["id"] for c in message.get("tool_calls") or []]
        if sent:
            got = [m.get("tool_call_id") for m in result.messages]
            assert got == sent and all(m.get("role") == "tool" for m in result.messages), \
                f"tool calls {sent} were answered by {[(m.get('role'), m.get('tool_call_id')) for m in result.messages]}"
        assert all(isinstance(m.get("content"), str) for m in result.messages), "answers need str content"
    assert result is not None and isinstance(result.info.get("success"), bool), "the last step needs a bool 'success'"
    await env.aprogress()
    await env.ahint()
    await env.aclose()
    return f"{steps} steps through areset/astep, tool calls answered by id"


_EDGE_VALUES: list[Any] = ["", " ", "0", "-1", "x" * 5000, "../../etc/passwd", "日本", 0, -1, 10**9, 2.5, True, None, [], {}]


def fuzz_actions(rng: random.Random, tools: dict[str, Any], max_chars: int) -> Any:
    """One adversarial action: what a badly behaved model might send."""
    names = list(tools) or ["act"]
    kind = rng.randrange(15)
    if kind == 14:
        return garbage_action(rng, tools)
    if kind >= 12 and tools:  # a well-formed call with edge-case argument values
        spec = tools[rng.choice(names)]
        args = {p: rng.choice(_EDGE_VALUES) for p in spec.param_order if rng.random() < 0.9}
        return f'<tool_call>{{"name": "{spec.name}", "arguments": {json.dumps(args)}}}</tool_call>'
    if kind == 0:
        return ""
    if kind == 1:
        return "x" * (max_chars + rng.randrange(1, 1000))
    if kind == 2:
        return "".join(chr(rng.randrange(0, 0x250)) for _ in range(rng.randrange(1, 200)))
    if kind == 3:
        return "".join(rng.choice("日本語🙂ñé\u200b\x00\ufffd") for _ in range(rng.randrange(1, 50)))
    if kind == 4:
        return "<tool_call>{not json" + "}" * rng.randrange(3)
    if kind == 5:
        return f'<tool_call>{{"name": "{rng.choice(names)}", "arguments": {json.dumps(_junk(rng))}}}</tool_call>'
    if kind == 6:
        return '<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>'
    if kind == 7:
        return {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": rng.choice(names), "arguments": "{bad"}}]}
    if kind == 8:
        return {"role": "assistant", "tool_calls": [{"function": {"name": rng.choice(names), "arguments": json.dumps(_junk(rng))}}]}
    if kind == 9:
        return f"{rng.choice(names)}[{_junk(rng)}]"
    if kind == 10:
        return "<tool_call>" * rng.randrange(1, 5) + "[[[" + "\\" * rng.randrange(10)
    return rng.choice(["up", "left 3", "down 99", "right -1", "submit", "answer[]", "{}", "[]", "null"])


def _junk(rng: random.Random) -> Any:
    choices: list[Any] = [
        {}, {"x": 1}, {"query": "a" * rng.randrange(0, 3000)}, {"k": -5}, {"k": "many"}, [1, 2], "str",
        {"direction": "sideways"}, {"steps": 10**9}, {"path": "../../etc/passwd"}, None, 3.5,
    ]
    return rng.choice(choices)


_DIGITS = "".join(str((i * 7919) % 10) for i in range(60_000))


def _digits(rng: random.Random, low: int, high: int) -> str:
    """A decimal integer of ``low`` to ``high`` digits (cheap: a slice of a fixed string)."""
    n = rng.randrange(low, high)
    at = rng.randrange(0, len(_DIGITS) - n) if n < len(_DIGITS) else 0
    return rng.choice(["", "-"]) + str(rng.randrange(1, 10)) + _DIGITS[at:at + n - 1]


def _nested(rng: random.Random, depth: int) -> str:
    opener = rng.choice(["[", '{"a":'])
    closer = "]" if opener == "[" else "}"
    return opener * depth + "1" + closer * depth


def _tagged(name: str, arguments: str) -> str:
    """A ``<tool_call>`` block calling ``name`` with ``arguments`` given as raw JSON text."""
    return f'<tool_call>{{"name": "{name}", "arguments": {arguments}}}</tool_call>'


def garbage_action(rng: random.Random, tools: dict[str, Any]) -> Any:
    """One garbage tool call: JSON no parser should choke on, and a few well-formed calls to
    real tools carrying such values."""
    names = list(tools) or ["act"]
    name = rng.choice(names)
    kind = rng.randrange(50)
    with_params = [n for n, spec in tools.items() if spec.param_order]
    if kind == 0 and with_params:  # well-formed, to a real tool: printable but huge ints, surrogates, nesting
        spec = tools[rng.choice(with_params)]
        name = spec.name
        value = rng.choice([int(_digits(rng, 1000, 4200)), "\ud800x\udfff", [[[[1]]]] * 3, {"\udc80": 1},
                            float("inf"), -(10 ** 18)])
        args = {p: value for p in spec.param_order}
        return _tagged(name, json.dumps(args))
    # most stay under the usual 16k-character reply limit, so that they reach the parser
    if kind < 10:
        return _tagged(name, f'{{"x": {_digits(rng, 4301, 15_000)}}}')
    if kind < 15:
        return _tagged(name, f'{{"x": [1, {_digits(rng, 4301, 9000)}]}}')
    if kind < 22:
        return _tagged(name, f'{{"x": {_nested(rng, rng.randrange(70, 2500))}}}')
    if kind < 26:
        return f"<tool_call>{_nested(rng, rng.randrange(1000, 2500))}</tool_call>"
    if kind < 27:
        return f"<tool_call>{_nested(rng, 100_000)}</tool_call>"
    if kind < 32:
        return f'<tool_call>{{"name": "{name}\\ud800", "arguments": {{"\\udfff": "\\udc00{_digits(rng, 1, 50)}"}}}}'
    if kind < 37:
        body = json.dumps({"x": 1})[:-1] + ", \"y\": " + _digits(rng, 5000, 20_000)
        return {"role": "assistant", "tool_calls": [{"function": {"name": name, "arguments": body + "}"}}]}
    if kind < 41:
        return {"role": "assistant", "tool_calls": [{"function": {"name": name, "arguments": {"x": 10 ** rng.randrange(4400, 9000)}}}]}
    if kind < 45:
        return {"role": "assistant", "tool_calls": [{"function": {"name": name, "arguments": _nested(rng, rng.randrange(100, 50_000))}}]}
    return f'<tool_call>{{"name": "{name}", "arguments": {{"x": {_digits(rng, 4301, 9000)}'[: rng.randrange(20, 200)]


def fuzz_garbage(env: TextEnv, n: int = 10_000, budget_s: float = 60.0, seed: int = 0) -> str:
    """Step ``n`` garbage actions (:func:`garbage_action`) through ``env``; raises what the env raises.

    Invalid-action and turn limits are lifted for the run, so that it needs few episodes
    (resets are the slow part of a sandboxed env); the run stops after ``3 * budget_s`` s.
    """
    rng = random.Random(seed + 1)
    inner = getattr(env, "unwrapped", env)
    inner.max_invalid_actions = inner.max_turns = n + 10
    env.reset(seed=seed)
    deadline = time.monotonic() + max(budget_s, 1.0) * 3
    done, episodes = 0, 1
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        if env.done:
            env.reset(seed=rng.randrange(2**31))
            episodes += 1
        obs, reward, term, trunc, info = env.step(garbage_action(rng, env.tools))
        _check_obs(env, obs)
        done += 1
    env.close()
    return f"{done} garbage tool calls over {episodes} episodes"


def _fuzz(env: TextEnv, n: int, budget_s: float, seed: int) -> str:
    rng = random.Random(seed)
    env.reset(seed=seed)
    deadline = time.monotonic() + budget_s
    done = 0
    episodes = 1
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        if env.done:
            env.reset(seed=rng.randrange(2**31))
            episodes += 1
        action = fuzz_actions(rng, env.tools, env.max_action_chars)
        obs, reward, term, trunc, info = env.step(action)
        _check_obs(env, obs)
        if term or trunc:
            assert isinstance(info.get("success"), bool), "final info lacks a bool 'success'"
        done += 1
    env.close()
    return f"{done} fuzzed actions over {episodes} episodes"
