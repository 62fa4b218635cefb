"""Scripted policies for guidance and progress tests (no model, or the tiny tokenizer only)."""

from __future__ import annotations

import random
import re
from typing import Sequence

import pytest

from agentgym.policy.base import Completion, GenerationRequest

_NEXT = re.compile(r"Next moves: ([^.\n]*)")


def _assistant_turns(request: GenerationRequest) -> int:
    return sum(m.get("role") == "assistant" for m in request.messages or [])


class HintFollower:
    """Text-only student: follows "Next moves: ..." from its first prompt, otherwise walks into walls.

    Records every request it gets, so tests can check what any prompt contained.
    """

    name = "hint-follower"

    def __init__(self, fallback: str = "up"):
        self.fallback = fallback
        self.requests: list[GenerationRequest] = []

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        out = []
        for r in requests:
            self.requests.append(r)
            first = next(m["content"] for m in r.messages if m["role"] == "user")
            m = _NEXT.search(first)
            moves = [x.strip() for x in m.group(1).split(",") if x.strip() and x.strip() != "..."] if m else []
            k = _assistant_turns(r)
            out.append([Completion(text=moves[k] if k < len(moves) else self.fallback)])
        return out

    def prompt_texts(self) -> list[str]:
        return ["\n".join(str(m.get("content") or "") for m in r.messages or []) for r in self.requests]

    async def close(self) -> None:
        pass


class ScriptedText:
    """Answers every request with the same text (a teacher or a judge); records requests."""

    name = "scripted-text"

    def __init__(self, text: str | None = None, fn=None):
        self.text, self.fn = text, fn
        self.requests: list[GenerationRequest] = []

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        self.requests.extend(requests)
        return [[Completion(text=self.fn(r) if self.fn else self.text)] for r in requests]

    async def close(self) -> None:
        pass


class TokenOracle:
    """Token-level scripted player on the tiny tokenizer: the env's oracle move with probability ``p``, else
    a random one (an action source: it asks the env through the protocol, and reports token ids)."""

    name = "token-oracle"

    def __init__(self, tokenizer, p: float = 0.6, seed: int = 0):
        from agentgym.policy.chat import ChatRenderer

        self.tokenizer = tokenizer
        self.renderer = ChatRenderer(tokenizer)
        self.p = p
        self.rng = random.Random(seed)
        self.requests: list[GenerationRequest] = []

    async def act(self, env, request: GenerationRequest) -> Completion:
        self.requests.append(request)
        if self.rng.random() < self.p:
            text = await env.aoracle_action()
        else:
            text = self.rng.choice(["up", "down", "left", "right"])
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
        return Completion(text=text, token_ids=ids, logprobs=[-0.5] * len(ids))

    async def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from agentgym.policy.tiny import build_tokenizer

    return build_tokenizer()
