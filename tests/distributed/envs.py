"""Environments for the Ray tests: the letter env, and a slow one whose steps block their thread."""

from __future__ import annotations

import time

from tests.train.toy_env import LetterEnv
from tests.train.toy_env import register as register_letter


class SlowLetterEnv(LetterEnv):
    """The letter env, each step blocking its thread for ``delay_s`` (as a sandbox call would)."""

    def __init__(self, delay_s: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.delay_s = delay_s

    def on_text(self, text: str) -> str:
        time.sleep(self.delay_s)  # blocking on purpose: the worker must run it off its event loop
        return super().on_text(text)


def register() -> None:
    """Register letter/v0 and slow-letter/v0 (run in the driver and, via worker_setup, in every worker)."""
    import agentgym

    register_letter()
    if "slow-letter/v0" not in agentgym.registry():
        agentgym.register("slow-letter/v0", "tests.distributed.envs:SlowLetterEnv", description="blocking steps")
