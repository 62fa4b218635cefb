"""Sokoban environment: reverse-play generation, solver, deadlocks, oracle, splits, checkers."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.core.checker import check_text_env
from envs.sokoban.board import count_pushes, generate_board, is_deadlocked, parse_board, solve
from envs.sokoban.env import PRESETS, SokobanEnv

SOKOBAN_IDS = ["sokoban/v0", "sokoban-easy/v0", "sokoban-medium/v0", "sokoban-hard/v0"]

CORRIDOR = ["######", "#P_XO#", "######"]  # one push to the right solves it
TWO = [
    "######",
    "#O__O#",
    "#_XX_#",
    "#_P__#",
    "######",
]


def play_oracle(env: SokobanEnv, task) -> tuple[bool, int]:
    env.reset(options={"task": task})
    done, info = False, {}
    while not done:
        _, _, terminated, truncated, info = env.step(env.oracle_action())
        done = terminated or truncated
    return info["success"], env.turn


@pytest.mark.parametrize("env_id", SOKOBAN_IDS)
def test_registered_sokoban_passes_gymnasium_check_env(env_id):
    env = agentgym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_sokoban_passes_text_env_checks():
    results = check_text_env(lambda: agentgym.make("sokoban-easy/v0"), fuzz_actions=400)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


@pytest.mark.parametrize("preset,count", [("easy", 150), ("medium", 150), ("hard", 60)])
def test_oracle_solves_generated_boards(preset, count):
    for multi_step in (True, False):
        env = SokobanEnv(preset=preset, multi_step=multi_step, max_turns=500)
        for i in range(count // 2):
            task = env.generate_task(i)
            rows, solution = task.inputs["board"], task.reference["solution"]
            assert count_pushes(rows, solution) >= PRESETS[preset]["min_pushes"]
            success, turns = play_oracle(env, task)
            assert success, (preset, i, rows)
            assert turns <= len(solution)


def test_solver_is_push_optimal_on_small_boards():
    layout, player, boxes = parse_board(CORRIDOR)
    assert solve(layout, player, boxes) == ["right", "right"]
    layout, player, boxes = parse_board(TWO)
    moves = solve(layout, player, boxes)
    assert count_pushes(TWO, moves) == 4  # each box needs one push up and one sideways
    # an unsolvable board: the box sits in a corner off target
    layout, player, boxes = parse_board(["#####", "#X_O#", "#__P#", "#####"])
    assert solve(layout, player, boxes) is None


def test_reverse_play_boards_are_solvable_and_deterministic():
    for i in range(100):
        rows, solution = generate_board(np.random.default_rng([0, i]), 6, 6, 2, 3, 80)
        again, _ = generate_board(np.random.default_rng([0, i]), 6, 6, 2, 3, 80)
        assert rows == again
        layout, player, boxes = parse_board(rows)
        assert solve(layout, player, boxes) is not None and len(solution) > 0


_GEN = """
import json
from envs.sokoban.env import SokobanEnv
out = {p: [SokobanEnv(preset=p, seed=5).generate_task(i).model_dump() for i in range(0, 3000, 499)]
       for p in ("easy", "medium", "hard")}
print(json.dumps(out, sort_keys=True))
"""


def test_generation_is_identical_across_processes():
    here = {p: [SokobanEnv(preset=p, seed=5).generate_task(i).model_dump() for i in range(0, 3000, 499)]
            for p in ("easy", "medium", "hard")}
    other = subprocess.run([sys.executable, "-c", _GEN], capture_output=True, text=True, check=True)
    assert json.loads(other.stdout) == json.loads(json.dumps(here, sort_keys=True))


def test_train_and_test_splits_never_overlap():
    seen = {}
    for split in ("train", "test"):
        env = SokobanEnv(preset="easy", split=split)
        prints = set()
        for seed in range(150):
            env.reset(seed=seed)
            prints.add(env.task.fingerprint())
        seen[split] = prints
    assert len(seen["train"]) > 120 and len(seen["test"]) > 120
    assert not seen["train"] & seen["test"]


def _task(rows):
    return agentgym.Task(id="t", inputs={"board": rows})


def test_pushing_blocking_and_solving():
    env = SokobanEnv(task=_task(TWO))
    obs, info = env.reset(seed=0)
    assert "Boxes on targets: 0/2." in obs["content"]
    assert info["valid_actions"] == ["up", "left", "right"]  # pushing the box up is allowed
    obs, reward, terminated, _, info = env.step("go down please")
    assert obs["content"].startswith("Blocked: a wall is below you.") and not info["invalid_action"]
    obs, reward, terminated, _, info = env.step("right 5")
    assert obs["content"].startswith("Moved right 2, then blocked: a wall is to your right.")
    obs, _, _, _, info = env.step("nothing useful")
    assert info["invalid_action"] and "no move found" in obs["content"]


DEAD = ["######", "#P___#", "#_X__#", "#__O_#", "#____#", "######"]


def test_deadlock_ends_episode_by_default():
    env = SokobanEnv(task=_task(DEAD))
    env.reset(seed=0)
    env.step("right")
    obs, reward, terminated, _, info = env.step("down 3")  # the box reaches the bottom wall: no target there
    assert obs["content"].startswith("Pushed down 2. Deadlock")
    assert terminated and reward == 0.0 and info["reason"] == "deadlock" and not info["success"]


def test_deadlock_can_be_reported_instead():
    env = SokobanEnv(task=_task(DEAD), end_on_deadlock=False)
    env.reset(seed=0)
    env.step("right")
    obs, _, terminated, _, _ = env.step("down 3")
    assert not terminated and "Deadlock" in obs["content"] and env.deadlocked
    assert env.progress() == 0.0 and env.hint() is None
    assert env.oracle_action() in ("up", "down", "left", "right")


def test_deadlock_tests():
    layout, _, _ = parse_board(DEAD)
    w = layout.width
    assert is_deadlocked(layout, {w + 1}, w + 1)  # a corner
    assert is_deadlocked(layout, {4 * w + 2}, 4 * w + 2)  # along a wall with no target
    assert not is_deadlocked(layout, {2 * w + 2}, 2 * w + 2)
    assert not is_deadlocked(layout, {3 * w + 3}, 3 * w + 3)  # on the target
    square = ["#######", "#P____#", "#_XX__#", "#_XX__#", "#_OOOO#", "#_____#", "#######"]
    layout, _, boxes = parse_board(square)
    assert is_deadlocked(layout, set(boxes), 2 * 7 + 2)  # a 2x2 block of boxes off target
    assert not is_deadlocked(layout, set(boxes) - {3 * 7 + 3}, 2 * 7 + 2)


def test_hint_progress_and_shaping():
    env = SokobanEnv(task=_task(TWO), shaping=0.5)
    env.reset(seed=0)
    assert env.hint().startswith("Next moves: ")
    assert env.progress() == 0.0
    total, done = 0.0, False
    while not done:
        _, r, terminated, truncated, info = env.step(env.oracle_action())
        total += r
        done = terminated or truncated
    assert info["success"] and total == pytest.approx(1.5) and env.progress() == 1.0


def test_oracle_recovers_after_a_detour():
    env = SokobanEnv(task=_task(TWO))
    env.reset(seed=0)
    env.step("right")
    env.step("left")
    env.step("left")
    done = False
    while not done:
        _, _, terminated, truncated, info = env.step(env.oracle_action())
        done = terminated or truncated
    assert info["success"]
