"""ALFWorld game files: the shipped set, data roots, task ids, reading and the authoring source."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from agentgym.core.task import load_tasks
from agentgym.errors import UserError
from envs.alfworld import authoring
from envs.alfworld.games import (
    ALFWORLD_DEFAULT_CACHE,
    JSON_DIR,
    SHIPPED_ROOT,
    TASK_TYPES,
    data_root,
    game_path,
    list_games,
    read_game,
    task_type_name,
)

pytestmark = pytest.mark.alfworld


@pytest.mark.parametrize("split", ["train", "valid_seen", "valid_unseen"])
def test_shipped_games_cover_every_task_type_three_times_per_split(split):
    games = list_games(SHIPPED_ROOT, split)
    counts = Counter(g.task_type for g in games)
    assert set(counts) == set(TASK_TYPES.values())
    assert min(counts.values()) >= 3
    assert [g.id for g in games] == sorted(g.id for g in games)
    for g in games:
        assert g.id.startswith(f"{split}/{g.task_type}-")
        assert g.goal and (g.path.parent / "traj_data.json").is_file()


def test_task_ids_name_games_and_do_not_depend_on_walk_order(tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(SHIPPED_ROOT / JSON_DIR, copy / JSON_DIR)
    assert [g.id for g in list_games(copy, "train")] == [g.id for g in list_games(SHIPPED_ROOT, "train")]
    game = list_games(SHIPPED_ROOT, "valid_unseen", ["heat"])[0]
    task = game.task("test")
    assert task.id == game.id and task.inputs == {"game": game.id, "goal": game.goal}
    assert task.metadata["alfworld_split"] == "valid_unseen" and task.metadata["split"] == "test"
    assert game_path(SHIPPED_ROOT, task.id) == game.path


def test_unsolvable_and_sliced_games_are_skipped_as_alfworld_does(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(SHIPPED_ROOT / JSON_DIR / "train", root / JSON_DIR / "train")
    games = list_games(SHIPPED_ROOT, "train")
    victim = root / JSON_DIR / games[0].id / "game.tw-pddl"
    data = json.loads(victim.read_text())
    data["solvable"] = False
    victim.write_text(json.dumps(data))
    sliced = (root / JSON_DIR / games[1].id).parent
    sliced.rename(sliced.with_name(sliced.name.replace("-None-", "-Sliced-")))
    ids = [g.id for g in list_games(root, "train")]
    assert games[0].id not in ids and len(ids) == len(games) - 2


def test_task_types_filter_by_number_name_or_alias():
    assert task_type_name(4) == task_type_name("4") == task_type_name("heat") == "pick_heat_then_place_in_recep"
    assert {g.task_type for g in list_games(SHIPPED_ROOT, "train", [1, "pick_two"])} == {
        "pick_and_place_simple", "pick_two_obj_and_place"}
    with pytest.raises(UserError, match="unknown ALFWorld task type"):
        task_type_name("juggle")


def test_data_root_order_and_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    assert data_root() == SHIPPED_ROOT
    (tmp_path / JSON_DIR).mkdir()
    assert data_root(tmp_path) == tmp_path
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.setenv("ALFWORLD_DATA", str(ALFWORLD_DEFAULT_CACHE))  # what `import alfworld` sets
    assert data_root() == SHIPPED_ROOT
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="ALFWORLD_DATA=.*has no json_2.1.1"):
        data_root()
    with pytest.raises(UserError, match="has no json_2.1.1"):
        data_root(tmp_path / "nowhere")
    with pytest.raises(UserError, match="is not under"):
        game_path(SHIPPED_ROOT, "train/../../../etc")
    with pytest.raises(UserError, match="split must be one of"):
        list_games(SHIPPED_ROOT, "test")


def test_shipped_files_hold_only_our_problem_and_read_complete_from_the_wheel():
    from pathlib import Path

    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    game = list_games(SHIPPED_ROOT, "train")[0]
    raw = json.loads(game.path.read_text())
    assert set(raw) == {"goal", "pddl_problem", "solvable", "walkthrough"}
    assert raw["solvable"] is True and raw["walkthrough"][0] == "look"
    data = read_game(game.path)
    assert data["pddl_domain"] == Path(ALFRED_PDDL_PATH).read_text()
    wheel = Path(ALFRED_TWL2_PATH).read_text()
    assert data["grammar"] == wheel.replace("UNKNOWN GOAL", raw["goal"]) != wheel


def test_shipped_games_match_their_scenes():
    """The PDDL problems, task records and goals are what scenes.yaml says (walkthroughs: test_env)."""
    scenes = authoring.load_scenes()
    assert len(scenes) == sum(len(list_games(SHIPPED_ROOT, s)) for s in ("train", "valid_seen", "valid_unseen"))
    for scene in scenes:
        game_dir = SHIPPED_ROOT / JSON_DIR / scene.game_id
        data = json.loads((game_dir / "game.tw-pddl").read_text())
        assert data["pddl_problem"] == authoring.problem_pddl(scene)
        assert data["goal"] == authoring.goal_text(scene)
        assert json.loads((game_dir / "traj_data.json").read_text()) == authoring.traj_data(scene)
    for name, text in authoring.suite_task_files(scenes).items():
        assert (authoring.SUITES_DIR / name).read_text() == text
        assert all(t.metadata["split"] == "test" for t in load_tasks(authoring.SUITES_DIR / name))


def test_scene_mistakes_are_reported(tmp_path):
    bad = tmp_path / "scenes.yaml"
    bad.write_text(
        "rooms:\n  FloorPlan7:\n    receptacles: {Cabinet: 1, CoffeeMachine: 1}\n"
        "games:\n  - {split: train, type: pick_and_place_simple, room: FloorPlan7, object: Mug, parent: CoffeeMachine,\n"
        "     objects: {Mug: [Cabinet 2]}}\n"
    )
    with pytest.raises(UserError, match="Cabinet 2, which the room does not have"):
        authoring.load_scenes(bad)
    bad.write_text(bad.read_text().replace("Cabinet 2", "Cabinet 1").replace("parent: CoffeeMachine", "parent: Cabinet")
                   .replace("object: Mug", "object: Apple").replace("Mug:", "Apple:"))
    with pytest.raises(UserError, match="a Apple cannot go in a Cabinet"):
        authoring.load_scenes(bad)
