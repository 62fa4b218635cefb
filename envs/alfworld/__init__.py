"""ALFWorld: household tasks as text games on the real TextWorld engine (alfworld 0.4.2).

Ids: ``alfworld/v0`` (the train games; ``split="test"`` plays ``eval_split``, by default
``valid_unseen``), ``alfworld-seen/v0`` and ``alfworld-unseen/v0`` (the same, with the test
split set to ``valid_seen`` or ``valid_unseen``). ``task_types=[...]`` keeps some of the six task
types. Games come from ``data_dir``, ``$ALFWORLD_DATA`` or the small set shipped here; see
:mod:`envs.alfworld.games`. Needs the ``alfworld`` extra (alfworld, textworld[pddl]).
"""

from __future__ import annotations

import agentgym

ENTRY = "envs.alfworld.env:AlfWorldEnv"


def register() -> None:
    """Register the ALFWorld ids (the ``agentgym.envs`` entry point)."""
    agentgym.register(
        "alfworld/v0",
        ENTRY,
        description="ALFWorld household text games (TextWorld engine, handcoded-expert oracle); "
        "task_types=[...], eval_split=valid_seen|valid_unseen",
        extra="alfworld",
    )
    agentgym.register(
        "alfworld-seen/v0",
        ENTRY,
        description="ALFWorld; the test split plays valid_seen (rooms seen in training)",
        extra="alfworld",
        suites=["alfworld_seen"],
        eval_split="valid_seen",
    )
    agentgym.register(
        "alfworld-unseen/v0",
        ENTRY,
        description="ALFWorld; the test split plays valid_unseen (rooms never seen in training)",
        extra="alfworld",
        suites=["alfworld_unseen"],
        eval_split="valid_unseen",
    )
