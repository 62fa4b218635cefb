"""kill -9 in the middle of training, then --resume: the run finishes at the same final step;
a corrupted newest checkpoint is skipped, never loaded."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from agentgym.train.checkpoint import list_checkpoints, step_dir
from agentgym.train.config import save_config
from agentgym.train.metrics import read_metrics
from agentgym.train.loop import Trainer, train
from tests.train.test_learning import toy_config

REPO = Path(__file__).resolve().parents[2]
LAUNCH = (
    "import sys; from tests.train.toy_env import register; register(); "
    "from agentgym.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run_cli(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", LAUNCH, "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.mark.slow
def test_kill_9_then_resume_finishes(tmp_path, tiny_folder):  # noqa: F811
    cfg = toy_config(tmp_path, tiny_folder, "trainer.steps=10", "checkpoint.every=2", "checkpoint.keep_last=2",
                     "pipeline.max_staleness=1", "logging.tensorboard=false")
    path = tmp_path / "cfg.yaml"
    save_config(cfg, path)
    proc = run_cli(str(path), "--no-progress")
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            steps = [s for s, _ in list_checkpoints(cfg.run_path / "checkpoints")]
            if steps and max(steps) >= 4:
                break
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint appeared")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = max(s for s, _ in list_checkpoints(cfg.run_path / "checkpoints"))
    assert killed_at < 10
    # a second start without --resume refuses to overwrite
    again = run_cli(str(path), "--no-progress")
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 2 and "--resume" in out
    resumed = run_cli(str(cfg.run_path), "--resume", "--no-progress")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert '"final_step": 10' in out
    records = [r for r in read_metrics(cfg.run_path / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in records] == list(range(1, 11))
    assert [s for s, _ in list_checkpoints(cfg.run_path / "checkpoints")] == [8, 10]


@pytest.mark.slow
def test_corrupted_checkpoint_is_skipped_and_state_restored(tmp_path, tiny_folder):  # noqa: F811
    cfg = toy_config(tmp_path, tiny_folder, "trainer.steps=4", "checkpoint.every=2", "checkpoint.keep_last=5",
                     "pipeline.max_staleness=0", "logging.tensorboard=false", "checkpoint.export_final=false",
                     "logging.plot=false")
    train(cfg)
    newest = step_dir(cfg.run_path / "checkpoints", 4)
    blob = bytearray((newest / "model.safetensors").read_bytes())
    blob[-10] ^= 0xFF
    (newest / "model.safetensors").write_bytes(bytes(blob))
    saved = load_file(str(step_dir(cfg.run_path / "checkpoints", 2) / "model.safetensors"))

    trainer = Trainer(cfg.model_copy(update={"trainer": cfg.trainer.model_copy(update={"steps": 6})}), resume=True)
    folder = trainer._prepare_run_dir()
    assert folder == step_dir(cfg.run_path / "checkpoints", 2)
    trainer._build()
    trainer._restore(folder)
    assert trainer.start_step == 2 and trainer.version == 2
    params = dict(trainer.model.named_parameters())
    for name, tensor in saved.items():
        torch.testing.assert_close(params[name].detach(), tensor)
    assert trainer.learner.scheduler.last_epoch == 2
    assert len(trainer.learner.optimizer.state) > 0
    # the tasks of a step are a pure function of (seed, step): the data cursor is the step
    assert [s.seed for s in trainer.episode_specs(3)] == [s.seed for s in Trainer(cfg).episode_specs(3)]
