"""Procedural maze generation and breadth-first search.

A maze is a rectangle of open cells (``.``) and walls (``#``) with a start and a
goal. Walls are scattered with a given density; the goal is drawn among the cells
reachable from the start at a shortest-path distance within the requested range, so
every generated maze is solvable by construction. All randomness comes from one
:class:`numpy.random.Generator`, so the same seed gives the same maze in every
process.

Searches run on a flat board padded with a ring of walls (cell ``(r, c)`` is index
``(r + 1) * (width + 2) + c + 1``): moves are index offsets and need no bounds checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.grid import flat_offsets

def padded(rows: list[str]) -> list[bool]:
    """Openness of each cell of the padded flat board."""
    width = len(rows[0]) + 2
    is_open = [False] * ((len(rows) + 2) * width)
    for r, row in enumerate(rows):
        base = (r + 1) * width + 1
        for c, ch in enumerate(row):
            if ch != "#":
                is_open[base + c] = True
    return is_open


def offsets(width: int) -> dict[str, int]:
    """Flat-index offset of each move on a padded board ``width + 2`` cells wide."""
    return flat_offsets(width + 2)


def bfs(is_open: list[bool], source: int, deltas: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """Distances from ``source`` (-1 where unreachable) and the visiting order."""
    dist = [-1] * len(is_open)
    dist[source] = 0
    order = [source]
    for i in order:  # the list grows while we walk it: a queue without deque overhead
        d = dist[i] + 1
        for delta in deltas:
            j = i + delta
            if is_open[j] and dist[j] < 0:
                dist[j] = d
                order.append(j)
    return dist, order


def shortest_path(rows: list[str], start: tuple[int, int], goal: tuple[int, int]) -> list[str] | None:
    """The moves of one shortest path from ``start`` to ``goal`` (``None`` if unreachable)."""
    width = len(rows[0])
    steps = offsets(width)
    w2 = width + 2
    s, g = (start[0] + 1) * w2 + start[1] + 1, (goal[0] + 1) * w2 + goal[1] + 1
    dist, _ = bfs(padded(rows), g, tuple(steps.values()))
    if dist[s] < 0:
        return None
    path, i = [], s
    while i != g:
        for name, delta in steps.items():
            if dist[i + delta] == dist[i] - 1:
                path.append(name)
                i += delta
                break
    return path


@dataclass(frozen=True)
class Maze:
    """A generated maze and what the search that built it learned."""

    rows: list[str]
    start: tuple[int, int]
    goal: tuple[int, int]
    #: Moves of a shortest path from start to goal.
    path: list[str]
    #: Distance to the goal of every cell of the padded board (-1: wall or unreachable).
    dist: list[int]


def generate_maze(
    rng: np.random.Generator,
    height: int,
    width: int,
    wall_density: float,
    min_path: int,
    max_path: int | None,
    max_attempts: int = 200,
    min_detour: int = 0,
) -> Maze:
    """Draw a solvable maze whose shortest path has ``min_path..max_path`` moves.

    The goal is drawn first; the start among the cells whose distance to it is in
    range. The range is clipped to what the grid allows; if no draw fits after
    ``max_attempts`` the wall density is halved (still deterministic).

    ``min_detour``: the shortest path is at least this many moves longer than the straight
    (Manhattan) distance, so walls force the walker away from the goal on the way and a
    rule that only moves toward the goal never arrives. Such mazes need walls: the density
    is not lowered for them.
    """
    if not (2 <= height <= 64 and 2 <= width <= 64):
        raise ValueError(f"maze size must be between 2x2 and 64x64, not {height}x{width}")
    lo = max(1, min(min_path, height + width - 2))
    hi = height * width - 1 if max_path is None else max(lo, max_path)
    w2 = width + 2
    steps = offsets(width)
    deltas = tuple(steps.values())
    n = height * width
    density = float(wall_density)
    if min_detour > 0 and density <= 0:
        raise ValueError("a maze with a detour needs walls: wall_density must be above 0")
    for attempt in range(max_attempts * 4):
        if attempt and attempt % max_attempts == 0 and min_detour <= 0:
            density *= 0.5
        draws = rng.random(n + 2).tolist()
        is_open = [False] * ((height + 2) * w2)
        open_cells = []
        for i in range(n):
            if draws[i] >= density:
                j = (i // width + 1) * w2 + i % width + 1
                is_open[j] = True
                open_cells.append(j)
        if len(open_cells) < 2:
            continue
        goal = open_cells[int(draws[-2] * len(open_cells))]
        dist, order = bfs(is_open, goal, deltas)
        candidates = [j for j in order if lo <= dist[j] <= hi]  # BFS order is deterministic
        if min_detour > 0:
            gr, gc = divmod(goal, w2)
            candidates = [j for j in candidates
                          if dist[j] - abs(j // w2 - gr) - abs(j % w2 - gc) >= min_detour]
        if not candidates:
            continue
        start = candidates[int(draws[-1] * len(candidates))]
        path, j = [], start
        while j != goal:  # walk down the distance field
            for name, delta in steps.items():
                if dist[j + delta] == dist[j] - 1:
                    path.append(name)
                    j += delta
                    break
        text = "".join(["." if ok else "#" for ok in is_open])
        rows = [text[(r + 1) * w2 + 1:(r + 1) * w2 + 1 + width] for r in range(height)]
        return Maze(rows, divmod(start - w2 - 1, w2), divmod(goal - w2 - 1, w2), path, dist)
    detour = f" and a detour of {min_detour}" if min_detour > 0 else ""
    raise RuntimeError(f"could not generate a {height}x{width} maze with a path of {lo}..{hi} moves{detour}")
