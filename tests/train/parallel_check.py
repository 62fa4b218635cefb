"""Run under ``torchrun --nproc-per-node N``: one step of the FSDP2 learner vs the single-process learner.

Rank 0 steps the sharded learner on a fixed batch, gathers its weights, then steps a plain
:class:`Learner` on a fresh copy with the same batch, and writes both results as JSON to
``argv[1]``; the other ranks follow. Also checks a checkpoint round trip through rank 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch


def samples_for(model, vocab: int, n: int = 7, seed: int = 0):
    from agentgym.train.advantages import Sample
    from agentgym.train.losses import logprobs_from_logits

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(6, 30))
        ids = rng.integers(1, vocab, size=length).tolist()
        mask = [0] * 3 + [int(x) for x in rng.integers(0, 2, size=length - 3)]
        mask[-1] = 1
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, :-1]
        lp, _ = logprobs_from_logits(logits, torch.tensor(ids[1:]))
        behaviour = [0.0] + [float(v) if m else 0.0 for v, m in zip(lp, mask[1:])]
        adv = np.asarray(mask, dtype=np.float32) * float(rng.normal())
        out.append(Sample(ids, mask, behaviour, adv))
    return out


def main() -> None:
    from transformers import AutoModelForCausalLM

    from agentgym.train.config import load_config
    from agentgym.train.learner import Learner
    from agentgym.train.parallel import build_sharded, compute_dtype, follow, init_from_env, make_learner

    out_path, folder = Path(sys.argv[1]), sys.argv[2]
    agg = sys.argv[3] if len(sys.argv) > 3 else "token_mean"
    config = load_config(None, [f"model.policy=hf:{folder}", "envs=[{id: maze/v0}]", "trainer.lr=1e-3",
                                "trainer.micro_batch_tokens=48", "trainer.logprob_chunk=7", f"algorithm.loss_agg={agg}",
                                "algorithm.kl_coef=0.05"])
    group = init_from_env()
    assert group is not None
    if not group.is_driver:
        follow(config, group, pad_id=0)
        group.close()
        return
    root, ref_root = build_sharded(config, group, compute_dtype(group, config))
    learner = make_learner(config, group, root, ref_root, pad_id=0)
    plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    samples = samples_for(plain, plain.config.vocab_size)
    metrics = learner.step(samples)
    metrics2 = learner.step(samples)
    sharded = learner.full_state()
    ckpt = out_path.parent / "ckpt"
    ckpt.mkdir(exist_ok=True)
    for name, write in learner.checkpoint_files().items():
        write(ckpt / name)
    learner.load_checkpoint(ckpt)
    reloaded = learner.full_state()
    learner.stop()
    group.close()

    import copy

    ref = copy.deepcopy(plain).requires_grad_(False).eval()
    single = Learner(plain, config.trainer, config.algorithm, ref_model=ref, temperature=1.0, pad_id=0)
    expected = single.step(samples)
    expected2 = single.step(samples)
    diffs = {n: float((sharded[n] - p.detach()).abs().max()) for n, p in plain.named_parameters()}
    moved = {n: float((p.detach() - AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
                       .state_dict()[n]).abs().max()) for n, p in list(plain.named_parameters())[:3]}
    out_path.write_text(json.dumps({
        "world": group.world_size, "metrics": [metrics, metrics2], "expected": [expected, expected2],
        "max_diff": max(diffs.values()), "moved": moved,
        "reload_equal": all(torch.equal(reloaded[k], sharded[k]) for k in sharded),
        "keys_equal": set(sharded) >= {n for n, _ in plain.named_parameters()},
    }))


if __name__ == "__main__":
    main()
