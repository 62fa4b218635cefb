"""``envs check``'s checks of what an env author declares: tools, the oracle, progress and hints.

- **tools are described**: every tool has a docstring (its description in the schema) and a type
  hint on every parameter (otherwise the argument is taken as a string, silently), and each
  parameter is described under ``Args:``;
- **the oracle solves episodes**: following ``oracle_action()`` from a few seeds ends every episode
  with ``success`` true (an oracle that does not is a wrong ``scripted:oracle`` baseline and wrong
  hints);
- **tasks split**: ``generate_task(i)`` gives tasks with distinct ``inputs`` (the split is a hash of
  them, so tasks that all look alike land in one split and the other has none), some in the env's split;
- **progress and hints have the right types**: ``progress()`` is None or a number in [0, 1] after
  every reset and step (invalid replies included), ``hint()`` is None or a string.

Everything goes through the async protocol, so ``async`` hooks are checked as they are called.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable
from typing import Any, get_type_hints

from agentgym.core.protocol import AsyncEnv
from agentgym.core.tools import collect_tools, parse_docstring

ORACLE_EPISODES = 5
SPLIT_SAMPLE = 200


def tools_described(cls: type) -> str:
    """Raise ``AssertionError`` listing every tool without a docstring, type hints or argument docs."""
    problems = []
    tools = collect_tools(cls)
    for name, spec in tools.items():
        fn = getattr(cls, spec.method_name)
        summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
        if not summary:
            problems.append(f"tool {name!r} has no docstring: the model sees no description of it")
        hints = get_type_hints(fn)
        for pname in spec.param_order:
            if pname not in hints:
                problems.append(f"tool {name!r}: parameter {pname!r} has no type hint (taken as a string)")
            if summary and pname not in arg_docs:
                problems.append(f"tool {name!r}: parameter {pname!r} is not described under `Args:` in its docstring")
    assert not problems, "; ".join(problems)
    return f"{len(tools)} tool(s) with docstrings and typed, described parameters" if tools else "no tools"


def tasks_split(env: Any, count: int = SPLIT_SAMPLE) -> str:
    """``generate_task(0..count-1)`` gives distinct inputs, some in the env's split (skipped without a generator)."""
    from agentgym.core.task import split_of

    split = getattr(env, "split", "train")
    if getattr(env, "_task_list", None) or getattr(env, "_fixed_task", None) is not None:
        env.close()  # episodes draw from the tasks it was given, not from the generator's split
        return "tasks given (task= or tasks=): skipped"
    try:
        tasks = [env.generate_task(i) for i in range(count)]
    except NotImplementedError:
        return "no task generator (tasks given with task= or tasks=): skipped"
    finally:
        env.close()
    prints = {t.fingerprint() for t in tasks}
    assert len(prints) > 1, (f"generate_task(0..{count - 1}) gave tasks with the same `inputs`: the split is a hash "
                             "of the inputs, so one split gets them all; put what tells tasks apart in `inputs`")
    mine = sum(split_of(p) == split for p in prints)
    assert mine, (f"generate_task(0..{count - 1}) gave {len(prints)} distinct inputs, none in the {split} split; "
                  "make more tasks distinct")
    return f"{len(prints)} distinct tasks of {count}, {mine} in the {split} split"


def _check_progress(value: Any, where: str) -> None:
    if value is None:
        return
    assert isinstance(value, (int, float)) and not isinstance(value, bool), \
        f"progress() returned {type(value).__name__} {where}; return a float in [0, 1] or None"
    assert math.isfinite(value) and 0.0 <= value <= 1.0, f"progress() returned {value!r} {where}; keep it in [0, 1]"


async def _oracle_episode(env: AsyncEnv, seed: int) -> tuple[bool | None, int]:
    """(success, turns) following the oracle from ``seed``; success None when the env has no oracle."""
    await env.areset(seed=seed)
    _check_progress(await env.aprogress(), "after reset")
    hint = await env.ahint()
    assert hint is None or isinstance(hint, str), f"hint() returned {type(hint).__name__}; return a str or None"
    turns = 0
    while True:
        try:
            action = await env.aoracle_action()
        except NotImplementedError:
            action = None
        if action is None:
            if turns == 0:
                return None, 0
            raise AssertionError(f"oracle_action() returned None at turn {turns + 1} of the episode of seed {seed}")
        message = action if isinstance(action, dict) else {"role": "assistant", "content": str(action)}
        result = await env.astep(message)
        turns += 1
        _check_progress(await env.aprogress(), f"after turn {turns} of the oracle's episode (seed {seed})")
        if result.done:
            return bool(result.info.get("success")), turns


async def _oracle(make_env: Callable[[], AsyncEnv], seed: int, episodes: int) -> str:
    solved, turns = 0, []
    for k in range(episodes):
        env = make_env()
        try:
            success, n = await _oracle_episode(env, seed + k)
        finally:
            await env.aclose()
        if success is None:
            return "no oracle (oracle_action not implemented): skipped"
        assert success, (f"following oracle_action() from seed {seed + k} ended the episode after {n} turn(s) "
                         "without success; the oracle should solve every episode")
        solved += 1
        turns.append(n)
    return f"solved {solved}/{episodes} episodes, {sum(turns) / len(turns):.1f} turns on average"


async def _progress_on_bad_replies(env: AsyncEnv, seed: int) -> None:
    await env.areset(seed=seed)
    try:
        for i, text in enumerate(["", "???", "nonsense[1]"]):
            result = await env.astep({"role": "assistant", "content": text})
            _check_progress(await env.aprogress(), f"after an invalid reply {text!r}")
            if result.done:
                break
    finally:
        await env.aclose()


def oracle_solves(make_env: Callable[[], AsyncEnv], seed: int = 0, episodes: int = ORACLE_EPISODES) -> str:
    """Follow the oracle for ``episodes`` episodes: each must end in success (see the module docstring)."""
    return asyncio.run(_oracle(make_env, seed, episodes))


def progress_in_range(make_env: Callable[[], AsyncEnv], seed: int = 0) -> str:
    """``progress()`` is None or in [0, 1] after a reset and after invalid replies (the oracle's episodes
    check it after good ones)."""
    asyncio.run(_progress_on_bad_replies(make_env(), seed))
    return "None or in [0, 1] after reset and invalid replies"
