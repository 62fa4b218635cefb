import json

import pytest

from agentgym.core.task import Task
from agentgym.errors import UserError
from agentgym.rewards import Judge, RewardConfig, RewardPipeline, Rubric, score_trajectories
from agentgym.rewards.pipeline import load_reward_config, response_of
from agentgym.rollout.trajectory import Trajectory, Turn
from tests.rewards.helpers import FakePolicy

RUBRIC = [
    {"id": "nile", "kind": "contains", "any_of": ["Nile"], "hard": True, "weight": 2},
    {"id": "explains", "kind": "judged", "text": "Gives the length of the river", "weight": 2},
    {"id": "wrong", "kind": "judged", "text": "Names the Amazon", "weight": -1},
]


def traj(task_id, answer, reward=0.0, via_info=False):
    t = Trajectory(id=f"{task_id}-{answer[:5]}", env_id="qa/v0", task_id=task_id, reward=reward,
                   messages=[{"role": "user", "content": "Which is the longest river in Africa?"},
                             {"role": "assistant", "content": "thinking..." if via_info else answer}])
    t.turns.append(Turn(action=answer, observation={}, info={"answer": answer} if via_info else {}))
    return t


def judge_reply(prompt):
    if "Names the Amazon" in prompt:
        return "Score: 1" if "Amazon" in prompt.split("<<<")[1] else "Score: 0"
    return "Rationale: gives 6650 km\nScore: 1" if "6650" in prompt else "Score: 0"


async def test_scores_trajectories_with_weights_and_records_criteria():
    task = Task(id="nile", inputs={"question": "Which is the longest river in Africa?"},
                reference={"answer": "Nile"}, rubric=RUBRIC)
    trajs = [traj("nile", "The Nile, 6650 km", reward=1.0), traj("nile", "The Nile", via_info=True),
             traj("nile", "The Amazon"), traj("other", "whatever", reward=0.5)]
    policy = FakePolicy(judge_reply)
    pipeline = RewardPipeline(RewardConfig(env_weight=0.5, rubric_weight=1.0), judges={"default": Judge(policy)})
    rewards = await pipeline.score_trajectories(trajs, tasks=[task])
    assert rewards == [0.5 + 1.0, 0.5, 0.0, 0.25]
    meta = trajs[0].metadata["rubric"]
    assert meta["score"] == 1.0 and [c["id"] for c in meta["criteria"]] == ["nile", "explains", "wrong"]
    assert meta["criteria"][1]["rationale"] == "gives 6650 km"
    assert trajs[2].metadata["rubric"]["gated"] and trajs[2].metadata["rubric"]["failed_gates"] == ["nile"]
    assert trajs[3].metadata["rubric"] == {"score": None, "status": "no rubric"}
    parts = trajs[1].rewards
    assert (parts.outcome, parts.rubric, parts.total) == (0.0, 0.5, 0.5)
    assert parts.criteria == {"nile": 1.0, "explains": 0.0, "wrong": 0.0}
    assert policy.calls == 1  # every judged criterion of every trajectory in one batch
    m = pipeline.metrics()
    assert m["rubric/scored"] == 3 and m["rubric/no_rubric"] == 1 and m["rubric/gated"] == 1
    assert m["judge/default/judgments"] == 6 and m["judge/default/ok"] == 6


async def test_failed_judgments_are_excluded_and_counted():
    task = Task(id="nile", inputs={"question": "q"}, reference={"answer": "Nile"}, rubric=RUBRIC)
    pipeline = RewardPipeline(RewardConfig(env_weight=0.0), judges={"default": Judge(FakePolicy("no idea"))})
    t = traj("nile", "The Nile")
    [reward] = await pipeline.score_trajectories([t], tasks={"nile": task})
    assert reward == 1.0  # only the deterministic criterion could be scored
    crit = {c["id"]: c for c in t.metadata["rubric"]["criteria"]}
    assert crit["explains"]["status"] == "unparseable" and crit["explains"]["score"] is None
    assert crit["explains"]["raw"] == "no idea"
    assert pipeline.metrics()["rubric/criteria_unparseable"] == 2
    assert pipeline.metrics()["judge/default/unparseable"] == 2


async def test_rubric_sources_in_priority_order(tmp_path):
    table = tmp_path / "rubrics.jsonl"
    table.write_text(json.dumps({"task_id": "a", "rubric": [{"kind": "regex", "pattern": "from-table"}]}) + "\n")
    tasks_file = tmp_path / "tasks.jsonl"
    tasks_file.write_text(Task(id="c", rubric=[{"kind": "regex", "pattern": "from-file"}]).model_dump_json() + "\n")
    config = RewardConfig(env_weight=0.0, rubrics=str(table), tasks=str(tasks_file),
                          default_rubric=Rubric.coerce([{"kind": "regex", "pattern": "from-default"}]))
    a_task = Task(id="a", rubric=[{"kind": "regex", "pattern": "from-task"}])
    b = traj("b", "from-task")
    b.task = Task(id="b", rubric=[{"kind": "regex", "pattern": "from-task"}])  # the task it carries
    trajs = [traj("a", "from-table"), b, traj("c", "from-file"), traj("d", "from-default")]
    assert await score_trajectories(trajs, config, tasks=[a_task]) == [1.0, 1.0, 1.0, 1.0]


async def test_tasks_from_a_task_file_for_trajectories_without_their_task(tmp_path):
    from agentgym.core.task import save_tasks
    from envs.qa.env import questions

    path = tmp_path / "qa.jsonl"
    save_tasks(questions(), path)
    pipeline = RewardPipeline(RewardConfig(env_weight=0.0, tasks=str(path)))
    [r] = await pipeline.score_trajectories([traj("qa-001", "Au, from aurum")])
    assert r == 1.0
    with pytest.raises(ValueError, match="task JSONL file"):
        RewardConfig(tasks="qa/v0")


async def test_penalties_and_the_total():
    t = traj("x", "whatever", reward=1.0)
    t.turns[0].info["invalid_action"] = True
    t.turns.append(Turn(action="again", observation={}, info={"invalid_action": True}))
    t.status = "truncated"
    config = RewardConfig(penalties={"invalid_action": 0.1, "truncated": 0.25})
    [total] = await RewardPipeline(config).score_trajectories([t])
    assert t.rewards.penalties == {"invalid_action": pytest.approx(0.2), "truncated": 0.25}
    assert total == pytest.approx(1.0 - 0.45) and t.rewards.rubric is None and t.reward == 1.0


def test_response_of_prefers_the_reported_answer():
    assert response_of(traj("x", "final", via_info=True)) == "final"
    assert response_of(traj("x", "plain")) == "plain"
    assert response_of(Trajectory(id="e", env_id="e", task_id="e")) == ""


def test_reward_config_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("rewards:\n  env_weight: 0\n  judges:\n    default: {policy: 'openai:http://x', timeout_s: 5}\n")
    cfg = load_reward_config(path)
    assert cfg.env_weight == 0 and cfg.judges["default"].timeout_s == 5
    path.write_text("env_weight: 0\nbogus: 1\n")
    with pytest.raises(UserError):
        load_reward_config(path)
