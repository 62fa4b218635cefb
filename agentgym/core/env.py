"""The base class of every agentgym environment.

A :class:`TextEnv` is a :class:`gymnasium.Env` whose action is the model's raw reply
(text, or an assistant message dict with OpenAI ``tool_calls``) and whose observation
is one chat message ``{"role": "user" | "tool", "content": str}``. Subclasses
implement :meth:`setup` (build the first prompt from a :class:`Task`) and declare
tools as typed methods (see :mod:`agentgym.core.tools`), or override :meth:`on_text`
for free-form replies. The base class owns everything else: task sampling, parsing,
argument validation, invalid-action and turn limits, episode bookkeeping and the
``info`` keys the rest of agentgym relies on:

* ``info["turn"]``: 1-based index of the step just taken;
* ``info["invalid_action"]``: whether this step's action was rejected;
* ``info["invalid_actions"]``: how many were rejected so far this episode;
* ``info["success"]``: ``bool``, present on the last step (terminated or truncated);
* ``info["valid_actions"]``: present when the environment can list them.

Model output never raises: garbage, empty, huge or malformed replies produce an
observation saying what was wrong. Tools signal a bad argument by raising
:class:`ToolError` (or ``ValueError``); any other exception is a bug in the env and
propagates.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from agentgym.core.actions import ActionError, ToolCall, parse_tool_calls, reply_text
from agentgym.core.spaces import AnyText, message_space
from agentgym.core.task import Split, Task, split_of
from agentgym.core.tools import ToolSpec, collect_tools
from agentgym.errors import UserError

Observation = dict[str, str]


class ToolError(ValueError):
    """Raised by a tool for a bad argument; its message is shown to the model."""


class TextEnv(gym.Env):
    """A multi-turn text environment (see the module docstring for the contract)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"]}
    #: Shown as the system message; tool schemas are passed separately to the policy.
    system_prompt: ClassVar[str] = ""
    #: Whether steps block (I/O, subprocesses): then ``astep`` runs them in a worker thread.
    blocking: ClassVar[bool] = True

    def __init__(
        self,
        *,
        task: Task | dict | None = None,
        tasks: list[Task] | None = None,
        split: Split = "train",
        max_turns: int = 20,
        max_invalid_actions: int = 5,
        max_action_chars: int = 16_384,
        render_mode: str | None = None,
    ):
        if split not in ("train", "test"):
            raise UserError(f"split must be 'train' or 'test', not {split!r}.")
        if max_turns < 1:
            raise UserError(f"max_turns must be at least 1, not {max_turns}.")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(f"render_mode must be one of {self.metadata['render_modes']}, not {render_mode!r}.")
        self.observation_space = message_space()
        self.action_space = AnyText(max_action_chars)
        self.render_mode = render_mode
        self.split: Split = split
        self.max_turns = max_turns
        self.max_invalid_actions = max_invalid_actions
        self.max_action_chars = max_action_chars
        self._fixed_task = Task.model_validate(task) if isinstance(task, dict) else task
        self._task_list = list(tasks) if tasks is not None else None
        self.tools: dict[str, ToolSpec] = _tools_of(type(self))
        self.task: Task | None = None
        self._done = True
        self._last_obs: Observation | None = None

    # ----------------------------------------------------------------- subclass API
    def setup(self, task: Task) -> str:
        """Start an episode on ``task``; return the first user message. May be ``async``."""
        raise NotImplementedError

    def generate_task(self, index: int) -> Task:
        """The task at ``index`` of this environment's deterministic generator."""
        raise NotImplementedError(f"{type(self).__name__} has no task generator; pass task= or tasks=")

    def on_text(self, text: str) -> str | list[ToolCall] | None:
        """Handle a reply with no tool call: an observation, native tool calls, or None (invalid).

        Raise :class:`ToolError` to reject the reply as invalid with a specific message.
        """
        return None

    def oracle_action(self) -> str:
        """An optimal next action, for the scripted oracle policy and hints."""
        raise NotImplementedError(f"{type(self).__name__} has no oracle")

    def valid_actions(self) -> list[str] | None:
        """The actions that are valid now, when the environment can list them."""
        return None

    def hint(self) -> str | None:
        """Environment-native guidance for a re-attempt (a plan or next steps), if any."""
        return None

    def progress(self) -> float | None:
        """How far the current state is toward the goal, in [0, 1], if the env can tell."""
        return None

    def render_text(self) -> str:
        """A human-readable view of the current state (``render()`` in ``ansi`` mode)."""
        return self._last_obs["content"] if self._last_obs else ""

    # ----------------------------------------------------------------- helpers for tools
    def finish(self, reward: float, success: bool, **info: Any) -> None:
        """End the episode after the current step with this reward and outcome."""
        self._step_reward += float(reward)
        self._terminated = True
        self._success = bool(success)
        self._end_info.update(info)

    def add_reward(self, reward: float) -> None:
        """Add an intermediate (shaping) reward to the current step."""
        self._step_reward += float(reward)

    @property
    def tool_schemas(self) -> list[dict[str, Any]]:
        """OpenAI-style schemas of this environment's tools (built once; treat as read-only)."""
        cached = self.__dict__.get("_schemas")
        if cached is None or cached[0] is not self.tools:
            cached = self._schemas = (self.tools, [spec.schema() for spec in self.tools.values()])
        return cached[1]

    @property
    def done(self) -> bool:
        return self._done

    # ----------------------------------------------------------------- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        task = self._choose_task(options or {})
        prompt = _run_sync(self._call(self.setup, task), inspect.iscoroutinefunction(self.setup))
        return self._start(task, prompt)

    def step(self, action: Any):
        self._check_running()
        return _run_sync(self._astep(action), self._has_async_tools())

    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Async ``reset``: awaits an async ``setup``; blocking envs run in a worker thread."""
        if self.blocking and not inspect.iscoroutinefunction(self.setup):
            return await asyncio.to_thread(self.reset, seed=seed, options=options)
        super().reset(seed=seed)
        task = self._choose_task(options or {})
        prompt = await self._call(self.setup, task)
        return self._start(task, prompt)

    async def astep(self, action: Any):
        """Async ``step``: awaits async tools; blocking envs run in a worker thread."""
        self._check_running()
        if self.blocking and not self._has_async_tools():
            return await asyncio.to_thread(self.step, action)
        return await self._astep(action)

    def render(self):
        text = self.render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    # ----------------------------------------------------------------- internals
    def _choose_task(self, options: dict[str, Any]) -> Task:
        task = options.get("task")
        if task is not None:
            return Task.model_validate(task) if isinstance(task, dict) else task
        if self._fixed_task is not None:
            return self._fixed_task
        if self._task_list:
            return self._task_list[int(self.np_random.integers(len(self._task_list)))]
        start = int(self.np_random.integers(2**31 - 1))
        for i in range(start, start + 10_000):
            candidate = self.generate_task(i)
            if split_of(candidate.fingerprint()) == self.split:
                return candidate
        raise RuntimeError("the task generator produced no task of the requested split")

    def _start(self, task: Task, prompt: str):
        self.task = task
        self.turn = 0
        self.invalid_actions = 0
        self._done = False
        self._last_obs = {"role": "user", "content": prompt}
        info: dict[str, Any] = {"task_id": task.id, "system_prompt": self.system_prompt}
        if self.tools:
            info["tools"] = self.tool_schemas
        valid = self.valid_actions()
        if valid is not None:
            info["valid_actions"] = valid
        return self._last_obs, info

    def _check_running(self) -> None:
        if self.task is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._done:
            raise gym.error.ResetNeeded("the episode is over; call reset() to start a new one")

    async def _astep(self, action: Any):
        self.turn += 1
        self._step_reward = 0.0
        self._terminated = False
        self._success = False
        self._end_info: dict[str, Any] = {}
        text = reply_text(action)
        role = "user"
        invalid = False
        if len(text) > self.max_action_chars:
            content, invalid = f"Error: the reply is {len(text)} characters long; the limit is {self.max_action_chars}.", True
        else:
            calls = parse_tool_calls(action, self.tools)
            if calls is None:
                try:
                    handled = self.on_text(text)
                except ToolError as exc:  # the env rejects the reply and says why
                    handled = ActionError(str(exc))
                if isinstance(handled, ActionError):
                    calls = handled
                elif isinstance(handled, str):
                    calls, content = [], handled
                elif handled is None:
                    calls, content, invalid = [], self._no_action_message(), True
                else:
                    calls = handled
            if isinstance(calls, ActionError):
                content, invalid = f"Error: {calls.message}", True
            elif calls:
                role = "tool"
                content, invalid = await self._run_calls(calls)
        if invalid:
            self.invalid_actions += 1
            if self.invalid_actions > self.max_invalid_actions and not self._terminated:
                self.finish(0.0, False, reason="too many invalid actions")
                content += f"\nToo many invalid actions ({self.invalid_actions}); the episode is over."
        terminated = self._terminated
        truncated = not terminated and self.turn >= self.max_turns
        info: dict[str, Any] = {"turn": self.turn, "invalid_action": invalid, "invalid_actions": self.invalid_actions}
        if terminated or truncated:
            self._done = True
            info["success"] = self._success if terminated else False
            if truncated:
                info["reason"] = "turn limit"
            info.update(self._end_info)
        else:
            valid = self.valid_actions()
            if valid is not None:
                info["valid_actions"] = valid
        self._last_obs = {"role": role, "content": content}
        return self._last_obs, self._step_reward, terminated, truncated, info

    async def _run_calls(self, calls: list[ToolCall]) -> tuple[str, bool]:
        outputs, invalid = [], False
        for call in calls:
            if self._terminated:
                outputs.append(f"[{call.name}] skipped: the episode already ended.")
                continue
            spec = self.tools.get(call.name)
            if spec is None:
                known = ", ".join(self.tools) or "none"
                outputs.append(f"Error: unknown tool {call.name!r}; available tools: {known}.")
                invalid = True
                continue
            try:
                args = spec.validate(call.arguments)
                result = await self._call(getattr(self, spec.method_name), **args)
            except ValueError as exc:  # includes ToolError and argument validation
                outputs.append(f"Error in {call.name}: {exc}")
                invalid = True
                continue
            outputs.append(str(result) if result is not None else "")
        if len(calls) == 1:
            return outputs[0], invalid
        return "\n\n".join(f"[{c.name}] {o}" for c, o in zip(calls, outputs)), invalid

    def _no_action_message(self) -> str:
        if self.tools:
            names = ", ".join(self.tools)
            return (
                "Error: no action found. Call one of the tools "
                f"({names}) as <tool_call>{{\"name\": ..., \"arguments\": {{...}}}}</tool_call>."
            )
        return "Error: no action found in the reply."

    def _has_async_tools(self) -> bool:
        cached = self.__dict__.get("_async_tools")
        if cached is None or cached[0] is not self.tools:  # cached: this runs on every step
            cached = self._async_tools = (self.tools, any(s.is_async for s in self.tools.values()))
        return cached[1]

    @staticmethod
    async def _call(fn, *args, **kwargs):
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


_TOOL_CACHE: dict[type, dict[str, ToolSpec]] = {}


def _tools_of(cls: type) -> dict[str, ToolSpec]:
    if cls not in _TOOL_CACHE:
        _TOOL_CACHE[cls] = collect_tools(cls)
    return _TOOL_CACHE[cls]


def _run_sync(coro, suspends: bool):
    """Run a coroutine to completion from sync code.

    Steps whose tools are all sync never suspend: one ``send`` finishes them with no
    event loop (cheap). Async ones get a private loop, in a helper thread when a loop is
    already running in this thread.
    """
    if not suspends:
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        coro.close()
        raise RuntimeError("a step suspended although none of its tools is async")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
