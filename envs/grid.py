"""What the grid worlds (maze, Sokoban) share: the four moves, their flat-index offsets,
reading a move out of free text, and the ``move`` tool.

Replies are read leniently: the first direction word counts ("I move left." is a move left),
and a number right after it is a step count ("left 3", "up x2"). Compass words are accepted
as synonyms because small models use them. Boards are flat lists of cells with a wall ring,
so a move is an index offset (:func:`flat_offsets`) and needs no bounds check.
"""

from __future__ import annotations

import re
from typing import Literal

from agentgym.core import ToolError, tool

DIRECTIONS: tuple[str, ...] = ("up", "down", "left", "right")
#: Where a neighbour in each direction is, as the observations say it.
WHERE = {"up": "above you", "down": "below you", "left": "to your left", "right": "to your right"}
MULTI_STEP_RULE = ', optionally followed by a number of steps (e.g. "left 3")'
_SYNONYMS = {"north": "up", "south": "down", "west": "left", "east": "right"}
_MOVE = re.compile(
    r"\b(up|down|left|right|north|south|east|west)\b(?:\s*(?:x|\*|times)?\s*(\d{1,4})\b)?", re.IGNORECASE
)


def flat_offsets(stride: int) -> dict[str, int]:
    """Flat-index offset of each move on a board whose rows are ``stride`` cells apart."""
    return {"up": -stride, "down": stride, "left": -1, "right": 1}


def parse_move(text: str, max_steps: int) -> tuple[str, int] | None:
    """``(direction, steps)`` for the first direction word in ``text``, or ``None``.

    ``steps`` defaults to 1 and is clipped to ``[1, max_steps]``.
    """
    m = _MOVE.search(text)
    if m is None:
        return None
    word = m.group(1).lower()
    direction = _SYNONYMS.get(word, word)
    count = m.group(2)
    if count is None:
        return direction, 1
    return direction, min(max(int(count), 1), max_steps)


def format_move(direction: str, steps: int) -> str:
    """The canonical text of a move: ``"left"`` or ``"left 3"``."""
    return direction if steps == 1 else f"{direction} {steps}"


class GridMoves:
    """Mixin for a grid :class:`~agentgym.TextEnv`: the ``move`` tool and free-text moves both end in
    ``self._move(direction, steps)``, which the env implements."""

    multi_step: bool = True
    _max_steps: int = 1

    def init_moves(self, multi_step: bool, height: int, width: int) -> str:
        """Set how far one move may go; returns the rule's step-count clause for the prompt."""
        self.multi_step = bool(multi_step)
        self._max_steps = max(height, width) if self.multi_step else 1
        return MULTI_STEP_RULE if self.multi_step else ""

    @tool
    def move(self, direction: Literal["up", "down", "left", "right"], steps: int = 1) -> str:
        """Walk in a direction.

        Args:
            direction: up, down, left or right.
            steps: how many cells to walk in that direction; walking stops when blocked.
        """
        if steps < 1:
            raise ToolError("steps must be at least 1")
        return self._move(direction, min(steps, self._max_steps))

    def on_text(self, text: str) -> str:
        parsed = parse_move(text, self._max_steps)
        if parsed is None:
            raise ToolError('no move found; reply with up, down, left or right (e.g. "left" or "left 3").')
        return self._move(*parsed)

    def _move(self, direction: str, steps: int) -> str:
        raise NotImplementedError
