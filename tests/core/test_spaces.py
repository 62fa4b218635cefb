"""Text spaces: every AnyText shares one set of character tables but samples on its own."""

from __future__ import annotations

import pytest
from gymnasium import spaces

from agentgym.core.spaces import PRINTABLE, AnyText, message_space


def test_any_text_admits_any_string_within_its_lengths():
    space = AnyText(8, min_length=2)
    assert space.contains("é\x00日本") and not space.contains("a") and not space.contains("x" * 9)
    assert not space.contains(b"bytes")
    assert space == spaces.Text(8, min_length=2, charset=PRINTABLE)
    with pytest.raises(ValueError):
        AnyText(2, min_length=3)


def test_any_text_instances_sample_independently():
    a, b = AnyText(40, seed=1), AnyText(40, seed=1)
    c = AnyText(40, seed=2)
    first = [a.sample() for _ in range(5)]
    assert first == [b.sample() for _ in range(5)] and first != [c.sample() for _ in range(5)]
    assert all(set(s) <= set(PRINTABLE) and len(s) <= 40 for s in first)
    a.seed(7)  # reseeding one leaves the others alone
    reference = AnyText(40, seed=1)
    assert [b.sample() for _ in range(2)] == [reference.sample() for _ in range(7)][5:]


def test_message_space_contains_chat_messages():
    space = message_space(max_length=32)
    assert space.contains({"role": "user", "content": "hello"})
    assert not space.contains({"role": "user", "content": "x" * 33})
