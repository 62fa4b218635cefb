"""Maze: walk from a start to a goal on a procedurally generated grid.

Ids: ``maze/v0`` (``preset=`` easy | medium | hard, default medium) and one id per
preset, ``maze-easy/v0``, ``maze-medium/v0``, ``maze-hard/v0``. Any constructor
argument of :class:`envs.maze.env.MazeEnv` may be passed to ``agentgym.make``.
"""

from __future__ import annotations

import agentgym

PRESET_NAMES = ("easy", "medium", "hard")
_DESCRIPTIONS = {
    "easy": "4x4 maze, few walls, paths of 2-5 moves",
    "medium": "6x6 maze, paths of 4-10 moves",
    "hard": "10x10 maze, denser walls, paths of 10+ moves",
}


def register() -> None:
    """Register the maze ids (the ``agentgym.envs`` entry point)."""
    agentgym.register(
        "maze/v0",
        "envs.maze.env:MazeEnv",
        description="Grid maze with a BFS oracle; preset=easy|medium|hard, obs_mode=grid|description",
        preset="medium",
    )
    for name in PRESET_NAMES:
        agentgym.register(
            f"maze-{name}/v0",
            "envs.maze.env:MazeEnv",
            description=_DESCRIPTIONS[name],
            suites=[f"maze_{name}"],
            preset=name,
        )
