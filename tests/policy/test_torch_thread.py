"""All torch work goes to one long-lived thread, and a job already there runs inline."""

from __future__ import annotations

import asyncio
import threading

from agentgym.policy.base import GenerationRequest, SamplingParams
from agentgym.torch_thread import on_torch_thread, run_on_torch_thread


async def test_jobs_share_one_thread_and_nested_calls_run_inline():
    names = set()
    for _ in range(5):
        names.add(await run_on_torch_thread(lambda: threading.current_thread().name))
    assert len(names) == 1 and next(iter(names)).startswith("agentgym-torch")
    assert not on_torch_thread()

    def nested() -> bool:  # an event loop on the torch thread must not queue behind itself
        return asyncio.run(run_on_torch_thread(on_torch_thread))

    assert await run_on_torch_thread(nested) is True


async def test_hf_generation_runs_on_the_torch_thread(tiny_folder):
    from agentgym.policy.hf import HFPolicy

    policy = HFPolicy(str(tiny_folder))
    seen = []
    original = policy.generate_rows
    policy.generate_rows = lambda rows: (seen.append(threading.current_thread().name), original(rows))[1]
    request = GenerationRequest(messages=[{"role": "user", "content": "hi"}], params=SamplingParams(max_tokens=3))
    await asyncio.gather(*(policy.generate([request]) for _ in range(3)))
    assert seen and all(name.startswith("agentgym-torch") for name in seen)
