"""Reading a move out of free text, shared by the grid environments.

Replies are read leniently: the first direction word counts ("I move left." is a
move left), and a number right after it is a step count ("left 3", "up x2").
Compass words are accepted as synonyms because small models use them.
"""

from __future__ import annotations

import re

DIRECTIONS: tuple[str, ...] = ("up", "down", "left", "right")
_SYNONYMS = {"north": "up", "south": "down", "west": "left", "east": "right"}
_MOVE = re.compile(
    r"\b(up|down|left|right|north|south|east|west)\b(?:\s*(?:x|\*|times)?\s*(\d{1,4})\b)?", re.IGNORECASE
)


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
