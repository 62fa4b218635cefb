"""Gymnasium spaces for text environments.

Observations are chat messages ``{"role", "content"}`` and actions are the model's raw
reply. Gymnasium's :class:`~gymnasium.spaces.Text` only admits characters from a fixed
charset; a model may emit anything, so :class:`AnyText` admits every string up to a
length while sampling from printable characters (what ``check_env`` uses).
"""

from __future__ import annotations

import string

from gymnasium import spaces

PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " \n"


class AnyText(spaces.Text):
    """Any ``str`` of at most ``max_length`` characters."""

    def __init__(self, max_length: int, *, min_length: int = 0, seed=None):
        super().__init__(max_length=max_length, min_length=min_length, charset=PRINTABLE, seed=seed)

    def contains(self, x) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"AnyText({self.min_length}, {self.max_length})"


def message_space(max_length: int = 1 << 20) -> spaces.Dict:
    """The observation space: one chat message with a role and text content."""
    return spaces.Dict({"role": AnyText(16), "content": AnyText(max_length)})
