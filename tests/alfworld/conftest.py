"""Shared helpers for the ALFWorld tests (every test here needs the ``alfworld`` extra)."""

from __future__ import annotations

import pytest

pytest.importorskip("alfworld", reason="needs the alfworld extra (alfworld, textworld[pddl])")
pytest.importorskip("fast_downward", reason="needs the alfworld extra (textworld[pddl])")


def play_oracle(env, task=None, seed=None) -> tuple[list[str], list[float], dict]:
    """Reset ``env`` (on ``task`` or by ``seed``) and let the oracle play to the end."""
    env.reset(seed=seed, options={"task": task} if task is not None else None)
    commands, progress, info = [], [env.progress()], {}
    while not env.done:
        command = env.oracle_action()
        _, _, _, _, info = env.step(command)
        commands.append(command)
        progress.append(env.progress())
    return commands, progress, info
