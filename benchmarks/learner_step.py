"""One GRPO step, agentgym's learner vs TRL's GRPOTrainer: same model, batch and data.

Work per step (both sides): 8 chat prompts x 8 sampled completions (64) of up to 32 new
tokens at temperature 1 from SmolLM2-135M-Instruct, a deterministic reward, group-relative
advantages, one AdamW update on all weights, no reference model. Each side runs in its own
process (peak RSS is that process's own); TRL lives in its own virtualenv ``.bench-venv-trl``
(created here with ``torch==2.13.0`` and ``trl``; never a dependency of agentgym).

The device is picked as ``agentgym train`` picks it (``--device auto``): the GPU when there is
one, and the output says which. On the CPU both sides run fp32. On a GPU the hf policy holds
bf16 weights that the learner shares, trained through an fp32 master copy
(:mod:`agentgym.train.precision`); TRL runs with ``bf16=True`` (fp32 weights, bf16 autocast);
peak GPU memory is reported besides peak RSS.

    python benchmarks/learner_step.py [--steps 3] [--skip-trl] [--device auto|cpu|cuda]

Prints per-side medians and, last, one JSON line with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRL_VENV = ROOT / ".bench-venv-trl"
PROMPTS = [
    "Describe a maze in one sentence.",
    "Which way should I go to leave a dark room?",
    "Name three colours of boxes in a warehouse.",
    "Give a short tip for solving puzzles.",
    "What is the opposite of left?",
    "Write a short greeting for a robot.",
    "How many steps does it take to cross a small room?",
    "Say something about walls.",
]
GROUP = 8
MAX_NEW = 32
LR = 1e-6


def reward_of(text: str) -> float:
    """Deterministic, varied reward: distinct lowercase letters used, capped at 1."""
    return min(1.0, len({c for c in text.lower() if c.isalpha()}) / 20.0)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


# ----------------------------------------------------------------------------- agentgym
def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this machine has no CUDA device")
    return requested


def device_note(device: str) -> str:
    import torch

    return f"cuda ({torch.cuda.get_device_name(0)})" if device == "cuda" else "cpu"


def run_ours(model_path: str, steps: int, micro_batch_tokens: int = 320, device: str = "cpu") -> dict:
    import asyncio

    import torch

    from agentgym.malloc import limit_malloc_growth
    from agentgym.policy.base import GenerationRequest, SamplingParams
    from agentgym.policy.hf import HFPolicy
    from agentgym.torch_thread import call_on_torch_thread
    from agentgym.train.advantages import Sample, group_advantages
    from agentgym.train.config import AlgorithmConfig, TrainerConfig
    from agentgym.train.learner import Learner
    from agentgym.train.weights import SharedSync

    limit_malloc_growth()  # what `agentgym train` does at start
    torch.manual_seed(0)
    from agentgym.train.precision import resolve

    policy = HFPolicy(model_path, device=device)  # bf16 on a GPU, fp32 on the CPU
    precision = resolve(shared_device=str(policy.device))  # what `agentgym train` picks for a shared hf policy
    learner = Learner(
        policy.model,  # shared with the rollout policy: no weight copy
        TrainerConfig(lr=LR, micro_batch_tokens=micro_batch_tokens, logprob_chunk=512, steps=steps),
        AlgorithmConfig(),
        temperature=1.0,
        pad_id=policy.pad_id,
        autocast=precision.autocast_dtype,
        master_weights=precision.master_weights,
    )
    sync = SharedSync(policy, policy.model, policy.weights())

    def learn(samples: list) -> dict:
        """What `agentgym train` runs as one torch-thread job with a shared hf policy."""
        sync.prepare()  # the prefix cache of the weights about to change goes first
        m = learner.step(samples, update_lock=sync.update_lock)
        sync.publish()  # new version, old keys/values dropped
        return m

    messages = [[{"role": "user", "content": p}] for p in PROMPTS]
    prompt_ids = [policy.renderer.initial(m) for m in messages]
    params = SamplingParams(temperature=1.0, max_tokens=MAX_NEW, n=GROUP)
    records = []
    for _ in range(steps):
        t0 = time.perf_counter()
        results = asyncio.run(policy.generate([GenerationRequest(prompt_ids=p, params=params) for p in prompt_ids]))
        t1 = time.perf_counter()
        samples = []
        for ids, completions in zip(prompt_ids, results):
            advs = group_advantages([reward_of(c.text) for c in completions])
            for c, adv in zip(completions, advs):
                n_prompt = len(ids)
                tokens = ids + c.token_ids
                mask = [0] * n_prompt + [1] * len(c.token_ids)
                import numpy as np

                samples.append(Sample(tokens, mask, [0.0] * n_prompt + c.logprobs,
                                      np.asarray(mask, dtype=np.float32) * float(adv)))
        m = call_on_torch_thread(learn, samples)
        t2 = time.perf_counter()
        records.append({
            "step_s": t2 - t0, "generation_s": t1 - t0, "train_s": t2 - t1,
            "forward_s": m["time/forward_s"], "backward_s": m["time/backward_s"],
            "completion_tokens": m["tokens/trained"],
        })
        print(f"agentgym step {len(records)}/{steps}: {t2 - t0:.1f} s (generation {t1 - t0:.1f} s, "
              f"learner {t2 - t1:.1f} s)", file=sys.stderr, flush=True)
    out = summarise("agentgym", records, device)
    out["precision"] = precision.describe()
    return out


# ----------------------------------------------------------------------------- TRL
def run_trl(model_path: str, steps: int, device: str = "cpu") -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in PROMPTS] * (steps + 2))
    tokens_seen: list[int] = []

    def reward(completions, **kwargs):
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        tokens_seen.append(sum(len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts))
        return [reward_of(t) for t in texts]

    class Timer(TrainerCallback):
        def __init__(self):
            self.starts, self.ends = [], []

        def on_step_begin(self, args, state, control, **kwargs):
            self.starts.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())
            print(f"trl step {len(self.ends)}/{steps}: {self.ends[-1] - self.starts[-1]:.1f} s",
                  file=sys.stderr, flush=True)

    timer = Timer()
    config = GRPOConfig(
        output_dir=str(ROOT / ".bench-trl-out"),
        per_device_train_batch_size=len(PROMPTS) * GROUP,
        gradient_accumulation_steps=1,
        num_generations=GROUP,
        max_completion_length=MAX_NEW,
        temperature=1.0,
        learning_rate=LR,
        beta=0.0,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        seed=0,
        dataloader_num_workers=0,
        shuffle_dataset=False,
    )
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=reward, args=config,
                          train_dataset=data, callbacks=[timer])
    trainer.train()
    records = []
    for i, (s, e) in enumerate(zip(timer.starts, timer.ends)):
        records.append({"step_s": e - s, "completion_tokens": tokens_seen[i] if i < len(tokens_seen) else 0})
    return summarise("trl", records, device)


# ----------------------------------------------------------------------------- driver
def summarise(name: str, records: list[dict], device: str = "cpu") -> dict:
    out = {"name": name, "device": device_note(device), "steps": len(records), "peak_rss_gb": round(peak_rss_gb(), 3)}
    if device == "cuda":
        import torch

        out["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    for key in records[0]:
        out[key] = statistics.median(r[key] for r in records)
    out["tokens_per_s"] = statistics.median(r["completion_tokens"] / r["step_s"] for r in records)
    out["per_step"] = records
    return out


def ensure_trl_venv() -> Path:
    python = TRL_VENV / "bin" / "python"
    probe = [str(python), "-c", "import trl, torch; assert torch.__version__.startswith('2.13.0')"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {TRL_VENV} with torch==2.13.0 and trl ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(TRL_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0", "trl", "datasets"], check=True)
    return python


def child(python: str, side: str, model_path: str, steps: int, micro_batch_tokens: int = 320,
          device: str = "cpu") -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--child", side, "--model", model_path, "--steps", str(steps),
           "--micro-batch-tokens", str(micro_batch_tokens), "--device", device]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    err_lines: list[str] = []
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: the child never blocks on a full one
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            for line in proc.stderr:  # per-step progress through; the rest kept for an error report
                if line.startswith(("agentgym step", "trl step")):
                    print(line, end="", file=sys.stderr, flush=True)
                err_lines = [*err_lines[-199:], line]
            proc.wait()
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C, a timeout's SIGTERM): leave no side running
                proc.kill()
                proc.wait()
        out.seek(0)
        lines = out.read().strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed:\n{''.join(err_lines)[-4000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--child", choices=["ours", "trl"])
    parser.add_argument("--model")
    parser.add_argument("--micro-batch-tokens", type=int, default=320,
                        help="agentgym's tokens per forward/backward (smaller: less activation memory)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="auto (the default): the GPU when there is one, else the CPU")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so a running side is stopped too
    device = pick_device(args.device)
    if args.child:
        if args.child == "ours":
            result = run_ours(args.model, args.steps, args.micro_batch_tokens, device)
        else:
            result = run_trl(args.model, args.steps, device)
        print(json.dumps(result))
        return
    from agentgym.policy.default_model import resolve_model

    model_path = str(resolve_model("default"))
    print(f"device: {device_note(device)}", file=sys.stderr, flush=True)
    ours = child(sys.executable, "ours", model_path, args.steps, args.micro_batch_tokens, device)
    print(json.dumps({k: v for k, v in ours.items() if k != "per_step"}))
    headline = {"bench": "learner_step", "device": ours["device"], "precision": ours["precision"],
                "model": "SmolLM2-135M-Instruct", "completions": len(PROMPTS) * GROUP,
                "max_new_tokens": MAX_NEW, "agentgym_step_s": round(ours["step_s"], 2),
                "agentgym_tokens_per_s": round(ours["tokens_per_s"], 1),
                "agentgym_peak_rss_gb": ours["peak_rss_gb"], "agentgym_micro_batch_tokens": args.micro_batch_tokens}
    if not args.skip_trl:
        trl = child(str(ensure_trl_venv()), "trl", model_path, args.steps, device=device)
        print(json.dumps({k: v for k, v in trl.items() if k != "per_step"}))
        headline.update({
            "trl_step_s": round(trl["step_s"], 2),
            "trl_tokens_per_s": round(trl["tokens_per_s"], 1),
            "trl_peak_rss_gb": trl["peak_rss_gb"],
            "speedup": round(trl["step_s"] / ours["step_s"], 2),
            "tokens_per_s_ratio": round(ours["tokens_per_s"] / trl["tokens_per_s"], 2),
            "memory_ratio": round(ours["peak_rss_gb"] / trl["peak_rss_gb"], 2),
        })
        if device == "cuda":
            headline.update({"agentgym_peak_gpu_gb": ours["peak_gpu_gb"], "trl_peak_gpu_gb": trl["peak_gpu_gb"],
                             "gpu_memory_ratio": round(ours["peak_gpu_gb"] / trl["peak_gpu_gb"], 2)})
    elif device == "cuda":
        headline["agentgym_peak_gpu_gb"] = ours["peak_gpu_gb"]
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
