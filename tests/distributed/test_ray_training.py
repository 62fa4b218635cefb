"""Training with rollout workers on a local Ray cluster (the tiny model, built in code).

* a run with 2 workers completes with the single-process run's steps and metrics, and its
  trajectories' tokens are exactly what the workers' policies sampled, under the weights of
  the version each turn records (so the weight push to the workers is right);
* killing a worker mid-run restarts it and re-runs its episodes; the run goes on;
* a run that starts its own cluster stops it, also when it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from agentgym.rollout.trajectory import read_jsonl
from agentgym.train.config import load_config
from agentgym.train.loop import Trainer, train
from tests.distributed.envs import register

pytestmark = [pytest.mark.slow]

WORKERS = "distributed={rollout_workers: 2, worker_setup: ['tests.distributed.envs:register']}"


def overrides(run_dir: Path, folder: Path, *extra: str) -> list[str]:
    return [
        "name=ray-test", f"run_dir={run_dir}", "seed=0", f"model.policy=hf:{folder}",
        "envs=[{id: letter/v0}]", "rollout.group_size=4", "rollout.groups_per_step=4",
        "rollout.max_tokens=3", "trainer.steps=2", "trainer.lr=0.01", "pipeline.max_staleness=0",
        "checkpoint.every=1", "checkpoint.keep_last=3", "checkpoint.export_final=false",
        "logging.tensorboard=false", "logging.progress=false", "logging.plot=false", *extra,
    ]


def recomputed(model, traj) -> tuple[torch.Tensor, torch.Tensor]:
    """(recorded, recomputed) log-probs of every sampled token of ``traj`` at temperature 1."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([traj.token_ids])).logits[0].float(), -1)
    recorded, again = [], []
    for turn in traj.turns:
        for pos in range(turn.start, turn.end):
            recorded.append(traj.logprobs[pos])
            again.append(float(logp[pos - 1, traj.token_ids[pos]]))
    return torch.tensor(recorded), torch.tensor(again)


def check_bookkeeping(traj) -> None:
    """Loss mask 1 exactly on the sampled spans, log-probs only there, aligned lengths."""
    assert len(traj.token_ids) == len(traj.loss_mask) == len(traj.logprobs)
    sampled = {pos for turn in traj.turns for pos in range(turn.start, turn.end)}
    assert {i for i, m in enumerate(traj.loss_mask) if m} == sampled
    assert all(lp == 0.0 for i, lp in enumerate(traj.logprobs) if i not in sampled)
    assert all(traj.token_ids[t.start:t.end] for t in traj.turns)


def test_two_workers_match_the_single_process_run(ray_cluster, tmp_path, tiny_folder):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    register()
    local = train(load_config(None, overrides(tmp_path / "local", tiny_folder)))
    distributed = train(load_config(None, overrides(tmp_path / "ray", tiny_folder, WORKERS)))
    assert local.final_step == distributed.final_step == 2
    assert [m["step"] for m in distributed.metrics] == [m["step"] for m in local.metrics] == [1, 2]
    for mine, theirs in zip(distributed.metrics, local.metrics):
        assert set(theirs) <= set(mine)
        assert all(k.startswith("distributed/") for k in set(mine) - set(theirs))
        assert mine["distributed/worker_restarts"] == 0 and mine["episodes/failed"] == 0
    saved = tmp_path / "ray" / "config.yaml"
    assert "rollout_workers: 2" in saved.read_text() and "device: cpu" in saved.read_text()

    initial = AutoModelForCausalLM.from_pretrained(str(tiny_folder), dtype=torch.float32).eval()
    after_1 = AutoModelForCausalLM.from_pretrained(str(tiny_folder), dtype=torch.float32).eval()
    after_1.load_state_dict(load_file(tmp_path / "ray" / "checkpoints" / "step-000001" / "model.safetensors"),
                            strict=False)
    moved = []
    for step, weights in ((1, initial), (2, after_1)):
        trajs = list(read_jsonl(tmp_path / "ray" / "trajectories" / f"step-{step:06d}.jsonl"))
        assert len(trajs) == 16 and all(t.status != "failed" for t in trajs)
        assert sorted(Counter(t.group_id for t in trajs).values()) == [4, 4, 4, 4]
        for traj in trajs:
            check_bookkeeping(traj)
            assert traj.policy_version == step - 1
            assert all(turn.policy_version == step - 1 for turn in traj.turns)
            recorded, again = recomputed(weights, traj)
            assert torch.allclose(recorded, again, atol=2e-3), (recorded - again).abs().max()
            if step == 2:
                moved.append(float((recorded - recomputed(initial, traj)[1]).abs().max()))
    assert max(moved) > 0.05, "step 2 was generated with (nearly) the starting weights"


def test_killing_a_worker_mid_run_does_not_stop_it(ray_cluster, tmp_path, tiny_folder):
    register()
    cfg = load_config(None, overrides(
        tmp_path / "run", tiny_folder, WORKERS, "envs=[{id: slow-letter/v0, kwargs: {delay_s: 0.4}}]",
        "trainer.steps=3", "pipeline.max_staleness=1",
    ))
    trainer = Trainer(cfg)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = asyncio.run(trainer.run())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.time() + 600
    while thread.is_alive() and time.time() < deadline and killed is None:
        engine = trainer.engine
        busy = [s for s in getattr(engine, "slots", []) if s.actor is not None and s.in_flight > 0]
        if trainer.version >= 1 and busy:  # mid-run: a step is done and episodes are in flight
            killed = busy[0].index
            ray_cluster.kill(busy[0].actor, no_restart=True)
        time.sleep(0.05)
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    assert killed is not None, "the run ended before a worker could be killed"
    result = outcome["result"]
    assert result.final_step == 3
    last = result.metrics[-1]
    assert last["distributed/worker_restarts"] >= 1 and last["distributed/rerun_episodes"] >= 1
    for step in (1, 2, 3):
        trajs = list(read_jsonl(tmp_path / "run" / "trajectories" / f"step-{step:06d}.jsonl"))
        assert len(trajs) == 16 and all(t.status == "completed" for t in trajs)
    assert trainer.engine.slots[killed].generation >= 1


OWN_CLUSTER = r"""
import json, sys, time
import psutil, ray
from agentgym.errors import UserError
from agentgym.train.config import load_config
from agentgym.train.loop import train
from tests.distributed.envs import register

def daemons(since):
    out = []
    for p in psutil.process_iter(["name", "create_time"]):
        if p.info["name"] in ("raylet", "gcs_server") and p.info["create_time"] >= since - 1:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
    return out

register()
start = time.time()
base = json.loads(sys.argv[1])
report = {}
ok = train(load_config(None, base))
time.sleep(2)
report["ok"] = {"final_step": ok.final_step, "initialized": ray.is_initialized(), "left": daemons(start)}
report["step2_logp_diff"] = ok.metrics[-1]["behaviour_logp_abs_diff"]
try:
    train(load_config(None, base + ["run_dir=" + sys.argv[2], "model.policy=hf:/nonexistent/model",
                                    "trainer.steps=1"]))
    report["failed"] = {"raised": None}
except UserError as exc:
    time.sleep(2)
    report["failed"] = {"raised": str(exc), "initialized": ray.is_initialized(), "left": daemons(start)}
print(json.dumps(report))
"""


def test_a_run_that_starts_its_own_cluster_stops_it(tmp_path, tiny_folder):
    """address: null starts a local cluster; it is gone after the run, and after a run that failed.

    The run also shards its learner over 2 ranks, the second a Ray actor (learner_ranks: 2).
    """
    dist = ("distributed={rollout_workers: 1, learner_ranks: 2, num_cpus: 2, object_store_mb: 128, "
            "worker_setup: ['tests.distributed.envs:register']}")
    base = overrides(tmp_path / "own", tiny_folder, dist)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", OWN_CLUSTER, json.dumps(base), str(tmp_path / "broken")],
                          cwd=root, capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] == {"final_step": 2, "initialized": False, "left": []}
    assert report["step2_logp_diff"] < 1e-4  # the workers generated step 2 with the sharded learner's weights
    failed = report["failed"]
    assert failed["raised"] and "nonexistent" in failed["raised"]
    assert failed["initialized"] is False and failed["left"] == []
