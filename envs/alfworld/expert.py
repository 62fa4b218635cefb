"""alfworld's handcoded expert as oracle, hint and progress, fed lazily and seeded per episode.

The expert (``HandCodedTWAgent``) tracks the episode from the observations and the game's
facts, and decides the next command from its plan of subgoals for the task type (find the
object, take it, go to the microwave, heat it, find the receptacle, put it there...). alfworld's
``AlfredExpert`` wrapper calls it after every step; here the steps are recorded and given to
the expert only when its answer is asked for (oracle, hint or progress), in the same order and
with the same arguments, so a policy that never asks pays nothing.

Three differences from ``AlfredExpert``, all to keep the expert's state true to the game:

* it is told each placing command in the words it was written for: alfworld 0.4 renamed
  ``put X in/on Y`` to ``move X to Y`` in the grammar, but the expert still recognises a placed
  object by ``put`` and otherwise believes it still holds it, so it never wins a pick-two task;
* commands the engine rejected ("Nothing happens.") are not shown to it (its tracking would
  take ``go to <anything>`` as a move);
* its random choices (which of two visible mugs to take, a random command when it would repeat
  itself) come from a generator seeded per episode, not the global ``random`` module, so
  episodes replay exactly.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from typing import Any

from alfworld.agents.expert import HandCodedTWAgent
from alfworld.agents.expert import handcoded_expert as _handcoded

#: alfworld's AlfredExpert gives the expert this many act() calls before it gives up.
MAX_EXPERT_STEPS = 200
_MOVE = re.compile(r"^move (.+) to (.+)$")


class _EpisodeRandom(threading.local):
    """Stands in for the expert module's ``random``: draws come from the calling episode's generator."""

    rng: random.Random = random.Random(0)

    def __getattr__(self, name: str) -> Any:  # choice, randint... of the current generator
        return getattr(self.rng, name)


_EPISODE_RANDOM = _EpisodeRandom()
_handcoded.random = _EPISODE_RANDOM  # the expert module draws only through this name


class Expert:
    """The handcoded expert for one episode; see the module docstring."""

    def __init__(self, game_path: str, intro: str, seed: int, readable: Callable[[Any], Any]):
        self._game_path = game_path
        self._intro = intro
        self._rng = random.Random(seed)
        self._readable = readable  # raw PDDL fact -> fact with display names
        self._agent: HandCodedTWAgent | None = None
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._next: str | None = "look"  # AlfredExpert's first move, before the expert has acted
        self.failed: str | None = None

    def record(self, command: str, state: Any) -> None:
        """Note an accepted command and the game state it led to (cheap: nothing is computed)."""
        if self.failed is None:
            self._pending.append((command, {
                "feedback": state["feedback"],
                "admissible_commands": state["admissible_commands"],
                "won": state["won"],
                "_facts": state["_facts"],
            }))

    def next_action(self) -> str | None:
        """The expert's next command, or None when it has failed (timed out or gave up)."""
        self._catch_up()
        return None if self.failed else self._next

    def subgoals(self) -> list[dict[str, str]]:
        """The expert's plan for the task: ``[{"action": "find", "param": "mug"}, ...]``."""
        self._catch_up()
        return list(self._agent.policy.subgoals) if self._agent is not None else []

    def subgoals_done(self) -> int:
        """How many of :meth:`subgoals` the current state has completed, as the expert judges it."""
        self._catch_up()
        return int(self._agent.policy.subgoal_idx) if self._agent is not None else 0

    def _catch_up(self) -> None:
        if self.failed is not None:
            return
        _EPISODE_RANDOM.rng = self._rng
        try:
            if self._agent is None:
                self._agent = HandCodedTWAgent(max_steps=MAX_EXPERT_STEPS)
                self._agent.reset(self._game_path)  # reads the task from traj_data.json
                self._agent.observe(self._intro)
            while self._pending:
                command, state = self._pending.pop(0)
                game_state = {
                    "feedback": state["feedback"],
                    "admissible_commands": state["admissible_commands"],
                    "facts": [self._readable(f) for f in state["_facts"]],
                }
                action = self._agent.act(game_state, 0, state["won"], _in_expert_words(command))
                # As AlfredExpert: a command the engine would not accept becomes "look".
                self._next = action if action in state["admissible_commands"] else "look"
        except Exception as exc:  # HandCodedAgentTimeout / HandCodedAgentFailed, or a bug in the expert
            self.failed = f"{type(exc).__name__}: {exc}".rstrip(": ")
            self._pending.clear()


def _in_expert_words(command: str) -> str:
    """``move X to Y`` as the expert's own ``put X in/on Y`` (see the module docstring)."""
    match = _MOVE.match(command)
    return f"put {match[1]} in/on {match[2]}" if match else command
