"""Judging over a real HTTP hop: `agentgym serve-policy smollm2-135m` + the openai backend.

A 135M model is a weak judge: many of its replies do not parse. The test checks that every
judgment is recorded (parsed, or flagged unparseable with the raw reply kept), that nothing
unparsed becomes a score, and that the stats add up.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from agentgym.policy import SamplingParams, load_policy
from agentgym.rewards import Judge, JudgeItem, Rubric, ScoringContext, score_responses

pytestmark = [pytest.mark.model, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "agentgym", "serve-policy", "smollm2-135m", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"serve-policy exited: {proc.stderr.read()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("serve-policy did not answer /health within 120 s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_judging_through_serve_policy(server_url):
    # generous HTTP and judge timeouts, no client retries: a busy CPU must not make the client re-send
    # requests the server is still working on
    policy = load_policy(f"openai:{server_url}", retries=0, timeout=900)
    # short verdicts: "Rationale: ... Score: N" fits in 32 tokens, and a loaded CPU stays within the timeout
    judge = Judge(policy, params=SamplingParams(temperature=0.0, max_tokens=24), timeout_s=900, retries=0,
                  batch_size=4)
    items = [
        JudgeItem("States that the capital of France is Paris", "The capital of France is Paris."),
        JudgeItem("Explains that shorter wavelengths scatter more", "Because of Rayleigh scattering.", scale=2,
                  question="Why is the sky blue?"),
    ]
    try:
        out = await judge.judge(items)
        assert len(out) == 2
        for j in out:
            assert j.status in ("ok", "unparseable"), j
            assert j.raw  # the model's reply is kept either way
            if j.status == "ok":
                assert 0.0 <= j.score <= 1.0
            else:
                assert j.score is None
        stats = judge.stats.to_dict()
        assert stats["ok"] + stats["unparseable"] == 2 and stats["completion_tokens"] > 0
        # a repeat costs nothing for parsed verdicts; unparsed ones are asked again
        before = judge.stats.generated
        again = await judge.judge(items)
        n_ok = sum(j.status == "ok" for j in out)
        assert sum(j.cached for j in again) == n_ok and judge.stats.generated - before == 2 - n_ok

        # the same judge inside a rubric: failures surface as missing criteria, not zeros
        # (same criterion and response as items[0]: answered from the cache when it parsed)
        rubric = Rubric.coerce([{"id": "paris", "kind": "contains", "any_of": ["Paris"]},
                                {"id": "judged", "kind": "judged", "text": items[0].criterion}])
        [result] = await score_responses([(rubric, ScoringContext(items[0].response))], {"default": judge})
        judged = result.scores[1]
        assert judged.status in ("ok", "unparseable")
        assert (judged.score is None) == (judged.status == "unparseable") == (result.missing == ["judged"])
    finally:
        await judge.close()
