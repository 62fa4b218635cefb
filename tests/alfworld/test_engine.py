"""The prepared engine plays exactly like textworld's own PddlEnv, shares nothing between episodes."""

from __future__ import annotations

import random
import sys
import threading

import pytest
import textworld
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
from textworld.envs.pddl import PddlEnv

from envs.alfworld import engine
from envs.alfworld.games import SHIPPED_ROOT, list_games, read_game

pytestmark = pytest.mark.alfworld


def _raw(game) -> AlfredDemangler:
    """textworld's PddlEnv with alfworld's demangler, as AlfredTWEnv builds it (no expert)."""
    env = AlfredDemangler(PddlEnv(textworld.EnvInfos(admissible_commands=True, won=True)), shuffle=False)
    env.load(read_game(game.path))
    return env


def _commands(game, rng: random.Random) -> list[str]:
    """The walkthrough with random admissible-looking detours and rejected commands mixed in."""
    walk = read_game(game.path)["walkthrough"]
    out = []
    for command in walk:
        if rng.random() < 0.3:
            out.append(rng.choice(["jump", "go to the moon", "take mug 9 from countertop 1", ""]))
        out.append(command)
    return out


@pytest.mark.parametrize("split,index", [
    ("valid_seen", 1),  # a short one (examine in light, 7 commands)
    pytest.param("train", 15, marks=pytest.mark.slow),  # pick two, in a living room
])
def test_prepared_engine_plays_like_textworld(split, index):
    game = list_games(SHIPPED_ROOT, split)[index]
    raw = _raw(game)
    ours = engine.acquire()
    try:
        for episode in range(2):  # the second episode starts from the cached first state
            expected = raw.reset()
            state = ours.start(engine.prepare(game.path))
            assert state["feedback"] == expected["feedback"]
            assert state["admissible_commands"] == expected["admissible_commands"]
            for command in _commands(game, random.Random(episode)):
                expected, _, _ = raw.step(command)
                state, _, _ = ours.step(command)
                assert (state["feedback"], state["admissible_commands"], state["won"]) == (
                    expected["feedback"], expected["admissible_commands"], expected["won"]), command
            assert state["won"]
    finally:
        engine.release(ours)


def test_episodes_of_one_game_do_not_share_state():
    game = engine.prepare(list_games(SHIPPED_ROOT, "valid_seen")[0].path)
    a, b = engine.acquire(), engine.acquire()
    try:
        first = a.start(game)
        walk = game.data["walkthrough"]
        for command in walk[:-1]:
            a.step(command)
        again = b.start(game)  # same game, while a is near the end of it
        assert again["feedback"] == first["feedback"]
        assert again["admissible_commands"] == first["admissible_commands"]
        state, _, _ = a.step(walk[-1])
        assert state["won"] and not b.state["won"]
        assert game.initial._facts is not a._pddl_state._facts is not b._pddl_state._facts
    finally:
        engine.release(a)
        engine.release(b)


def test_concurrent_episodes_in_threads_match_sequential_ones():
    games = list_games(SHIPPED_ROOT, "valid_unseen")[:3]

    def play(game) -> list[str]:
        eng = engine.acquire()
        try:
            out = [eng.start(engine.prepare(game.path))["feedback"]]
            for command in read_game(game.path)["walkthrough"][:6]:
                out.append(eng.step(command)[0]["feedback"])
            return out
        finally:
            engine.release(eng)

    sequential = [play(g) for g in games]
    results: dict[int, list[str]] = {}
    threads = [threading.Thread(target=lambda i=i, g=g: results.__setitem__(i, play(g))) for i, g in enumerate(games)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(games))] == sequential


def test_preparing_restores_sys_argv_and_is_cached():
    engine.clear_cache()
    argv = list(sys.argv)
    path = list_games(SHIPPED_ROOT, "train")[3].path
    game = engine.prepare(path)
    assert sys.argv == argv  # fast-downward's translator overwrites it
    assert engine.prepare(path) is game
    assert game.entity_infos and all(info.name for info in game.entity_infos.values())


def test_pool_reuses_engines_and_never_unloads_them(monkeypatch):
    monkeypatch.setattr(engine, "_POOL", [])
    a, b = engine.acquire(), engine.acquire()
    assert a is not b and a.downward_lib is not b.downward_lib
    engine.release(a)
    engine.release(b)
    assert engine._POOL == [a, b]
    assert engine.acquire() is b and engine.acquire() is a
    a.close()  # textworld calls this on garbage collection: the library must stay loaded
    assert a.downward_lib is not None
