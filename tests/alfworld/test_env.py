"""The ALFWorld environment through the real engine: every shipped game won by the expert,
invalid commands, reply forms, determinism, groups, hints, progress and the env checks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import warnings

import pytest
from gymnasium.utils.env_checker import check_env

import agentgym
from agentgym.core.checker import check_text_env
from agentgym.errors import UserError
from envs.alfworld.games import SHIPPED_ROOT, list_games, read_game
from tests.alfworld.conftest import play_oracle

pytestmark = pytest.mark.alfworld

ALL_GAMES = [g for split in ("train", "valid_seen", "valid_unseen") for g in list_games(SHIPPED_ROOT, split)]


@pytest.fixture
def env():
    env = agentgym.make("alfworld/v0")
    yield env
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "valid_seen", "valid_unseen"])
def test_expert_wins_every_shipped_game_through_the_engine(split):
    env = agentgym.make("alfworld/v0", split="train" if split == "train" else "test",
                        eval_split="valid_seen" if split == "valid_seen" else "valid_unseen")
    try:
        for game in list_games(SHIPPED_ROOT, split):
            commands, progress, info = play_oracle(env, game.task("test"))
            assert info["success"] is True and env.task.id == game.id, game.id
            assert commands == read_game(game.path)["walkthrough"], game.id  # replays exactly
            assert progress[0] == 0.0 and progress[-1] == 1.0 and max(progress[:-1]) < 1.0, game.id
    finally:
        env.close()


def test_first_observation_is_the_game_intro_with_admissible_commands(env):
    obs, info = env.reset(seed=0)
    game = list_games(SHIPPED_ROOT, "train")
    assert info["task_id"] in {g.id for g in game}
    assert obs["role"] == "user" and obs["content"].startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert "Your task is to: " in obs["content"] and "Admissible commands: go to " in obs["content"]
    assert "help" not in info["valid_actions"] and "look" in info["valid_actions"]
    assert info["system_prompt"] == env.system_prompt and [t["function"]["name"] for t in info["tools"]] == ["act"]


def test_inadmissible_command_gets_the_engines_answer_and_counts_as_invalid(env):
    env.reset(seed=1)
    before = env.valid_actions()
    obs, reward, terminated, truncated, info = env.step("fly to the moon")
    assert obs["content"].startswith("Error: Nothing happens.")
    assert info["invalid_action"] is True and info["invalid_actions"] == 1
    assert reward == 0.0 and not terminated and not truncated
    assert env.valid_actions() == before
    obs, *_, info = env.step(before[0])
    assert info["invalid_action"] is False and not obs["content"].startswith("Error")


@pytest.mark.parametrize("reply", [
    "go to {r}", "Go to {r}.", "> go to {r}", "Action: go to {r}", "`go to {r}`",
    "I should look there first.\ngo to {r}", "<think>maybe</think><action>go to {r}</action>",
    '<tool_call>{{"name": "act", "arguments": {{"command": "go to {r}"}}}}</tool_call>',
])
def test_reply_forms_reach_the_engine(env, reply):
    env.reset(seed=2)
    target = next(c for c in env.valid_actions() if c.startswith("go to "))
    obs, _, _, _, info = env.step(reply.format(r=target.removeprefix("go to ")))
    assert info["invalid_action"] is False
    assert obs["content"].startswith(f"You arrive at {target.removeprefix('go to ')}")


def test_old_put_grammar_is_accepted_for_move(env):
    game = list_games(SHIPPED_ROOT, "valid_seen", [1])[0]
    env.reset(options={"task": game.task("test")})
    walk = read_game(game.path)["walkthrough"]
    for command in walk[:-1]:
        env.step(command)
    last = walk[-1]  # "move X to Y"
    obj, _, recep = last.removeprefix("move ").partition(" to ")
    _, reward, terminated, _, info = env.step(f"put {obj} in/on {recep}")
    assert terminated and info["success"] and reward == 1.0


def test_same_seed_same_game_and_same_episode():
    a, b = agentgym.make("alfworld/v0"), agentgym.make("alfworld/v0")
    try:
        ids = set()
        for seed in (0, 1, 2, 3):
            obs_a, info_a = a.reset(seed=seed)
            obs_b, info_b = b.reset(seed=seed)
            assert (obs_a, info_a["task_id"]) == (obs_b, info_b["task_id"])
            ids.add(info_a["task_id"])
        assert len(ids) > 1
        run_a = play_oracle(a, seed=5)
        run_b = play_oracle(b, seed=5)
        assert run_a == run_b and a.task.id == b.task.id
    finally:
        a.close()
        b.close()


def test_group_of_eight_episodes_plays_one_game():
    from agentgym.policy.scripted import OraclePolicy
    from agentgym.rollout.engine import RolloutConfig, RolloutEngine

    async def run():
        engine = RolloutEngine(OraclePolicy(), RolloutConfig(token_level=False))
        try:
            return await engine.run_groups(["alfworld-seen/v0"], group_size=8, seed=12,
                                           env_kwargs={"split": "test", "task_types": ["examine_in_light"]})
        finally:
            await engine.aclose()

    (group,) = asyncio.run(run())
    assert len(group) == 8
    # seed 12 draws the shortest of the three games (7 commands)
    assert len({t.task_id for t in group}) == 1 and group[0].task_id.startswith("valid_seen/look_at_obj_in_light")
    assert len({t.group_id for t in group}) == 1
    assert len({json.dumps([turn.action for turn in t.turns]) for t in group}) == 1
    assert all(t.success for t in group)


def test_hint_names_the_plan_and_the_next_command_and_progress_moves(env):
    game = list_games(SHIPPED_ROOT, "train", ["heat"])[0]
    env.reset(options={"task": game.task("train")})
    hint = env.hint()
    assert hint.startswith("Plan: find a ") and "heat the " in hint and "Next command: look." in hint
    walk = read_game(game.path)["walkthrough"]
    seen = []
    for command in walk[:-1]:
        env.step(command)
        seen.append(env.progress())
    assert seen[-1] > seen[0] and all(0.0 <= p < 1.0 for p in seen)
    assert f"Next command: {walk[-1]}." in env.hint()


def test_task_types_and_splits_select_games():
    env = agentgym.make("alfworld-seen/v0", split="test", task_types=["look_at_obj"])
    try:
        for seed in range(6):
            _, info = env.reset(seed=seed)
            assert info["task_id"].startswith("valid_seen/look_at_obj_in_light-")
    finally:
        env.close()
    with pytest.raises(UserError, match="eval_split must be"):
        agentgym.make("alfworld/v0", eval_split="test")


def test_a_task_naming_a_missing_game_is_a_clear_error(env):
    with pytest.raises(UserError, match="is not under"):
        env.reset(options={"task": {"id": "train/no-such-game/trial_T0", "inputs": {}}})


def test_turn_limit_is_fifty_by_default_and_truncates():
    assert agentgym.make("alfworld/v0").max_turns == 50
    env = agentgym.make("alfworld/v0", max_turns=3)
    env.reset(seed=4)
    for _ in range(2):
        *_, terminated, truncated, info = env.step("look")
        assert not (terminated or truncated)
    *_, terminated, truncated, info = env.step("look")
    assert truncated and info["success"] is False and info["reason"] == "turn limit"
    env.close()


@pytest.mark.slow
def test_passes_gymnasium_and_text_env_checks():
    env = agentgym.make("alfworld/v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)
    results = check_text_env(lambda: agentgym.make("alfworld/v0"), fuzz_actions=100, time_budget_s=60)
    assert all(r.passed for r in results), [r for r in results if not r.passed]


@pytest.mark.slow
def test_play_command_with_the_oracle():
    out = subprocess.run(
        [sys.executable, "-m", "agentgym.cli", "play", "alfworld-unseen/v0", "--split", "test",
         "--policy", "scripted:oracle", "--episodes", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "2/2 episodes solved" in out.stdout


def test_close_returns_the_engine_and_a_later_reset_takes_one_again():
    import gymnasium as gym

    env = agentgym.make("alfworld/v0")
    env.reset(seed=0)
    env.close()
    with pytest.raises(gym.error.ResetNeeded):
        env.step("look")
    env.reset(seed=0)
    assert not env.step("look")[4]["invalid_action"]
    env.close()


@pytest.mark.parametrize("mode", ["all", "compact", "none"])
def test_show_commands_lists_all_compact_or_none(mode):
    env = agentgym.make("alfworld/v0", show_commands=mode)
    first, _ = env.reset(seed=0)
    obs, *_, info = env.step(env.oracle_action())
    listed = obs["content"].partition("\n\nAdmissible commands: ")[2].rstrip(".")
    if mode == "none":
        assert "Admissible commands" not in first["content"] + obs["content"]
    else:
        assert all(c in first["content"] for c in env.valid_actions() if c.startswith("go to "))
    if mode == "all":
        assert listed.split(", ") == info["valid_actions"]
    if mode == "compact":
        assert listed.split(", ") == ["go to <receptacle> (any other receptacle in the room)"] + [
            c for c in info["valid_actions"] if not c.startswith("go to ")]
    env.close()
