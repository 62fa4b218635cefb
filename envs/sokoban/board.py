"""Sokoban boards: generation by reverse play, deadlock tests and an optimal solver.

A board is a rectangle of strings with a wall ring::

    ######
    #_O__#     # wall    _ floor    O target
    #_X#_#     X box     * box on a target
    #_P__#     P player  + player on a target
    ######

Cells are flat indices ``r * width + c``; the wall ring means a move never leaves
the board. Generation starts from a solved state (every box on its target) and walks
the player backwards, sometimes pulling the box behind it; undoing a pull is a push,
so every generated board is solvable. The solver is A* over box positions, with the
player position normalised to the smallest cell it can reach, pushes as edges and
as heuristic the sum of each box's lone-box push distance to the nearest target
(admissible, so the push count is optimal).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from envs.grid import flat_offsets
WALL, FLOOR, TARGET, BOX, BOX_ON_TARGET, PLAYER, PLAYER_ON_TARGET = "#", "_", "O", "X", "*", "P", "+"
LEGEND = "# wall, _ floor, O target, X box, * box on a target, P you, + you on a target"


@dataclass(frozen=True)
class Layout:
    """The static part of a board: walls, targets, and lone-box push distances."""

    height: int
    width: int
    floor: tuple[bool, ...]
    targets: frozenset[int]
    #: Pushes a box alone on the board needs to reach a target; -1 on dead squares.
    push_dist: tuple[int, ...]

    @property
    def deltas(self) -> dict[str, int]:
        return flat_offsets(self.width)


def make_layout(height: int, width: int, floor: list[bool], targets: frozenset[int]) -> Layout:
    """Build a layout, computing push distances by pulling a lone box back from every target."""
    deltas = tuple(flat_offsets(width).values())
    dist = [-1] * len(floor)
    queue = sorted(targets)
    for t in queue:
        dist[t] = 0
    for y in queue:  # the box is at y; it came from x = y - d, pushed by a player at x - d
        for d in deltas:
            x = y - d
            if floor[x] and floor[x - d] and dist[x] < 0:
                dist[x] = dist[y] + 1
                queue.append(x)
    return Layout(height, width, tuple(floor), targets, tuple(dist))


def parse_board(rows: list[str]) -> tuple[Layout, int, frozenset[int]]:
    """``(layout, player, boxes)`` from board strings; raises ``ValueError`` if malformed."""
    height, width = len(rows), len(rows[0]) if rows else 0
    if height < 3 or any(len(r) != width for r in rows):
        raise ValueError("a board needs at least 3 rows of equal length")
    floor, targets, boxes, players = [], set(), set(), []
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            i = r * width + c
            edge = r in (0, height - 1) or c in (0, width - 1)
            if ch not in "#_OX*P+":
                raise ValueError(f"unknown board character {ch!r}")
            if edge and ch != WALL:
                raise ValueError("the board must be surrounded by walls")
            floor.append(ch != WALL)
            if ch in "O*+":
                targets.add(i)
            if ch in "X*":
                boxes.add(i)
            if ch in "P+":
                players.append(i)
    if len(players) != 1 or not boxes or len(boxes) != len(targets):
        raise ValueError("a board needs one player and as many boxes as targets")
    return make_layout(height, width, floor, frozenset(targets)), players[0], frozenset(boxes)


def render_board(layout: Layout, player: int, boxes: frozenset[int] | set[int]) -> list[str]:
    """Board strings for a state."""
    w, targets, floor = layout.width, layout.targets, layout.floor
    chars = []
    for i in range(layout.height * w):
        if not floor[i]:
            chars.append(WALL)
        elif i in boxes:
            chars.append(BOX_ON_TARGET if i in targets else BOX)
        elif i == player:
            chars.append(PLAYER_ON_TARGET if i in targets else PLAYER)
        else:
            chars.append(TARGET if i in targets else FLOOR)
    text = "".join(chars)
    return [text[r * w:(r + 1) * w] for r in range(layout.height)]


def is_deadlocked(layout: Layout, boxes: frozenset[int] | set[int], moved: int) -> bool:
    """Whether the box just pushed to ``moved`` can never reach a target.

    Two simple, sound tests: a dead square (a corner, or along a wall with no target
    and no way off it), and a 2x2 block of walls and boxes holding a box off target.
    """
    if moved in layout.targets:
        dead_square = False
    else:
        dead_square = layout.push_dist[moved] < 0
    if dead_square:
        return True
    w, floor, targets = layout.width, layout.floor, layout.targets
    for corner in (moved, moved - 1, moved - w, moved - w - 1):
        block = (corner, corner + 1, corner + w, corner + w + 1)
        if all(not floor[c] or c in boxes for c in block) and any(
            c in boxes and c not in targets for c in block
        ):
            return True
    return False


def reachable(layout: Layout, player: int, boxes: frozenset[int] | set[int]) -> list[int]:
    """Cells the player can walk to without pushing (in discovery order)."""
    floor, deltas = layout.floor, tuple(layout.deltas.values())
    seen = {player}
    order = [player]
    for i in order:
        for d in deltas:
            j = i + d
            if floor[j] and j not in seen and j not in boxes:
                seen.add(j)
                order.append(j)
    return order


def walk(layout: Layout, source: int, dest: int, boxes: frozenset[int] | set[int]) -> list[str] | None:
    """Moves of a shortest walk (no pushes) from ``source`` to ``dest``."""
    if source == dest:
        return []
    floor, deltas = layout.floor, layout.deltas
    parent: dict[int, tuple[int, str]] = {source: (source, "")}
    order = [source]
    for i in order:
        for name, d in deltas.items():
            j = i + d
            if floor[j] and j not in parent and j not in boxes:
                parent[j] = (i, name)
                if j == dest:
                    moves = []
                    while j != source:
                        j, name = parent[j]
                        moves.append(name)
                    moves.reverse()
                    return moves
                order.append(j)
    return None


def solve(
    layout: Layout, player: int, boxes: frozenset[int], max_nodes: int = 100_000
) -> list[str] | None:
    """Moves of a push-optimal solution, ``[]`` if solved, ``None`` if unsolvable or too big.

    States are deduplicated when expanded (the player's region is flood-filled once
    per expansion); a goal is returned as soon as it is generated, which is still
    optimal because the heuristic is consistent and at least 1 off the goal.
    """
    if boxes == layout.targets:
        return []
    pd = layout.push_dist
    if any(pd[b] < 0 for b in boxes):
        return None
    floor, deltas = layout.floor, tuple(layout.deltas.items())
    closed: dict[tuple[int, frozenset[int]], tuple | None] = {}
    heap = [(sum(pd[b] for b in boxes), 0, 0, player, boxes, None)]
    counter = 0
    while heap and len(closed) < max_nodes:
        _, neg_g, _, pos, cur, link = heapq.heappop(heap)
        region = reachable(layout, pos, cur)
        key = (min(region), cur)
        if key in closed:
            continue
        closed[key] = link
        g = 1 - neg_g
        region_set = set(region)
        for b in cur:
            for name, d in deltas:
                to = b + d
                if (b - d) not in region_set or not floor[to] or to in cur or pd[to] < 0:
                    continue
                nxt = (cur - {b}) | {to}
                if nxt == layout.targets:
                    return _moves(layout, player, boxes, _pushes(closed, key) + [(b, name)])
                if is_deadlocked(layout, nxt, to):
                    continue
                counter += 1
                h = sum(pd[x] for x in nxt)
                heapq.heappush(heap, (g + h, -g, counter, b, nxt, (key, b, name)))
    return None


def _pushes(closed: dict, key) -> list[tuple[int, str]]:
    out = []
    while closed[key] is not None:
        key, box, name = closed[key]
        out.append((box, name))
    out.reverse()
    return out


def _moves(layout: Layout, player: int, boxes: frozenset[int], pushes: list[tuple[int, str]]) -> list[str]:
    deltas, moves = layout.deltas, []
    for box, name in pushes:
        d = deltas[name]
        path = walk(layout, player, box - d, boxes)
        assert path is not None, "solver produced an unreachable push"
        moves.extend(path)
        moves.append(name)
        boxes = (boxes - {box}) | {box + d}
        player = box
    return moves


def generate_board(
    rng: np.random.Generator,
    height: int,
    width: int,
    n_boxes: int,
    min_pushes: int = 1,
    reverse_steps: int = 40,
    max_attempts: int = 100,
) -> tuple[list[str], list[str]]:
    """Draw a solvable board by reverse play: ``(rows, push-optimal solution moves)``."""
    interior = (height - 2) * (width - 2)
    if height < 4 or width < 4 or n_boxes < 1 or interior < 2 * n_boxes + 2:
        raise ValueError(f"a {height}x{width} board has no room for {n_boxes} boxes")
    for _ in range(max_attempts):
        u = iter(rng.random(4 * interior + 8 * reverse_steps + 8).tolist())
        floor = _room(height, width, n_boxes, u)
        cells = [i for i, f in enumerate(floor) if f]
        picks = _sample(cells, n_boxes + 1, u)
        targets = frozenset(picks[:n_boxes])
        layout = make_layout(height, width, floor, targets)
        for _ in range(4):  # a few backward walks per room before drawing a new room
            player, boxes, pulls = _reverse_play(layout, picks[-1], targets, reverse_steps, u)
            if boxes == targets or pulls < min_pushes:
                continue  # the pulls, replayed forward, solve it: fewer than min_pushes is too easy
            solution = solve(layout, player, boxes)
            if solution is not None and _count_pushes(layout, player, boxes, solution) >= min_pushes:
                return render_board(layout, player, boxes), solution
    raise RuntimeError(f"could not generate a {height}x{width} board with {n_boxes} boxes")


def count_pushes(rows: list[str], moves: list[str]) -> int:
    """How many of ``moves`` push a box, played from the board ``rows``."""
    layout, player, boxes = parse_board(rows)
    return _count_pushes(layout, player, boxes, moves)


def _count_pushes(layout: Layout, player: int, boxes: frozenset[int], moves: list[str]) -> int:
    deltas, boxes, pushes = layout.deltas, set(boxes), 0
    for m in moves:
        player += deltas[m]
        if player in boxes:
            boxes.remove(player)
            boxes.add(player + deltas[m])
            pushes += 1
    return pushes


def _room(height: int, width: int, n_boxes: int, u) -> list[bool]:
    """Interior all floor, then a few random inner walls that keep the floor connected."""
    floor = [0 < r < height - 1 and 0 < c < width - 1 for r in range(height) for c in range(width)]
    interior = [i for i, f in enumerate(floor) if f]
    budget = int(next(u) * (len(interior) // 4 + 1))
    for _ in range(budget):
        cell = interior[int(next(u) * len(interior))]
        if not floor[cell] or sum(floor) - 1 < 2 * n_boxes + 3:
            continue
        floor[cell] = False
        open_cells = [i for i in interior if floor[i]]
        if len(_flood(floor, open_cells[0], width)) != len(open_cells):
            floor[cell] = True
    return floor


def _flood(floor: list[bool], source: int, width: int) -> set[int]:
    seen, order = {source}, [source]
    for i in order:
        for d in (-width, width, -1, 1):
            j = i + d
            if floor[j] and j not in seen:
                seen.add(j)
                order.append(j)
    return seen


def _sample(cells: list[int], k: int, u) -> list[int]:
    pool, out = list(cells), []
    for _ in range(k):
        out.append(pool.pop(int(next(u) * len(pool))))
    return out


def _reverse_play(
    layout: Layout, player: int, targets: frozenset[int], steps: int, u
) -> tuple[int, frozenset[int], int]:
    """Walk backwards from the solved state; keep the state farthest from solved.

    Returns ``(player, boxes, pulls)``; "farthest" is the largest sum of lone-box push
    distances, and ``pulls`` (the pulls made to get there) bounds the optimal pushes.
    """
    floor, deltas = layout.floor, tuple(layout.deltas.values())
    pd = layout.push_dist
    boxes = set(targets)
    frozen = frozenset(boxes)
    best, best_score, score, pulls = (player, frozen, 0), 0, 0, 0
    for _ in range(steps):
        d = deltas[int(next(u) * 4)]
        to = player + d
        if not floor[to] or to in boxes:
            continue
        behind = player - d
        if behind in boxes and next(u) < 0.8:  # pull the box behind us onto our cell
            boxes.remove(behind)
            boxes.add(player)
            frozen = frozenset(boxes)
            score += pd[player] - pd[behind]
            pulls += 1
        player = to
        if score >= best_score and score > 0:  # ties go to the later state: the player wanders on
            best, best_score = (player, frozen, pulls), score
    return best
