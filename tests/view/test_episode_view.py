"""One trajectory as the page shows it: turns, tool calls, the hidden reference, the loss mask."""

from __future__ import annotations

import pytest

from agentgym.view.episode import episode_view, pretty_json
from agentgym.view.tokens import model_path, token_view
from tests.view.conftest import SECRET, make_trajectory


def test_turns_pair_replies_with_their_observations():
    view = episode_view(make_trajectory(4, guided=True, step=2))
    assert [m.role for m in view.opening] == ["system", "user"]
    assert "go right 4 times" in view.opening[1].content
    assert view.guided and view.guidance["kind"] == "hint"
    assert len(view.turns) == 2
    first, last = view.turns
    assert first.reply.content == "up" and first.observations[0].content.startswith("You are at cell 4")
    assert first.progress == 0.25 and first.tokens == 3 and first.generation_s == 0.5
    assert last.observations[0].content == "final observation of episode 4: stuck"
    assert last.invalid and last.finish_reason == "length" and last.reward == 0.0
    assert view.sampled_tokens == 5 and view.total_tokens == 19


def test_tool_calls_and_one_tool_message_per_call():
    view = episode_view(make_trajectory(2, tools=True))
    turn = view.turns[0]
    assert turn.reply.content == ""
    assert [(c.id, c.name) for c in turn.reply.tool_calls] == [("call_2_a", "move"), ("call_2_b", "look")]
    assert turn.reply.tool_calls[0].arguments == '{\n "direction": "up"\n}'
    assert [(o.role, o.tool_call_id, o.content) for o in turn.observations] == [
        ("tool", "call_2_a", "moved up"),
        ("tool", "call_2_b", "you see a wall 2"),
    ]


def test_the_reference_is_hidden_unless_asked_for():
    data = make_trajectory(1)
    hidden = episode_view(data)
    assert hidden.has_reference and hidden.reference is None and "reference" not in hidden.task
    assert SECRET not in repr(hidden)
    shown = episode_view(data, reveal=True)
    assert shown.reference == {"answer": SECRET}
    assert data["task"]["reference"] == {"answer": SECRET}  # the record itself is untouched


def test_missing_and_unknown_keys():
    view = episode_view(
        {
            "id": "x",
            "from_the_future": {"a": 1},
            "turns": [{"action": "go", "observation": {"role": "user", "content": "ok"}}],
        }
    )
    assert view.env_id == "" and view.reward is None and view.status == "completed" and view.task is None
    assert view.turns[0].reply.content == "go" and view.turns[0].observations[0].content == "ok"
    content_parts = episode_view(
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image_url"}]}
            ]
        }
    )
    assert content_parts.opening[0].content == "hello\n[image_url]"
    assert episode_view({"turns": "nonsense", "messages": [1, None], "metadata": []}).turns == []


def test_pretty_json():
    assert pretty_json('{"a": 1}') == '{\n "a": 1\n}'
    assert pretty_json("not json") == "not json"
    assert pretty_json({"b": [1]}) == '{\n "b": [\n  1\n ]\n}'
    assert pretty_json(None) == ""


class ByteTokenizer:
    """A stand-in at a pure unit boundary: each id is one character (the browser test decodes a real one)."""

    def convert_ids_to_tokens(self, ids):
        return [chr(i) for i in ids]

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)


def test_token_view_lines_up_masks_logprobs_and_turns():
    data = make_trajectory(0)
    view = token_view(data, ByteTokenizer(), "decoded")
    assert view.decoded and len(view.tokens) == 19 and view.sampled == 5
    sampled = [t for t in view.tokens if t.mask]
    assert [t.logprob for t in sampled] == [-0.5, -0.25, -1.0, -0.125, -2.0]
    assert [t.turn for t in sampled] == [1, 1, 1, 2, 2]
    assert all(t.logprob is None for t in view.tokens if not t.mask)
    assert view.tokens[10].text == chr(7)
    ids_only = token_view(data)
    assert not ids_only.decoded and ids_only.tokens[0].text == "[100]"
    assert "text-only policy" in token_view({"token_ids": []}).note


def test_model_paths_of_policy_specs(tmp_path):
    assert model_path(f"hf:{tmp_path}") == str(tmp_path)
    assert model_path(f"vllm:{tmp_path}") == str(tmp_path)
    assert model_path("scripted:oracle") is None and model_path("openai:http://x/v1#m") is None
    assert model_path(None) is None


@pytest.mark.slow
def test_tokens_decode_with_a_real_tokenizer(tiny_folder):
    from agentgym.view.tokens import Tokenizers

    tokenizer, note = Tokenizers().get(f"hf:{tiny_folder}")
    assert tokenizer is not None, note
    ids = tokenizer.encode("<|im_start|>assistant\nmove up")
    view = token_view({"token_ids": ids, "loss_mask": [0] * 3 + [1] * (len(ids) - 3)}, tokenizer, note)
    assert "".join(t.text for t in view.tokens) == "<|im_start|>assistant\nmove up"
    missing, why = Tokenizers().get(f"hf:{tiny_folder}/nope")
    assert missing is None and "no local tokenizer" in why
