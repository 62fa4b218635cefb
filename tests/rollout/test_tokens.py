"""Token bookkeeping: the trajectory's tokens are exactly what the policy saw and sampled."""

from __future__ import annotations

import random
from typing import Sequence

from agentgym import Task
from agentgym.policy.base import Completion, GenerationRequest
from agentgym.rollout import EpisodeSpec, RolloutConfig, RolloutEngine

from .conftest import count_move

END = 1


class CharRenderer:
    """ChatML over characters (id = code point); END closes a message."""

    def _msg(self, m) -> list[int]:
        return [ord(c) for c in f"<{m['role']}>{m['content']}"] + [END] + [ord("\n")]

    def initial(self, messages, tools=None):
        return [i for m in messages for i in self._msg(m)] + [ord(c) for c in "<assistant>"]

    def append_observation(self, messages, new_messages, tools=None, sampled_ids=None):
        close = [] if list(sampled_ids[-1:]) == [END] else [END]
        return close + [ord("\n")] + [i for m in new_messages for i in self._msg(m)] + [ord(c) for c in "<assistant>"]


class RecordingTokenPolicy:
    """Samples the env's oracle action as characters; remembers every request it saw."""

    name = "char-oracle"

    def __init__(self, stop_token: bool = True):
        self.renderer = CharRenderer()
        self.requests: list[GenerationRequest] = []
        self.completions: list[Completion] = []
        self.rng = random.Random(0)
        self.stop_token = stop_token

    async def generate(self, requests: Sequence[GenerationRequest]):
        out = []
        for r in requests:
            assert r.prompt_ids is not None and r.messages is None
            text = count_move("".join(chr(i) for i in r.prompt_ids if i > END))
            ids = [ord(c) for c in text] + ([END] if self.stop_token else [])
            ids = ids[: r.params.max_tokens]
            comp = Completion(text=text, token_ids=ids, logprobs=[-self.rng.random() for _ in ids])
            self.requests.append(r)
            self.completions.append(comp)
            out.append([comp])
        return out

    async def close(self):
        pass


def sampled(traj):
    return [t for t, m in zip(traj.token_ids, traj.loss_mask) if m == 1]


async def test_tokens_reproduce_last_prompt_and_mask_marks_sampled_tokens():
    for stop in (True, False):
        policy = RecordingTokenPolicy(stop_token=stop)
        (traj,) = await RolloutEngine(policy).run([EpisodeSpec("testcount/v0", task=Task(id="x", inputs={"target": 27}))])
        assert traj.success and traj.num_turns == 3 and traj.metadata["token_level"]
        last_prompt, last = policy.requests[-1].prompt_ids, policy.completions[-1]
        assert traj.token_ids == last_prompt + last.token_ids
        assert sampled(traj) == [i for c in policy.completions for i in c.token_ids]
        assert [lp for lp, m in zip(traj.logprobs, traj.loss_mask) if m] == [x for c in policy.completions for x in c.logprobs]
        assert all(lp == 0.0 for lp, m in zip(traj.logprobs, traj.loss_mask) if not m)
        for turn, comp, req in zip(traj.turns, policy.completions, policy.requests):
            assert traj.token_ids[turn.start : turn.end] == comp.token_ids and turn.start == len(req.prompt_ids)
            assert traj.token_ids[: turn.start] == req.prompt_ids  # each prompt is a prefix of the next


async def test_context_overflow_truncates_episode():
    policy = RecordingTokenPolicy()
    engine = RolloutEngine(policy, RolloutConfig(max_context_tokens=150))
    (traj,) = await engine.run([EpisodeSpec("testcount/v0", task=Task(id="x", inputs={"target": 47}))])
    assert traj.status == "truncated" and "context overflow" in traj.metadata["truncation"] and not traj.success
    assert len(traj.token_ids) <= 150
    assert traj.token_ids == policy.requests[-1].prompt_ids + policy.completions[-1].token_ids
    assert traj.messages[-1]["role"] == "tool"  # the transcript keeps the observation that did not fit


async def test_prompt_longer_than_context_is_truncated_before_generating():
    policy = RecordingTokenPolicy()
    (traj,) = await RolloutEngine(policy, RolloutConfig(max_context_tokens=20)).run(
        [EpisodeSpec("testcount/v0", task=Task(id="x", inputs={"target": 3}))]
    )
    assert traj.status == "truncated" and traj.num_turns == 0 and not policy.requests, traj.error


class TokenizerOraclePolicy(RecordingTokenPolicy):
    """The oracle's action encoded by a real tokenizer; the ChatRenderer is built from it."""

    name = "tok-oracle"

    def __init__(self, tokenizer):
        super().__init__()
        del self.renderer  # the engine builds a ChatRenderer from .tokenizer
        self.tokenizer = tokenizer

    async def generate(self, requests):
        out = []
        for r in requests:
            text = count_move(self.tokenizer.decode(r.prompt_ids))
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
            comp = Completion(text=text, token_ids=ids, logprobs=[-self.rng.random() for _ in ids])
            self.requests.append(r)
            self.completions.append(comp)
            out.append([comp])
        return out


async def test_real_chat_template_tokens_match_a_fresh_render():
    import pytest

    pytest.importorskip("transformers")
    from agentgym.policy.chat import ChatRenderer
    from agentgym.policy.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    policy = TokenizerOraclePolicy(tokenizer)
    (traj,) = await RolloutEngine(policy).run([EpisodeSpec("testcount/v0", task=Task(id="x", inputs={"target": 23}))])
    assert traj.success and traj.metadata["token_level"] and not traj.metadata.get("prefix_broken")
    assert traj.token_ids == policy.requests[-1].prompt_ids + policy.completions[-1].token_ids
    assert sampled(traj) == [i for c in policy.completions for i in c.token_ids]
    # what the policy saw at its last turn is exactly the template's rendering of the transcript
    seen = traj.messages[:-1]  # the final observation came after the last sample
    assert policy.requests[-1].prompt_ids == ChatRenderer(tokenizer).initial(seen[:-1], policy.requests[-1].tools)


class Recorder:
    """Wraps a real policy and remembers each request and completion (token-level: exposes its renderer)."""

    def __init__(self, inner):
        self.inner, self.name, self.renderer = inner, inner.name, inner.renderer
        self.calls: list[tuple[GenerationRequest, Completion]] = []

    async def generate(self, requests):
        results = await self.inner.generate(requests)
        self.calls += [(r, res[0]) for r, res in zip(requests, results)]
        return results

    async def close(self):
        await self.inner.close()


async def test_tiny_hf_model_tokens_are_exactly_what_it_saw_and_sampled(tmp_path):
    import pytest

    torch = pytest.importorskip("torch")
    from agentgym.policy.hf import HFPolicy
    from agentgym.policy.tiny import make_tiny_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 0.4 M-parameter model gains nothing from more; busy CI machines lose a lot
    try:
        await _tiny_run(tmp_path, HFPolicy, make_tiny_model)
    finally:
        torch.set_num_threads(threads)


async def _tiny_run(tmp_path, HFPolicy, make_tiny_model):
    policy = Recorder(HFPolicy(str(make_tiny_model(tmp_path / "tiny"))))
    engine = RolloutEngine(policy, RolloutConfig(max_tokens=8, max_batch=2))
    specs = [EpisodeSpec("testcount/v0", task=Task(id=f"x{i}", inputs={"target": 30 + i}), env_kwargs={"max_turns": 3}) for i in range(3)]
    trajs = await engine.run(specs)
    for traj in trajs:
        assert traj.status in ("completed", "truncated") and traj.metadata["token_level"], traj.error
        mine = [(r, c) for r, c in policy.calls if r.prompt_ids[: len(traj.token_ids)] == traj.token_ids[: len(r.prompt_ids)]]
        mine = [(r, c) for r, c in mine if traj.token_ids[len(r.prompt_ids) : len(r.prompt_ids) + len(c.token_ids)] == c.token_ids]
        assert len(mine) == traj.num_turns
        last_req, last = mine[-1]
        assert traj.token_ids == last_req.prompt_ids + last.token_ids  # what it saw at its last turn, + its sample
        assert sampled(traj) == [i for _, c in mine for i in c.token_ids]  # mask 1 = exactly the sampled ids
        assert [lp for lp, m in zip(traj.logprobs, traj.loss_mask) if m] == [x for _, c in mine for x in c.logprobs]
        for turn, (req, comp) in zip(traj.turns, mine):
            assert (turn.start, turn.end) == (len(req.prompt_ids), len(req.prompt_ids) + len(comp.token_ids))
            assert turn.action == comp.text
