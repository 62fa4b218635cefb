"""``torchrun --nproc-per-node N tests/train/parallel_train.py RUN_DIR MODEL [override ...] [--resume]``: a short run on
the letter env with the learner sharded over N ranks (every rank calls ``train``; rank 0 reports)."""

from __future__ import annotations

import json
import sys

from agentgym.train.config import load_config
from agentgym.train.loop import train
from tests.distributed.envs import register


def overrides(run_dir: str, folder: str, *extra: str) -> list[str]:
    return [
        "name=dp", f"run_dir={run_dir}", "seed=0", f"model.policy=hf:{folder}", "envs=[{id: letter/v0}]",
        "rollout.group_size=4", "rollout.groups_per_step=4", "rollout.max_tokens=3", "trainer.steps=2",
        "trainer.lr=0.01", "trainer.micro_batch_tokens=256", "pipeline.max_staleness=0", "checkpoint.every=1",
        "checkpoint.keep_last=3", "logging.tensorboard=false", "logging.progress=false", "logging.plot=false", *extra,
    ]


if __name__ == "__main__":
    register()
    extra = [a for a in sys.argv[3:] if a != "--resume"]
    result = train(load_config(None, overrides(sys.argv[1], sys.argv[2], *extra)), resume="--resume" in sys.argv)
    if result.rank == 0:
        print("RESULT " + json.dumps({"final_step": result.final_step, "metrics": result.metrics}))
