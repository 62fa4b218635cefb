"""The ALFWorld environment: household tasks in TextWorld, played through the real engine.

Each task names one game (``Task.id`` is its path below ``json_2.1.1``). The first message is
the game's own intro (the room and the goal, "Your task is to: ...") followed by the
admissible commands; each later message is the engine's feedback and the commands
admissible now. With ``show_commands="compact"`` (the default) later messages fold the
``go to`` commands, which list every receptacle of the room on every turn, into one
``go to <receptacle>``: about 69 tokens a turn instead of 134 (SmolLM2's tokenizer), so a
50-turn episode fits a 4k-token context, where listing everything overflows after ~28 turns. A reply is one command as plain text (``go to countertop 1``; the last line
or an ``<action>...</action>`` block counts when there is more) or a tool call
``act(command)``. A command the engine does not admit gets the engine's own answer
("Nothing happens.") and counts as an invalid action. ``won`` ends the episode with reward
1; the turn limit is 50 by default, as in GiGPO / verl-agent.

alfworld's handcoded expert is the oracle (its next command), the hint (its plan and next
command) and the progress (the fraction of its plan's subgoals the current state has done),
see :mod:`envs.alfworld.expert`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from typing import Any, Literal

import gymnasium as gym

from agentgym.core import Task, TextEnv, ToolError, tool
from agentgym.errors import UserError
from envs.alfworld import engine as _engine
from envs.alfworld.expert import Expert
from envs.alfworld.games import data_root, game_path, list_games

SYSTEM_PROMPT = (
    "You are an agent in a household simulated as a text game (ALFWorld). Each turn you are told "
    "what you see and which commands are admissible. Reply with exactly one admissible command, "
    "for example `go to countertop 1` or `take mug 1 from countertop 1` (you may reason first and "
    "write the command on the last line, or inside <action></action>), or call act(command). "
    "The game ends when the task is done."
)
_COMMANDS = "Admissible commands: {commands}."
_GO_TO = "go to <receptacle> (any other receptacle in the room)"
SHOW_COMMANDS = ("all", "compact", "none")
_DONE = "Task complete."
_ACTION_TAG = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)
_PUT = re.compile(r"^put (.+?) (?:in|on|in/on|into|onto) (.+)$")
_PREFIX = re.compile(r"^(?:action|command|>)\s*:?\s*", re.IGNORECASE)


class AlfWorldEnv(TextEnv):
    """ALFWorld text games on textworld's engine, with alfworld's handcoded expert as oracle."""

    system_prompt = SYSTEM_PROMPT
    blocking = True

    def __init__(
        self,
        *,
        data_dir: str | None = None,
        eval_split: Literal["valid_seen", "valid_unseen"] = "valid_unseen",
        task_types: Iterable[int | str] | None = None,
        show_commands: Literal["all", "compact", "none"] | bool = "compact",
        max_turns: int = 50,
        max_invalid_actions: int | None = None,
        **kwargs: Any,
    ):
        if eval_split not in ("valid_seen", "valid_unseen"):
            raise UserError(f"eval_split must be 'valid_seen' or 'valid_unseen', not {eval_split!r}.")
        split = kwargs.get("split", "train")
        self.data_root = data_root(data_dir)
        self.alfworld_split = "train" if split == "train" else eval_split
        if isinstance(task_types, (str, int)):
            task_types = [task_types]
        self.task_types = list(task_types) if task_types is not None else None
        if isinstance(show_commands, bool):
            show_commands = "all" if show_commands else "none"
        if show_commands not in SHOW_COMMANDS:
            raise UserError(f"show_commands must be one of {', '.join(SHOW_COMMANDS)}, not {show_commands!r}.")
        self.show_commands = show_commands
        if "task" not in kwargs and "tasks" not in kwargs:
            games = list_games(self.data_root, self.alfworld_split, self.task_types)
            if not games:
                raise UserError(
                    f"no solvable ALFWorld games in {self.data_root}/json_2.1.1/{self.alfworld_split}"
                    + (f" of task types {self.task_types}" if self.task_types else "") + "."
                )
            kwargs["tasks"] = [g.task(split) for g in games]
        super().__init__(
            max_turns=max_turns,
            max_invalid_actions=max_turns if max_invalid_actions is None else max_invalid_actions,
            **kwargs,
        )
        self._engine: _engine.Engine | None = None
        self._state: Any = None
        self._expert: Expert | None = None

    # ----------------------------------------------------------------- tasks
    def setup(self, task: Task) -> str:
        path = game_path(self.data_root, str(task.inputs.get("game", task.id)))
        game = _engine.prepare(path)
        if self._engine is None:
            self._engine = _engine.acquire()
        self._state = self._engine.start(game)
        seed = zlib.crc32(task.id.encode("utf-8"))  # the expert plays a game the same way every time
        self._expert = Expert(str(path), self._state["feedback"], seed, game.readable)
        return self._observation(self._state["feedback"], first=True)

    # ----------------------------------------------------------------- actions
    @tool
    def act(self, command: str) -> str:
        """Carry out one admissible command, e.g. "go to countertop 1" or "take mug 1 from countertop 1".

        Args:
            command: the command, exactly as listed among the admissible commands.
        """
        return self._play(str(command))

    def on_text(self, text: str) -> str:
        return self._play(text)

    def _play(self, reply: str) -> str:
        if self._engine is None:
            raise gym.error.ResetNeeded("the environment was closed; call reset() to start a new episode")
        command = self._command_in(reply)
        state, _, _ = self._engine.step(command)
        if command not in self._state["admissible_commands"]:
            # The engine's own answer ("Nothing happens."); the state is unchanged.
            raise ToolError(self._observation(state["feedback"]))
        self._state = state
        self._expert.record(command, state)
        if state["won"]:
            self.finish(1.0, True)
            return f"{state['feedback']}\n{_DONE}"
        return self._observation(state["feedback"])

    def _command_in(self, reply: str) -> str:
        """The admissible command a reply names, or its best guess at a command when none matches."""
        admissible = self._state["admissible_commands"]
        tagged = _ACTION_TAG.findall(reply)
        lines = [line for line in reply.splitlines() if line.strip()]
        candidates = [tagged[-1]] if tagged else [reply, *reversed(lines)]
        for candidate in candidates:
            command = _normalize(candidate)
            if command in admissible:
                return command
            put = _PUT.match(command)  # alfworld < 0.4 said "put X in/on Y"; the engine says "move X to Y"
            if put and f"move {put[1]} to {put[2]}" in admissible:
                return f"move {put[1]} to {put[2]}"
        return _normalize(tagged[-1] if tagged else (lines[-1] if lines else ""))

    def _observation(self, feedback: str, first: bool = False) -> str:
        if self.show_commands == "none":
            return feedback
        commands = self.valid_actions() or []
        if self.show_commands == "compact" and not first:
            commands = [_GO_TO] + [c for c in commands if not c.startswith("go to ")]
        return f"{feedback}\n\n" + _COMMANDS.format(commands=", ".join(commands))

    def valid_actions(self) -> list[str] | None:
        """The engine's admissible commands, without ``help``."""
        if self._state is None:
            return None
        return [c for c in self._state["admissible_commands"] if c != "help"]

    def render_text(self) -> str:
        return self._last_obs["content"] if self._last_obs else ""

    # ----------------------------------------------------------------- oracle, hint, progress
    def oracle_action(self) -> str:
        """The handcoded expert's next command ("look" if the expert has given up)."""
        if self._expert is None:
            raise RuntimeError("call reset() before oracle_action()")
        return self._expert.next_action() or "look"

    def hint(self) -> str | None:
        """The expert's plan, how far the episode is along it, and its next command."""
        if self._expert is None or self._expert.next_action() is None:
            return None
        subgoals = self._expert.subgoals()
        done = min(self._expert.subgoals_done(), len(subgoals))
        plan = " -> ".join(_describe(s) for s in subgoals)
        return f"Plan: {plan}. Done: {done} of {len(subgoals)}. Next command: {self._expert.next_action()}."

    def progress(self) -> float | None:
        """Fraction of the expert's subgoals (fixed at the episode's start) done; 1.0 once won."""
        if self._expert is None or self._state is None:
            return None
        if self._state["won"]:
            return 1.0
        subgoals = self._expert.subgoals()
        if not subgoals:
            return 0.0
        return min(1.0, self._expert.subgoals_done() / len(subgoals))

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Give the engine back to the process's pool (a later reset takes one again)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            _engine.release(engine)
        super().close()

    def __del__(self) -> None:  # an env dropped without close() still returns its engine
        try:
            self.close()
        except Exception:
            pass


def _normalize(text: str) -> str:
    """A reply line as a command: lower case, single spaces, no quotes, prompt marks or final period."""
    text = _PREFIX.sub("", text.strip().strip("`'\"*").strip())
    text = " ".join(text.lower().split())
    return text.rstrip(".!").strip("`'\"*").strip()


def _describe(subgoal: dict[str, str]) -> str:
    action, thing = subgoal.get("action", ""), subgoal.get("param", "")
    return {
        "find": f"find a {thing}",
        "take": f"take the {thing}",
        "goto": f"go to the {thing}",
        "put": f"put it in/on the {thing}",
        "use": f"use the {thing}",
    }.get(action, f"{action} the {thing}")
