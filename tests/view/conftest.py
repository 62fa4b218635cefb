"""Run folders written the way `agentgym train` and `agentgym eval` write them, small and fast.

Trajectories come from the real :class:`~agentgym.rollout.trajectory.Trajectory` (plus the fields
of the redesigned env boundary: ``task``, ``reward_parts``, OpenAI ``tool_calls``), and eval
results from the real ``agentgym.eval.metrics.summarize``, so the viewer reads what the writers
produce. Tests that need a real training run use ``tests/view/test_browser.py``'s fixture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentgym.eval.metrics import summarize
from agentgym.rollout.trajectory import Trajectory, Turn

SECRET = "SECRET-REFERENCE-7731"


def make_trajectory(
    i: int,
    *,
    env: str = "maze/v0",
    success: bool | None = None,
    guided: bool = False,
    tools: bool = False,
    step: int | None = None,
    entry: str | None = None,
    status: str = "completed",
    text: str = "",
) -> dict[str, Any]:
    """One trajectory as a JSON-ready dict; every third succeeds unless ``success`` says otherwise."""
    success = (i % 3 == 0) if success is None else success
    obs1 = {"role": "user", "content": f"You are at cell {i}. {text}".strip()}
    last = {
        "role": "user",
        "content": f"final observation of episode {i}: " + ("goal reached" if success else "stuck"),
    }
    prompt = f"Solve maze number {i}."
    metadata: dict[str, Any] = {
        "step": step if step is not None else 0,
        "sample": i % 4,
        "initial_progress": 0.0,
    }
    if guided:
        metadata["guided"] = True
        metadata["guidance"] = {
            "text": f"Guidance for this attempt: go right {i} times.",
            "mode": "append",
            "role": "user",
            "kind": "hint",
            "every_turn": False,
        }
        prompt += f"\n\nGuidance for this attempt: go right {i} times."
    if entry:
        metadata["eval"] = {"suite": "s", "entry": entry, "sample": i % 2}
    if tools:
        reply1 = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{i}_a",
                    "type": "function",
                    "function": {"name": "move", "arguments": '{"direction": "up"}'},
                },
                {"id": f"call_{i}_b", "type": "function", "function": {"name": "look", "arguments": "{}"}},
            ],
        }
        answers = [
            {"role": "tool", "tool_call_id": f"call_{i}_a", "content": "moved up"},
            {"role": "tool", "tool_call_id": f"call_{i}_b", "content": f"you see a wall {i}"},
        ]
        action1 = '<tool_call>{"name": "move"}</tool_call>'
    else:
        reply1 = {"role": "assistant", "content": "up"}
        answers = [obs1]
        action1 = "up"
    messages = [
        {"role": "system", "content": "You walk mazes."},
        {"role": "user", "content": prompt},
        reply1,
        *answers,
        {"role": "assistant", "content": "right"},
        last,
    ]
    # token bookkeeping: prompt tokens (mask 0), 3 sampled, observation tokens, 2 sampled
    token_ids = list(range(100, 110)) + [7, 8, 9] + [200, 201, 202, 203] + [11, 12]
    loss_mask = [0] * 10 + [1, 1, 1] + [0] * 4 + [1, 1]
    logprobs = [0.0] * 10 + [-0.5, -0.25, -1.0] + [0.0] * 4 + [-0.125, -2.0]
    turns = [
        Turn(
            action=action1,
            observation=answers[0],
            reward=0.0,
            info={"turn": 1, "progress": 0.25},
            start=10,
            end=13,
            generation_s=0.5,
            env_s=0.01,
            num_tokens=3,
            policy_version=step or 0,
        ),
        Turn(
            action="right",
            observation=last,
            reward=1.0 if success else 0.0,
            info={"turn": 2, "progress": 1.0 if success else 0.5, "invalid_action": not success},
            start=17,
            end=19,
            finish_reason="stop" if success else "length",
            generation_s=0.25,
            env_s=0.02,
            num_tokens=2,
            policy_version=step or 0,
        ),
    ]
    traj = Trajectory(
        id=f"traj-{i:05d}",
        env_id=env,
        task_id=f"task-{i // 4}",
        group_id=f"g{i // 4}",
        messages=messages,
        token_ids=token_ids,
        loss_mask=loss_mask,
        logprobs=logprobs,
        turns=turns,
        reward=1.0 if success else 0.0,
        success=success,
        status=status,
        policy_version=step or 0,
        timings={"wall_s": 1.0 + i / 100, "generation_s": 0.75, "env_s": 0.03},
        metadata=metadata,
    )
    data = traj.to_dict()
    # fields of the redesigned env boundary (issue #14); readers must show them when present
    data["task"] = {
        "id": f"task-{i // 4}",
        "env_id": env,
        "inputs": {"size": 3 + i % 2},
        "reference": {"answer": SECRET},
    }
    data["reward_parts"] = {
        "env": 1.0 if success else 0.0,
        "rubric": [{"name": "tidy", "score": 0.5}],
        "total": data["reward"],
    }
    return data


def write_jsonl(path: Path, rows: list[dict[str, Any]], mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def results_for(
    rows: list[dict[str, Any]], suite: str = "maze_easy", policy: str = "scripted:random"
) -> dict:
    trajs = [Trajectory.from_dict(r) for r in rows]
    by_entry: dict[str, list[Trajectory]] = {}
    for t in trajs:
        by_entry.setdefault(t.metadata.get("eval", {}).get("entry", t.env_id), []).append(t)
    return {
        "suite": suite,
        "policy": policy,
        "policy_version": 0,
        "envs": {name: {"env_id": ts[0].env_id, **summarize(ts)} for name, ts in by_entry.items()},
        "overall": summarize(trajs),
        "wall_s": 1.5,
    }


def make_eval_run(
    folder: Path, n: int = 12, *, policy: str = "scripted:random", finished: bool = True, wins_every: int = 3
) -> Path:
    rows = [make_trajectory(i, entry="maze-easy", success=i % wins_every == 0) for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(
        json.dumps({"suite": "maze_easy", "policy": policy, "envs": {"maze-easy": {}}})
    )
    write_jsonl(folder / "trajectories.jsonl", rows)
    if finished:
        (folder / "results.json").write_text(json.dumps(results_for(rows, policy=policy)))
    return folder


def make_train_run(folder: Path, steps: int = 3, per_step: int = 8, *, finished: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "name": folder.name,
        "model": {"policy": "scripted:random"},
        "envs": [{"id": "maze/v0"}],
        "trainer": {"steps": steps},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    records = []
    for s in range(1, steps + 1):
        rows = [make_trajectory(s * 100 + j, step=s - 1, guided=j >= per_step - 2) for j in range(per_step)]
        write_jsonl(folder / "trajectories" / f"step-{s:06d}.jsonl", rows)
        records.append(
            {
                "step": s,
                "kind": "train",
                "reward/mean": 0.1 * s,
                "success/mean": 0.1 * s,
                "episodes": per_step,
                "entropy": 2.0 - 0.1 * s,
                "clip_fraction": 0.01,
                "guidance/rate": 0.5,
                "groups/nonzero_adv_fraction": 0.25 * s,
                "tokens/generated_per_s": 40.0 + s,
                "time/step_s": 3.0,
                "loss": 0.1,
            }
        )
    records.append(
        {
            "step": steps,
            "kind": "eval",
            "tag": "end",
            "success_rate": 0.5,
            "success_ci_low": 0.2,
            "success_ci_high": 0.8,
            "episodes": 8,
            "reward_mean": 0.5,
        }
    )
    write_jsonl(folder / "metrics.jsonl", records)
    make_eval_run(folder / "eval" / f"end-step-{steps:06d}", n=8)
    if finished:
        (folder / "summary.json").write_text(json.dumps({"final_step": steps, "wall_s": 12.0, "evals": []}))
    return folder


@pytest.fixture
def runs_root(tmp_path) -> Path:
    """``runs/`` with one training run (and its nested eval) and two eval runs."""
    root = tmp_path / "runs"
    make_train_run(root / "maze")
    make_eval_run(root / "eval" / "before", wins_every=4)
    make_eval_run(root / "eval" / "after", wins_every=2, policy="hf:trained")
    return root


@pytest.fixture
def viewer_cache(tmp_path) -> Path:
    return tmp_path / "cache"
