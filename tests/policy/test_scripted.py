"""Scripted players (random, oracle, replay): action sources that ask the env through the protocol."""

from __future__ import annotations

import pytest

from agentgym.core.protocol import AsyncEnv, StepResult
from agentgym.errors import UserError
from agentgym.policy import ActionSource, GenerationRequest, SamplingParams, load_policy
from agentgym.policy.scripted import OraclePolicy, RandomPolicy, ReplayPolicy


class Corridor(AsyncEnv):
    """A one-dimensional corridor written against the protocol only: the goal is to the right."""

    def __init__(self, oracle: bool = True, tool_oracle: bool = False):
        self.has_oracle, self.tool_oracle = oracle, tool_oracle

    async def areset(self, *, seed=None, options=None):
        return {"role": "user", "content": "walk"}, {"task_id": "corridor"}

    async def astep(self, message):
        return StepResult([{"role": "user", "content": "ok"}])

    async def avalid_actions(self):
        return ["left", "right"]

    async def aoracle_action(self):
        if not self.has_oracle:
            return None
        if self.tool_oracle:
            call = {"id": "c1", "type": "function", "function": {"name": "move", "arguments": '{"to": "right"}'}}
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        return "right"


def request(**params) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "go"}], params=SamplingParams(**params))


async def test_random_is_uniform_over_valid_actions_and_seeded():
    policy = load_policy("scripted:random", seed=3)
    assert isinstance(policy, ActionSource)
    texts = [(await policy.act(Corridor(), request())).text for _ in range(200)]
    assert set(texts) == {"left", "right"} and 60 < texts.count("left") < 140
    again = RandomPolicy(seed=3)
    assert [(await again.act(Corridor(), request())).text for _ in range(200)] == texts

    class Unlisted(Corridor):
        async def avalid_actions(self):
            return None

    a = await RandomPolicy().act(Unlisted(), request(seed=11))
    b = await RandomPolicy().act(Unlisted(), request(seed=11))
    assert a.text == b.text and a.text.isalpha() and a.token_ids == [] and a.logprobs == []


async def test_oracle_asks_the_env_and_passes_tool_calls_through():
    out = await load_policy("scripted:oracle").act(Corridor(), request())
    assert out.text == "right" and out.tool_calls is None
    native = await OraclePolicy().act(Corridor(tool_oracle=True), request())
    assert native.tool_calls[0]["id"] == "c1" and native.finish_reason == "tool_calls"
    with pytest.raises(UserError, match="has no oracle"):
        await OraclePolicy().act(Corridor(oracle=False), request())


async def test_replay_keeps_a_cursor_per_env_and_is_a_policy_too(tmp_path):
    path = tmp_path / "actions.jsonl"
    path.write_text('"up"\n{"text": "down"}\n{"action": "left"}\n')
    policy = load_policy(f"scripted:replay:{path}")
    one, two = Corridor(), Corridor()
    texts = [(await policy.act(env, request())).text for env in (one, one, two, one)]
    assert texts == ["up", "down", "up", "left"]
    done = await policy.act(one, request())
    assert done.finish_reason == "error" and "exhausted" in done.error
    judge = ReplayPolicy(path)  # as a judge or teacher: one shared cursor
    assert [[c.text for c in r] for r in await judge.generate([request(), request(n=2)])] == [["up"], ["down", "left"]]
    plain = tmp_path / "actions.txt"
    plain.write_text("look\nmove north\n")
    assert ReplayPolicy(plain).actions == ["look", "move north"]


@pytest.mark.parametrize("spec", ["", "nonsense", "hf:", "gpt:foo", "scripted:dance", "scripted:replay:",
                                  "openai:localhost:8000", "scripted:replay:/does/not/exist"])
def test_bad_specs_are_user_errors(spec):
    with pytest.raises(UserError):
        load_policy(spec)


def test_hf_spec_and_alias(tiny_model):
    policy = load_policy(f"hf:{tiny_model}")
    assert policy.name == f"hf:{tiny_model}" and policy.tokenizer is not None
    with pytest.raises(UserError, match="cannot load"):
        load_policy("hf:/no/such/model/folder")
