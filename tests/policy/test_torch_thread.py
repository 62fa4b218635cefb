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


_ONE_TEAM = """
import asyncio, os, sys, threading
import numpy as np
import torch

torch.set_num_threads(2)  # a worker per OpenMP team, even on a one-core machine
from agentgym.policy.base import GenerationRequest, SamplingParams
from agentgym.policy.hf import HFPolicy
from agentgym.torch_thread import torch_executor
from agentgym.train.advantages import Sample
from agentgym.train.config import AlgorithmConfig, TrainerConfig
from agentgym.train.learner import Learner

def native_threads():  # threads Python did not start: OpenMP workers among them
    return set(map(int, os.listdir("/proc/self/task"))) - {t.native_id for t in threading.enumerate()}

torch_executor().submit(lambda: torch.randn(1 << 21).exp_().sum()).result()  # the torch thread's team
before = native_threads()
policy = HFPolicy(sys.argv[1])
request = GenerationRequest(messages=[{"role": "user", "content": "hi"}], params=SamplingParams(max_tokens=8, n=8))
completions = asyncio.run(policy.generate([request]))[0] + policy.generate_sync([request])[0]
prompt = policy.renderer.initial(request.messages)
samples = [Sample(prompt + c.token_ids, [0] * len(prompt) + [1] * len(c.token_ids),
                  [0.0] * len(prompt) + c.logprobs, np.full(len(prompt) + len(c.token_ids), 0.5, np.float32))
           for c in completions]
Learner(policy.model, TrainerConfig(lr=1e-3), AlgorithmConfig()).step(samples)
print(len(native_threads() - before))
"""


def test_loading_generating_and_a_learner_step_from_the_main_thread_add_no_openmp_team(tiny_folder):
    """A second thread running parallel torch work gets a second OpenMP team, and with more OpenMP threads
    than cores libgomp sleeps and wakes its workers around every operation (the learner step ran 1.5x
    slower). In a fresh process, everything the main thread asks of the hf policy and the learner runs
    on the torch thread's team: no new native thread appears."""
    import os
    import subprocess
    import sys

    import pytest

    if not os.path.isdir("/proc/self/task"):
        pytest.skip("needs Linux's /proc to count threads")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", _ONE_TEAM, str(tiny_folder)], capture_output=True, text=True, check=False,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "0"
