"""Gymnasium spaces for text environments.

Observations are chat messages ``{"role", "content"}`` and actions are the model's raw
reply. Gymnasium's :class:`~gymnasium.spaces.Text` only admits characters from a fixed
charset; a model may emit anything, so :class:`AnyText` admits every string up to a
length while sampling from printable characters (what ``check_env`` uses).
"""

from __future__ import annotations

import functools
import string
from typing import Any

from gymnasium import spaces

PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " \n"


class AnyText(spaces.Text):
    """Any ``str`` of at most ``max_length`` characters."""

    def __init__(self, max_length: int, *, min_length: int = 0, seed=None):
        # gymnasium builds its character tables per instance (~50 us: three per environment, on the
        # path of every episode's start); the charset is fixed, so instances share one set of them
        if not 0 <= min_length <= max_length:
            raise ValueError(f"AnyText needs 0 <= min_length <= max_length, got {min_length} and {max_length}")
        self.__dict__.update(_printable_text_state())
        self.min_length, self.max_length = int(min_length), int(max_length)
        spaces.Space.__init__(self, dtype=str, seed=seed)  # this instance's own sampler

    def contains(self, x) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"AnyText({self.min_length}, {self.max_length})"


@functools.lru_cache(maxsize=1)
def _printable_text_state() -> dict[str, Any]:
    """The attributes of a Text space over :data:`PRINTABLE` (read-only tables, shared)."""
    return dict(vars(spaces.Text(max_length=1, min_length=0, charset=PRINTABLE)))


def message_space(max_length: int = 1 << 20) -> spaces.Dict:
    """The observation space: one chat message with a role and text content."""
    return spaces.Dict({"role": AnyText(16), "content": AnyText(max_length)})
