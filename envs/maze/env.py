"""The maze environment: walk from the start to the goal on a grid.

The action is free text (the first direction word counts, with an optional step
count: ``"left 3"``) or a ``move(direction, steps)`` tool call (:mod:`envs.grid`). Walking into a wall
is an ordinary turn whose observation says so, not an invalid action. The episode
ends with reward 1.0 on reaching the goal; optional distance shaping adds
``shaping * (d_before - d_after) / d_start`` per turn, so an optimal episode earns
``1 + shaping``.

Observations are either the ASCII grid (``obs_mode="grid"``) or a short, regular
description (``obs_mode="description"``): where the goal is relative to the agent
and which moves are open, e.g. ``Goal: 2 up, 3 left. Open: up, left.``
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from agentgym.core import Task, TextEnv
from agentgym.errors import UserError
from envs.grid import DIRECTIONS, WHERE, GridMoves, format_move
from envs.maze.generate import bfs, generate_maze, offsets, padded

#: Difficulty presets: grid size, wall density, shortest-path range, turn limit.
PRESETS: dict[str, dict[str, Any]] = {
    "easy": {"height": 4, "width": 4, "wall_density": 0.15, "min_path": 2, "max_path": 5, "max_turns": 10},
    "medium": {"height": 6, "width": 6, "wall_density": 0.25, "min_path": 4, "max_path": 10, "max_turns": 20},
    "hard": {"height": 10, "width": 10, "wall_density": 0.3, "min_path": 10, "max_path": None, "max_turns": 40},
}

RULES = (
    "Reply with one move: up, down, left or right{count}. "
    "Moving into a wall leaves you where you are."
)
GRID_PROMPT = "Walk through the maze to the goal. A is you, G is the goal, # is a wall, . is open.\n"
DESCRIPTION_PROMPT = "Walk through the maze to the goal.\n"


class MazeEnv(GridMoves, TextEnv):
    """Grid maze with a BFS oracle, hints, progress and difficulty presets."""


    def __init__(
        self,
        *,
        preset: str = "medium",
        height: int | None = None,
        width: int | None = None,
        size: int | None = None,
        wall_density: float | None = None,
        min_path: int | None = None,
        max_path: int | None = None,
        min_detour: int = 0,
        obs_mode: Literal["grid", "description"] = "grid",
        multi_step: bool = True,
        shaping: float = 0.0,
        seed: int = 0,
        max_turns: int | None = None,
        **kwargs: Any,
    ):
        if preset not in PRESETS:
            raise UserError(f"maze preset must be one of {sorted(PRESETS)}, not {preset!r}.")
        if obs_mode not in ("grid", "description"):
            raise UserError(f"obs_mode must be 'grid' or 'description', not {obs_mode!r}.")
        p = PRESETS[preset]
        self.preset = preset
        self.height = int(size or height or p["height"])
        self.width = int(size or width or p["width"])
        if not (3 <= self.height <= 32 and 3 <= self.width <= 32):
            raise UserError(f"maze size must be between 3x3 and 32x32, not {self.height}x{self.width}.")
        self.wall_density = float(p["wall_density"] if wall_density is None else wall_density)
        if not 0.0 <= self.wall_density < 1.0:
            raise UserError(f"wall_density must be in [0, 1), not {self.wall_density}.")
        self.min_path = int(p["min_path"] if min_path is None else min_path)
        self.max_path = p["max_path"] if max_path is None else int(max_path)
        self.min_detour = int(min_detour)
        if self.min_detour < 0:
            raise UserError(f"min_detour must be 0 or more, not {self.min_detour}.")
        if self.min_detour and self.wall_density == 0:
            raise UserError("min_detour needs walls: set wall_density above 0.")
        self.obs_mode = obs_mode
        self.shaping = float(shaping)
        self.seed = int(seed)
        super().__init__(max_turns=int(max_turns or p["max_turns"]), **kwargs)
        self._rules = RULES.format(count=self.init_moves(multi_step, self.height, self.width))

    # ----------------------------------------------------------------- tasks
    def generate_task(self, index: int) -> Task:
        rng = np.random.default_rng([self.seed, index])
        try:
            maze = generate_maze(rng, self.height, self.width, self.wall_density, self.min_path, self.max_path,
                                 min_detour=self.min_detour)
        except RuntimeError as exc:  # settings no grid of this size allows: the user's to change
            raise UserError(f"{exc}: widen min_path/max_path, lower min_detour or change the size.") from None
        task = Task(
            id=f"maze-{self.preset}-{self.height}x{self.width}-s{self.seed}-{index}",
            inputs={"grid": maze.rows, "start": list(maze.start), "goal": list(maze.goal)},
            reference={"path": maze.path, "length": len(maze.path)},
            metadata={"preset": self.preset, "index": index},
        )
        # reset() usually sets up the task it just generated: keep the distance field.
        self._generated = (task.inputs, maze.dist)
        return task

    def setup(self, task: Task) -> str:
        if self.__dict__.get("_layout_inputs") is not task.inputs:  # same maze again: reuse it
            self._build(task)
        self._pos = self._start_cell
        self._open_dirs: dict[int, list[str]] = {}
        intro = GRID_PROMPT if self.obs_mode == "grid" else DESCRIPTION_PROMPT
        return intro + self._rules + "\n\n" + self._view()

    # ----------------------------------------------------------------- actions
    def _build(self, task: Task) -> None:
        """The static part of an episode: board, distances to the goal, rendered rows."""
        rows: list[str] = list(task.inputs["grid"])
        (sr, sc), (gr, gc) = task.inputs["start"], task.inputs["goal"]
        height, width = len(rows), len(rows[0])
        if not (0 <= sr < height and 0 <= sc < width and 0 <= gr < height and 0 <= gc < width):
            raise ValueError(f"task {task.id}: start or goal outside the grid")
        w2 = width + 2
        self._w2 = w2
        self._delta = offsets(width)
        self._open = is_open = padded(rows)
        self._goal = (gr + 1) * w2 + gc + 1
        self._start_cell = (sr + 1) * w2 + sc + 1
        generated = self.__dict__.pop("_generated", None)
        if generated is not None and generated[0] is task.inputs:
            self._dist = generated[1]
        else:
            self._dist, _ = bfs(is_open, self._goal, tuple(self._delta.values()))
        if self._dist[self._start_cell] < 0:
            raise ValueError(f"task {task.id}: the goal is not reachable from the start")
        self._start_dist = self._dist[self._start_cell]
        self._rows = [row[:gc] + "G" + row[gc + 1:] if r == gr else row for r, row in enumerate(rows)]
        self._layout_inputs = task.inputs

    def _move(self, direction: str, steps: int) -> str:
        delta = self._delta[direction]
        is_open, pos, goal = self._open, self._pos, self._goal
        moved = 0
        while moved < steps and is_open[pos + delta]:
            pos += delta
            moved += 1
            if pos == goal:
                break
        before = self._dist[self._pos]
        self._pos = pos
        if self.shaping:
            self.add_reward(self.shaping * (before - self._dist[pos]) / self._start_dist)
        if pos == goal:
            self.finish(1.0, True)
            return f"Moved {format_move(direction, moved)} and reached the goal!"
        if moved == 0:
            head = f"Blocked: a wall is {WHERE[direction]}."
        elif moved < steps:
            head = f"Moved {format_move(direction, moved)}, then hit a wall."
        else:
            head = f"Moved {format_move(direction, moved)}."
        return head + self._sep + self._view()

    @property
    def _sep(self) -> str:
        return "\n" if self.obs_mode == "grid" else " "

    # ----------------------------------------------------------------- views
    def _view(self) -> str:
        if self.obs_mode == "description":
            return self._description()
        r, c = divmod(self._pos, self._w2)
        r, c = r - 1, c - 1
        rows = self._rows.copy()
        row = rows[r]
        rows[r] = row[:c] + "A" + row[c + 1:]
        return "\n".join(rows)

    def _description(self) -> str:
        r, c = divmod(self._pos, self._w2)
        gr, gc = divmod(self._goal, self._w2)
        parts = []
        if gr != r:
            parts.append(f"{abs(gr - r)} {'up' if gr < r else 'down'}")
        if gc != c:
            parts.append(f"{abs(gc - c)} {'left' if gc < c else 'right'}")
        open_dirs = ", ".join(self._open_at(self._pos)) or "none"
        return f"Goal: {', '.join(parts)}. Open: {open_dirs}."

    def render_text(self) -> str:
        return self._view() if self.task is not None else ""

    # ----------------------------------------------------------------- oracle and guidance
    def _best_run(self, pos: int) -> tuple[str, int]:
        """The optimal direction from ``pos`` with the longest straight optimal run."""
        dist, best, best_len = self._dist, "up", 0
        for direction in DIRECTIONS:
            delta, n, d = self._delta[direction], 0, dist[pos]
            while d > 0 and dist[pos + (n + 1) * delta] == d - 1:
                n += 1
                d -= 1
                if not self.multi_step:
                    break
            if n > best_len:
                best, best_len = direction, n
        return best, best_len

    def oracle_action(self) -> str:
        direction, n = self._best_run(self._pos)
        return format_move(direction, n)

    def plan(self, max_moves: int | None = None) -> list[str]:
        """The optimal moves from the current position to the goal (the first ``max_moves``)."""
        moves, pos = [], self._pos
        while pos != self._goal and (max_moves is None or len(moves) < max_moves):
            direction, n = self._best_run(pos)
            moves.append(format_move(direction, n))
            pos += n * self._delta[direction]
        return moves

    def hint(self) -> str | None:
        if self.task is None or self._pos == self._goal:
            return None
        moves = self.plan(5)
        more = ", ..." if len(self.plan()) > len(moves) else ""
        return "Next moves: " + ", ".join(moves) + more + "."

    def progress(self) -> float | None:
        if self.task is None:
            return None
        return min(1.0, max(0.0, 1.0 - self._dist[self._pos] / self._start_dist))

    def valid_actions(self) -> list[str] | None:
        return list(self._open_at(self._pos))

    def _open_at(self, pos: int) -> list[str]:
        dirs = self._open_dirs.get(pos)
        if dirs is None:
            dirs = self._open_dirs[pos] = [d for d in DIRECTIONS if self._open[pos + self._delta[d]]]
        return dirs

    @property
    def distance(self) -> int:
        """Shortest-path distance from the agent to the goal."""
        return self._dist[self._pos]

