"""A trivial two-turn environment for the learning test.

Each turn the reply should start with a letter from a to m; the episode's reward, given
at the end, is the fraction of turns that did. A random tiny model scores about 0.3.
"""

from __future__ import annotations

from agentgym.core import Task, TextEnv

PROMPT = "Reply with a word that starts with a letter from a to m."


class LetterEnv(TextEnv):
    blocking = False

    def __init__(self, turns: int = 2, **kwargs):
        kwargs.setdefault("max_turns", turns)
        super().__init__(**kwargs)
        self.turns = turns

    def generate_task(self, index: int) -> Task:
        return Task(id=f"letter-{index}", inputs={"index": index})

    def setup(self, task: Task) -> str:
        self.hits = 0
        return PROMPT

    def on_text(self, text: str) -> str:
        hit = text.strip()[:1] in "abcdefghijklm" and text.strip() != ""
        self.hits += hit
        if self.turn >= self.turns:
            self.finish(self.hits / self.turns, self.hits == self.turns)
            return "Done."
        return ("Good. " if hit else "No. ") + PROMPT


def register() -> None:
    import agentgym

    if "letter/v0" not in agentgym.registry():
        agentgym.register("letter/v0", "tests.train.toy_env:LetterEnv", description="toy learning-test env")
