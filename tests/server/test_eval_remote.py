"""``agentgym eval`` through ``remote:`` gives the trajectories of the local run (same seeds).

The server is ``agentgym serve-envs`` in a subprocess. Two deterministic players: the oracle
(asks the env over the wire every turn) and a replay of fixed replies that mixes moves, tool
calls, garbage and invalid calls, so invalid actions, turn limits and failures are compared too.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from agentgym.eval.runner import evaluate

from .servers import start_serve_envs

pytestmark = pytest.mark.slow

MAZE_REPLIES = ["right", "down 2", "I am lost", "left 3", "up", '<tool_call>{"name": "move"}</tool_call>', "right 2",
                "down", "up 9", "left", "down", "right 3"]  # more than the 10 turns of maze_easy
SEARCH_REPLIES = ['<tool_call>{"name": "search", "arguments": {"query": "capital of France"}}</tool_call>',
                  "no idea", '<tool_call>{"name": "open", "arguments": {"doc_id": "Paris"}}</tool_call>',
                  '<tool_call>{"name": "open", "arguments": {"doc_id": 3}}</tool_call>',
                  '<tool_call>{"name": "answer", "arguments": {"text": "Paris", "citations": ["Paris"]}}</tool_call>']


def comparable(traj) -> dict:
    """Everything but ids and timings."""
    out = asdict(traj)
    for key in ("id", "timings"):
        out.pop(key)
    for turn in out["turns"]:
        turn.pop("generation_s"), turn.pop("env_s")
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = start_serve_envs("--env", "maze-easy/v0", "search-singlehop/v0",
                                 log=tmp_path_factory.mktemp("server") / "server.log")
    yield url
    proc.terminate()
    assert proc.wait(30) == 0  # SIGTERM: every session closed, a clean exit


@pytest.mark.parametrize("suite,num_tasks,replies", [("maze_easy", 12, MAZE_REPLIES),
                                                     ("search_singlehop", 4, SEARCH_REPLIES)])
def test_remote_eval_equals_local(server, tmp_path, suite, num_tasks, replies):
    replay = tmp_path / "replies.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in replies))
    for policy in ("scripted:oracle", f"scripted:replay:{replay}"):
        local = evaluate(suite, policy, num_tasks=num_tasks, out_dir=tmp_path / "local" / policy[:15], progress=False)
        remote = evaluate(suite, policy, num_tasks=num_tasks, out_dir=tmp_path / "remote" / policy[:15],
                          progress=False, factory=f"remote:{server}")
        assert len(local.trajectories) == len(remote.trajectories) == num_tasks * (2 if suite == "maze_easy" else 1)
        assert not [t.error for t in remote.trajectories if t.status == "failed"]
        for a, b in zip(local.trajectories, remote.trajectories):
            assert comparable(b) == comparable(a)
        assert remote.results["overall"]["success_rate"] == local.results["overall"]["success_rate"]
    assert {t.success for t in local.trajectories} == {False, True} or suite != "maze_easy"
