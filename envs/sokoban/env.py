"""The Sokoban environment: push every box onto a target.

Actions are the maze's: free text whose first direction word counts, with an optional
step count (``"left 3"`` walks/pushes up to three times), or a ``move(direction,
steps)`` tool call. Walking into a wall, or pushing a box into a wall or another box,
is an ordinary turn whose observation says so.

Deadlocks (a box pushed onto a dead square, i.e. a corner or along a wall with no
target, or a 2x2 block of boxes and walls holding a box off target) end the episode
with reward 0 and ``info["reason"] == "deadlock"`` by default, because no later move
can win; with ``end_on_deadlock=False`` the observation reports the deadlock and the
episode goes on until the turn limit. Solving gives reward 1.0; optional shaping adds
``shaping * (change in boxes on targets) / boxes`` per turn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentgym.core import Task, TextEnv
from agentgym.errors import UserError
from envs.grid import DIRECTIONS, WHERE, GridMoves, format_move
from envs.sokoban.board import LEGEND, generate_board, is_deadlocked, parse_board, render_board, solve

#: Difficulty presets. ``medium`` matches GEM's Sokoban-v0-easy (6x6, 2 boxes).
PRESETS: dict[str, dict[str, Any]] = {
    "easy": {"height": 6, "width": 6, "boxes": 1, "min_pushes": 2, "reverse_steps": 60, "max_turns": 20},
    "medium": {"height": 6, "width": 6, "boxes": 2, "min_pushes": 3, "reverse_steps": 80, "max_turns": 30},
    "hard": {"height": 8, "width": 8, "boxes": 3, "min_pushes": 5, "reverse_steps": 150, "max_turns": 60},
}

PROMPT = (
    "Sokoban: push every box onto a target. {legend}. You push a box by walking into it; "
    "boxes cannot be pulled, and a box pushed into a corner is stuck.\n"
    "Reply with one move: up, down, left or right{count}.\n\n"
)


class SokobanEnv(GridMoves, TextEnv):
    """Generated Sokoban boards with a push-optimal solver as oracle."""


    def __init__(
        self,
        *,
        preset: str = "medium",
        height: int | None = None,
        width: int | None = None,
        boxes: int | None = None,
        min_pushes: int | None = None,
        reverse_steps: int | None = None,
        multi_step: bool = True,
        end_on_deadlock: bool = True,
        shaping: float = 0.0,
        seed: int = 0,
        max_turns: int | None = None,
        **kwargs: Any,
    ):
        if preset not in PRESETS:
            raise UserError(f"sokoban preset must be one of {sorted(PRESETS)}, not {preset!r}.")
        p = PRESETS[preset]
        self.preset = preset
        self.height = int(height or p["height"])
        self.width = int(width or p["width"])
        self.n_boxes = int(boxes or p["boxes"])
        if not (4 <= self.height <= 16 and 4 <= self.width <= 16):
            raise UserError(f"sokoban boards must be between 4x4 and 16x16, not {self.height}x{self.width}.")
        if (self.height - 2) * (self.width - 2) < 2 * self.n_boxes + 2 or self.n_boxes < 1:
            raise UserError(f"a {self.height}x{self.width} board has no room for {self.n_boxes} boxes.")
        self.min_pushes = int(p["min_pushes"] if min_pushes is None else min_pushes)
        self.reverse_steps = int(reverse_steps or p["reverse_steps"])
        self.end_on_deadlock = bool(end_on_deadlock)
        self.shaping = float(shaping)
        self.seed = int(seed)
        super().__init__(max_turns=int(max_turns or p["max_turns"]), **kwargs)
        self._intro = PROMPT.format(legend=LEGEND, count=self.init_moves(multi_step, self.height, self.width))

    # ----------------------------------------------------------------- tasks
    def generate_task(self, index: int) -> Task:
        rng = np.random.default_rng([self.seed, index])
        rows, solution = generate_board(
            rng, self.height, self.width, self.n_boxes, self.min_pushes, self.reverse_steps
        )
        return Task(
            id=f"sokoban-{self.preset}-{self.height}x{self.width}-{self.n_boxes}b-s{self.seed}-{index}",
            inputs={"board": rows},
            reference={"solution": solution, "moves": len(solution)},
            metadata={"preset": self.preset, "index": index},
        )

    def setup(self, task: Task) -> str:
        try:
            self._layout, self._player, boxes = parse_board(list(task.inputs["board"]))
        except ValueError as exc:
            raise ValueError(f"task {task.id}: {exc}") from None
        self._boxes = set(boxes)
        self._delta = self._layout.deltas
        self._on_target = len(self._boxes & self._layout.targets)
        self._deadlock = False
        reference = task.reference.get("solution")
        self._plan: list[str] = list(reference) if reference is not None else []
        self._plan_state = self._state() if reference is not None else None
        self._plan_index = 0
        self._start_pushes: int | None = None
        return self._intro + self._status() + "\n" + self._board()

    # ----------------------------------------------------------------- actions
    def _move(self, direction: str, steps: int) -> str:
        delta, floor, boxes = self._delta[direction], self._layout.floor, self._boxes
        targets = self._layout.targets
        moved = pushed = 0
        blocked = ""
        before = self._on_target
        while moved < steps:
            to = self._player + delta
            if not floor[to]:
                blocked = f"a wall is {WHERE[direction]}"
                break
            if to in boxes:
                beyond = to + delta
                if not floor[beyond] or beyond in boxes:
                    blocked = f"the box {WHERE[direction]} cannot move"
                    break
                boxes.remove(to)
                boxes.add(beyond)
                self._on_target += (beyond in targets) - (to in targets)
                pushed += 1
                self._player = to
                moved += 1
                if self._on_target == len(boxes):
                    break
                if not self._deadlock and is_deadlocked(self._layout, boxes, beyond):
                    self._deadlock = True
                    break
            else:
                self._player = to
                moved += 1
        if self.shaping and self._on_target != before:
            self.add_reward(self.shaping * (self._on_target - before) / len(boxes))
        what = "Pushed" if pushed else "Moved"
        head = f"{what} {format_move(direction, moved)}." if moved else f"Blocked: {blocked}."
        if moved and blocked:
            head = f"{what} {format_move(direction, moved)}, then blocked: {blocked}."
        if self._on_target == len(boxes):
            self.finish(1.0, True)
            return head + " All boxes are on targets. Solved!\n" + self._board()
        if self._deadlock and pushed:
            if self.end_on_deadlock:
                self.finish(0.0, False, reason="deadlock")
                return head + " Deadlock: a box can no longer reach a target. The episode is over.\n" + self._board()
            return head + " Deadlock: a box can no longer reach a target.\n" + self._board()
        return head + " " + self._status() + "\n" + self._board()

    # ----------------------------------------------------------------- views
    def _status(self) -> str:
        return f"Boxes on targets: {self._on_target}/{len(self._boxes)}."

    def _board(self) -> str:
        return "\n".join(render_board(self._layout, self._player, self._boxes))

    def render_text(self) -> str:
        return self._board() if self.task is not None else ""

    # ----------------------------------------------------------------- oracle and guidance
    def _state(self) -> tuple[int, frozenset[int]]:
        return self._player, frozenset(self._boxes)

    def plan(self) -> list[str] | None:
        """Single moves of a push-optimal solution from the current state (``None`` if none)."""
        state = self._state()
        if self._plan_state != state:  # off the cached plan: solve again from here
            solution = None if self._deadlock else solve(self._layout, *state)
            self._plan, self._plan_index, self._plan_state = solution or [], 0, state if solution else None
            if solution is None:
                return None
        return self._plan[self._plan_index:]

    def oracle_action(self) -> str:
        remaining = self.plan()
        if not remaining:  # unsolvable (deadlock): any legal move
            valid = self.valid_actions() or ["up"]
            return valid[0]
        first, n = remaining[0], 1
        if self.multi_step:
            while n < len(remaining) and remaining[n] == first and n < self._max_steps:
                n += 1
        # Advance the cached plan to the state this action leads to.
        player, boxes, d = self._player, set(self._boxes), self._delta[first]
        for _ in range(n):
            player += d
            if player in boxes:
                boxes.remove(player)
                boxes.add(player + d)
        self._plan_index += n
        self._plan_state = (player, frozenset(boxes))
        return format_move(first, n)

    def hint(self) -> str | None:
        if self.task is None:
            return None
        remaining = self.plan()
        if not remaining:
            return None
        runs: list[str] = []
        i = 0
        while i < len(remaining) and len(runs) < 6:
            j = i
            while j < len(remaining) and remaining[j] == remaining[i]:
                j += 1
            runs.append(format_move(remaining[i], j - i))
            i = j
        more = ", ..." if i < len(remaining) else ""
        return "Next moves: " + ", ".join(runs) + more + "."

    def progress(self) -> float | None:
        """``1 - pushes_left / pushes_at_start`` by the solver; 0 when deadlocked."""
        if self.task is None:
            return None
        if self._on_target == len(self._boxes):
            return 1.0
        if self._deadlock:
            return 0.0
        if self._start_pushes is None:
            layout, player, boxes = parse_board(list(self.task.inputs["board"]))
            self._start_pushes = _pushes(layout, player, boxes, solve(layout, player, boxes))
        left = _pushes(self._layout, self._player, frozenset(self._boxes), self.plan())
        if left is None or not self._start_pushes:
            return self._on_target / len(self._boxes)
        return min(1.0, max(0.0, 1.0 - left / self._start_pushes))

    def valid_actions(self) -> list[str] | None:
        floor, boxes, p = self._layout.floor, self._boxes, self._player
        out = []
        for name in DIRECTIONS:
            d = self._delta[name]
            to = p + d
            if floor[to] and (to not in boxes or (floor[to + d] and to + d not in boxes)):
                out.append(name)
        return out

    @property
    def deadlocked(self) -> bool:
        return self._deadlock


def _pushes(layout, player: int, boxes: frozenset[int], moves: list[str] | None) -> int | None:
    if moves is None:
        return None
    boxes_now, n = set(boxes), 0
    for m in moves:
        player += layout.deltas[m]
        if player in boxes_now:
            boxes_now.remove(player)
            boxes_now.add(player + layout.deltas[m])
            n += 1
    return n
