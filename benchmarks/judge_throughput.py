"""Judge throughput: batched + cached judging vs one judgment at a time, same policy, same run.

The policy is the default model (SmolLM2-135M-Instruct) through the ``hf`` backend on
this machine (``--model`` takes any hf spec; ``--model tiny`` builds the random-weight
test model, whose replies always run to ``--max-tokens``). The
workload is the qa/v0 judged criteria applied to each question's reference answer:

* ``sequential`` (the peer: the naive loop most reward code runs): one ``judge()`` call
  per item, awaited one after another, nothing reused;
* ``batched``: the same items in one ``judge()`` call, sent to the policy in batches;
* ``cached``: the same call again, answered from the judgment cache (only parsed
  verdicts are cached: unparseable ones are asked again, so this figure falls with the
  parse rate — ``cache_hit_fraction`` says how many were hits);
* ``batched_with_repeats``: a GRPO-like workload where each distinct response appears
  ``--group`` times (identical completions are common in a group): deduplication and
  the cache answer the repeats.

Each figure is the median over ``--repeats`` runs (fresh cache each run except ``cached``).
The last line of output is one JSON object.

    python benchmarks/judge_throughput.py [--items 8] [--repeats 3] [--model default]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from agentgym.policy.base import SamplingParams
from agentgym.rewards import Judge, JudgeItem, JudgmentCache
from envs.qa.env import questions


def workload(n: int) -> list[JudgeItem]:
    items = []
    for task in questions():
        for c in task.rubric:
            if c.get("kind") == "judged" and c.get("weight", 1) > 0:
                items.append(JudgeItem(c["text"], task.reference["solution"], c.get("scale", 1),
                                       task.reference["answer"], task.inputs["question"]))
                break
        if len(items) == n:
            break
    return items


async def timed(judge: Judge, items: list[JudgeItem], one_at_a_time: bool) -> tuple[float, list]:
    start = time.perf_counter()
    if one_at_a_time:
        out = [(await judge.judge([item]))[0] for item in items]
    else:
        out = await judge.judge(items)
    return time.perf_counter() - start, out


async def main(args: argparse.Namespace) -> dict:
    from agentgym.policy.hf import HFPolicy

    model = args.model
    if model == "tiny":  # the random-weight test model: every reply runs to max_tokens and is unparseable
        import tempfile

        from agentgym.policy.tiny import make_tiny_model

        model = str(make_tiny_model(tempfile.mkdtemp(prefix="agentgym-tiny-")))
    policy = HFPolicy(model, max_batch_size=args.batch)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    items = workload(args.items)
    repeated = [item for item in items[: max(1, args.items // args.group)] for _ in range(args.group)]

    def judge() -> Judge:
        return Judge(policy, params=params, batch_size=args.batch, max_concurrency=1, cache=JudgmentCache())

    await judge().judge(items[:2])  # warm-up: first forward passes allocate
    seq, bat, cac, rep, parsed, hits = [], [], [], [], [], []
    for _ in range(args.repeats):
        s, out = await timed(judge(), items, one_at_a_time=True)
        seq.append(len(items) / s)
        j = judge()
        b, out_b = await timed(j, items, one_at_a_time=False)
        bat.append(len(items) / b)
        c, out_c = await timed(j, items, one_at_a_time=False)
        cac.append(len(items) / c)
        hits.append(sum(o.cached for o in out_c) / len(out_c))  # only parsed verdicts are cached
        r, _ = await timed(judge(), repeated, one_at_a_time=False)
        rep.append(len(repeated) / r)
        parsed.append(sum(o.status == "ok" for o in out_b) / len(out_b))
        print(f"sequential {seq[-1]:.2f}/s  batched {bat[-1]:.2f}/s  cached {cac[-1]:.0f}/s  "
              f"repeats x{args.group} {rep[-1]:.2f}/s  parsed {parsed[-1]:.0%}", flush=True)
    await policy.close()
    seq_m, bat_m = statistics.median(seq), statistics.median(bat)
    return {
        "bench": "judge_throughput",
        "policy": f"hf:{args.model}",
        "items": len(items),
        "max_tokens": args.max_tokens,
        "sequential_judgments_per_s": round(seq_m, 3),
        "batched_judgments_per_s": round(bat_m, 3),
        "cached_judgments_per_s": round(statistics.median(cac), 1),
        "batched_with_repeats_judgments_per_s": round(statistics.median(rep), 3),
        "batched_speedup": round(bat_m / seq_m, 2),
        "parsed_fraction": round(statistics.median(parsed), 3),
        "cache_hit_fraction": round(statistics.median(hits), 3),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default",
                    help="hf model spec (default: SmolLM2-135M-Instruct); 'tiny' builds the random test model")
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--group", type=int, default=4, help="copies of each response in the repeats workload")
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    print(json.dumps(asyncio.run(main(ap.parse_args()))))
