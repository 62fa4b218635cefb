"""The base class of every agentgym environment.

A :class:`TextEnv` is a :class:`gymnasium.Env` and an :class:`~agentgym.core.protocol.AsyncEnv`.
Its action is the model's reply (text, or an assistant message with OpenAI ``tool_calls``);
its observation is one chat message. Subclasses implement :meth:`setup` (build the first
prompt from a :class:`Task`) and declare tools as typed methods (see
:mod:`agentgym.core.tools`), or override :meth:`on_text` for free-form replies. The base
class owns everything else: task sampling, parsing, argument validation, invalid-action
and turn limits, episode bookkeeping and the ``info`` keys the rest of agentgym relies on:

* ``info["turn"]``: 1-based index of the step just taken;
* ``info["invalid_action"]``: whether this step's action was rejected;
* ``info["invalid_actions"]``: how many were rejected so far this episode;
* ``info["success"]``: ``bool``, present on the last step (terminated or truncated);
* ``info["valid_actions"]``: present when the environment can list them.

Through the async protocol (``areset``, ``astep``, ``aprogress``...) every sync hook of a
subclass (``setup``, sync tools, ``on_text``, ``hint``, ``progress``, ``oracle_action``,
``valid_actions``, ``close``) runs on a worker thread, never on the event loop, one hook at
a time per instance; ``async`` hooks are awaited. A reply's tool calls are each answered by
a ``tool`` message carrying the call's ``tool_call_id``; the gymnasium ``step`` merges them
into its one observation and lists them in ``info["messages"]``. How one reply is read and
answered lives in :mod:`agentgym.core.dispatch`; how hooks are run, in :mod:`agentgym.core.hooks`.

Model output never raises: garbage, empty, huge or malformed replies produce an
observation saying what was wrong. Tools signal a bad argument by raising
:class:`~agentgym.core.tools.ToolError` (or ``ValueError``); any other exception is a bug in the env and
propagates.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import gymnasium as gym

from agentgym.core.actions import ToolCall
from agentgym.core.dispatch import ReplyDispatcher
from agentgym.core.hooks import is_async
from agentgym.core.protocol import OPTIONAL_HOOKS, AsyncEnv, Message, StepResult
from agentgym.core.spaces import AnyText, message_space
from agentgym.core.task import Split, Task, split_of
from agentgym.core.tools import ToolSpec, collect_tools
from agentgym.core.workers import off_loop
from agentgym.errors import UserError

Observation = dict[str, str]


class TextEnv(ReplyDispatcher, gym.Env, AsyncEnv):
    """A multi-turn text environment (see the module docstring for the contract)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"]}
    #: Shown as the system message; tool schemas are passed separately to the policy.
    system_prompt: ClassVar[str] = ""
    #: The hooks this class overrides (set per subclass; steps skip the others without a call),
    #: and the optional protocol hooks among them (what reset info's ``hooks`` says).
    _own_hooks: ClassVar[frozenset[str]] = frozenset()
    _protocol_hooks: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._own_hooks = frozenset(name for name in (*OPTIONAL_HOOKS, "on_text", "close")
                                   if getattr(cls, name) is not getattr(TextEnv, name, None))
        cls._protocol_hooks = tuple(name for name in OPTIONAL_HOOKS if name in cls._own_hooks)

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
        self._hook_lock = threading.RLock()  # one hook at a time per instance, whatever thread runs it

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
        return self._run_sync(self._areset(seed, options), self._reset_suspends())

    def step(self, action: Any):
        """Gymnasium's step: one observation (several tool results merged), the list in ``info["messages"]``."""
        self._check_running()
        result = self._run_sync(self._astep(action), self._step_suspends())
        info = result.info  # made for this step: gymnasium's copy may hold the messages too
        info["messages"] = result.messages
        return self._last_obs, result.reward, result.terminated, result.truncated, info

    # ----------------------------------------------------------------- async protocol
    async def areset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode: the first user message and the reset info (``task`` included)."""
        if self._reset_suspends():
            return await self._areset(seed, options)
        return await off_loop(self._drive, self._areset(seed, options))

    async def astep(self, message: Message | str) -> StepResult:
        """Answer the assistant's reply (see :meth:`_astep` for how it is read)."""
        self._check_running()
        if self._step_suspends():
            return await self._astep(message)
        return await off_loop(self._drive, self._astep(message))

    async def aprogress(self) -> float | None:
        value = await self._hook(self.progress, TextEnv.progress)
        return None if value is None else float(value)

    async def ahint(self) -> str | None:
        value = await self._hook(self.hint, TextEnv.hint)
        return None if value is None else str(value)

    async def aoracle_action(self) -> Message | str | None:
        try:
            return await self._hook(self.oracle_action, TextEnv.oracle_action)
        except NotImplementedError:
            return None

    async def avalid_actions(self) -> list[str] | None:
        value = await self._hook(self.valid_actions, TextEnv.valid_actions)
        return None if value is None else [str(v) for v in value]

    async def aclose(self) -> None:
        if "close" in self._own_hooks:
            await self._call(self.close)

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
        if options.get("task_id") is not None:
            return self._task_by_id(str(options["task_id"]))
        if self._fixed_task is not None:
            return self._fixed_task
        if self._task_list:
            return self._task_list[int(self.np_random.integers(len(self._task_list)))]
        start = int(self.np_random.integers(2**31 - 1))
        for i in range(start, start + 10_000):
            candidate = self.generate_task(i)
            if split_of(candidate.fingerprint()) == self.split:
                return candidate
        raise UserError(f"{type(self).__name__}.generate_task gave no {self.split}-split task in 10,000 tries: tasks "
                        "go to a split by a hash of their `inputs`, so give each task distinct inputs (e.g. its "
                        "index or its puzzle).")

    def _task_by_id(self, task_id: str) -> Task:
        """``options={"task_id": ...}``: the task with that id from the fixed task or the task list."""
        listed = ([self._fixed_task] if self._fixed_task is not None else []) + list(self._task_list or [])
        if not listed:
            raise UserError(f"{type(self).__name__} generates its tasks and cannot look one up by id; "
                            "pass the task itself (options={'task': ...}) or a seed.")
        for task in listed:
            if task.id == task_id:
                return task
        raise UserError(f"no task {task_id!r} in {type(self).__name__}'s {len(listed)} tasks.")

    async def _areset(self, seed: int | None, options: dict[str, Any] | None):
        gym.Env.reset(self, seed=seed)
        if self._driving_sync and self._driver == threading.get_ident():  # hooks are sync: call them directly
            task = self._choose_task(options or {})
            prompt = self.setup(task)
        else:
            task = await self._call(self._choose_task, options or {})
            prompt = await self._call(self.setup, task)
        self.task = task
        self.turn = 0
        self.invalid_actions = 0
        self._done = False
        self._last_obs = {"role": "user", "content": prompt}
        info: dict[str, Any] = {"task_id": task.id, "task": task, "system_prompt": self.system_prompt,
                                "hooks": list(self._protocol_hooks)}
        if self.tools:
            info["tools"] = self.tool_schemas
        if "valid_actions" in self._own_hooks:
            fn = self.valid_actions
            valid = fn() if self._driving_sync and self._driver == threading.get_ident() else await self._call(fn)
            if valid is not None:
                info["valid_actions"] = valid
        return self._last_obs, info

    def _check_running(self) -> None:
        if self.task is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._done:
            raise gym.error.ResetNeeded("the episode is over; call reset() to start a new one")

    def _reset_suspends(self) -> bool:
        """Whether a reset awaits something (an async ``setup`` or hook): then it runs on the loop."""
        return is_async(self.setup) or is_async(self.generate_task) or is_async(self.valid_actions)

    async def _hook(self, fn: Any, base: Any, *args: Any) -> Any:
        """A hook's value; None without a thread hop when the subclass did not override it."""
        if getattr(type(self), fn.__name__) is base:
            return None
        return await self._call(fn, *args)


_TOOL_CACHE: dict[type, dict[str, ToolSpec]] = {}


def _tools_of(cls: type) -> dict[str, ToolSpec]:
    if cls not in _TOOL_CACHE:
        _TOOL_CACHE[cls] = collect_tools(cls)
    return _TOOL_CACHE[cls]

