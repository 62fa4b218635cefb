"""Scripted policies (random, oracle, replay) and policy specs."""

from __future__ import annotations

import gymnasium as gym
import pytest

from agentgym.errors import UserError
from agentgym.policy import GenerationRequest, SamplingParams, load_policy
from agentgym.policy.scripted import OraclePolicy, RandomPolicy, ReplayPolicy


class Corridor(gym.Env):
    """A one-dimensional corridor: the goal is to the right."""

    action_space = gym.spaces.Text(16)
    observation_space = gym.spaces.Text(64)

    def __init__(self, oracle: bool = True):
        self.position, self.has_oracle = 0, oracle

    def valid_actions(self):
        return ["left", "right"]

    def oracle_action(self):
        if not self.has_oracle:
            raise NotImplementedError
        return "right"


def request(env, **params) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "go"}], env=env, params=SamplingParams(**params))


async def test_random_is_uniform_over_valid_actions_and_seeded():
    policy = load_policy("scripted:random", seed=3)
    (out,) = await policy.generate([request(Corridor(), n=200)])
    texts = [c.text for c in out]
    assert set(texts) == {"left", "right"} and 60 < texts.count("left") < 140
    assert out[0].token_ids == [] and out[0].logprobs == []
    again = await RandomPolicy(seed=3).generate([request(Corridor(), n=200)])
    assert [c.text for c in again[0]] == texts
    a = await RandomPolicy().generate([request(None, n=5, seed=11)])
    b = await RandomPolicy().generate([request(None, n=5, seed=11)])
    assert [c.text for c in a[0]] == [c.text for c in b[0]] and all(c.text.isalpha() for c in a[0])


async def test_oracle_reads_env_through_wrappers():
    env = gym.Wrapper(Corridor())  # gymnasium wrappers do not forward unknown attributes
    (out,) = await load_policy("scripted:oracle").generate([request(env)])
    assert out[0].text == "right"
    with pytest.raises(UserError, match="has no oracle"):
        await OraclePolicy().generate([request(Corridor(oracle=False))])


async def test_replay_keeps_a_cursor_per_env(tmp_path):
    path = tmp_path / "actions.jsonl"
    path.write_text('"up"\n{"text": "down"}\n{"action": "left"}\n')
    policy = load_policy(f"scripted:replay:{path}")
    one, two = Corridor(), Corridor()
    texts = [(await policy.generate([request(env)]))[0][0].text for env in (one, one, two, one)]
    assert texts == ["up", "down", "up", "left"]
    done = (await policy.generate([request(one)]))[0][0]
    assert done.finish_reason == "error" and "exhausted" in done.error
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
