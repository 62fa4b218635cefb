"""The FSDP2 learner over 2 CPU processes (gloo) under torchrun: the same update as one process, and a run.

GPU runs of the same code (NCCL, bf16 compute) are in tests/train/test_gpu.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.train.parallel import balance

ROOT = Path(__file__).resolve().parents[2]


def test_balance_spreads_tokens_evenly():
    counts = [50, 10, 40, 30, 20, 20, 5]
    shares = balance(counts, 2)
    assert sorted(i for s in shares for i in s) == list(range(len(counts)))
    loads = [sum(counts[i] for i in s) for s in shares]
    assert max(loads) - min(loads) <= 5
    assert balance([7], 3) == [[0], [], []]  # fewer samples than ranks: the others idle


def torchrun(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


@pytest.mark.slow
def test_sharded_step_equals_the_single_process_step(tmp_path, tiny_folder):
    """Two steps (KL on, micro-batches, uneven shares) and a checkpoint round trip, against one process."""
    out = tmp_path / "out.json"
    torchrun("tests/train/parallel_check.py", str(out), str(tiny_folder))
    result = json.loads(out.read_text())
    assert result["world"] == 2 and result["keys_equal"] and result["reload_equal"]
    assert min(result["moved"].values()) > 1e-3  # the steps did move the weights...
    assert result["max_diff"] < 5e-5  # ...and the sharded ones moved as the single-process ones did
    for got, want in zip(result["metrics"], result["expected"]):
        for key in ("loss", "grad_norm", "kl", "entropy", "ratio_mean", "clip_fraction"):
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), key
        assert got["tokens/trained"] == want["tokens/trained"]


def run_result(done: subprocess.CompletedProcess) -> dict:
    line = next(ln for ln in done.stdout.splitlines()[::-1] if "RESULT " in ln)
    return json.loads(line.split("RESULT ", 1)[1])


@pytest.mark.slow
def test_a_run_under_torchrun_trains_checkpoints_and_resumes(tmp_path, tiny_folder):
    run = tmp_path / "run"
    first = run_result(torchrun("tests/train/parallel_train.py", str(run), str(tiny_folder)))
    assert first["final_step"] == 2
    # the rollout policy generates with the sharded learner's gathered weights: step 2 is on-policy
    assert first["metrics"][1]["behaviour_logp_abs_diff"] < 1e-4
    saved = (run / "config.yaml").read_text()
    assert "share_weights: false" in saved and "device: cpu" in saved
    assert (run / "final" / "config.json").is_file()
    resumed = run_result(torchrun("tests/train/parallel_train.py", str(run), str(tiny_folder), "trainer.steps=3",
                                  "--resume"))
    assert resumed["final_step"] == 3 and [m["step"] for m in resumed["metrics"]] == [3]
