"""Small fakes and checks for the rewards tests.

``FakePolicy`` implements the Policy protocol with a scripted reply function: the unit
boundary for judge logic (batching, caching, retries, parsing). Real-model judging is
covered by test_judge_e2e.py.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Sequence

from agentgym.policy.base import Completion, GenerationRequest


class FakePolicy:
    def __init__(self, reply: Callable[[str], str] | str = "Rationale: fine\nScore: 1", *, delay: float = 0.0,
                 fail_first: int = 0, name: str = "fake", completion_error: str | None = None):
        self.reply = reply
        self.delay = delay
        self.fail_first = fail_first
        self.name = name
        self.completion_error = completion_error
        self.calls = 0
        self.prompts: list[str] = []
        self.closed = False

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.calls <= self.fail_first:
            raise ConnectionError("backend down")
        out = []
        for r in requests:
            prompt = r.messages[-1]["content"] if r.messages else ""
            self.prompts.append(prompt)
            text = self.reply(prompt) if callable(self.reply) else self.reply
            out.append([Completion(text=text, token_ids=list(range(len(text.split()))),
                                   error=self.completion_error,
                                   finish_reason="error" if self.completion_error else "stop")])
        return out

    async def close(self) -> None:
        self.closed = True


def length_check(response: str, min_words: int = 3) -> bool:
    return len(response.split()) >= min_words


async def async_check(response: str, reference: dict) -> tuple[float, str]:
    await asyncio.sleep(0)
    return (1.0 if reference.get("answer", "") in response else 0.0), "checked asynchronously"


def broken_check(response: str) -> float:
    raise RuntimeError("boom")


def dict_check(**kwargs) -> dict:
    return {"score": 0.25, "rationale": f"saw {sorted(kwargs)}"}


def reversed_match(prediction: str, answers: list[str]) -> float:
    return float(any(prediction[::-1] == a for a in answers))
