"""The incremental chat renderer: the prefix property on random multi-turn conversations with tools."""

from __future__ import annotations

import random

import pytest
from transformers import AutoTokenizer

from agentgym.policy.chat import WINDOW_USER, ChatRenderer, PrefixBroken
from agentgym.policy.tiny import CHAT_TEMPLATE

WORDS = "move up down left right wall goal blocked you are at row column search result answer the a is".split()
TOOLS = [
    {"type": "function", "function": {"name": "move", "description": "Move one cell.",
                                      "parameters": {"type": "object", "properties": {"direction": {"type": "string"}},
                                                     "required": ["direction"]}}},
    {"type": "function", "function": {"name": "search", "description": "Search the corpus.",
                                      "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}},
]


def sentence(rng: random.Random) -> str:
    text = " ".join(rng.choices(WORDS, k=rng.randint(1, 12)))
    return text.capitalize() + rng.choice([".", "?", "!", "\n(0, 1)", ": 3"])


def random_conversation(rng: random.Random) -> tuple[list[dict], list[list[dict]], list[list[dict]]]:
    """First messages, then for each turn the assistant message and the observation messages."""
    first = ([{"role": "system", "content": sentence(rng)}] if rng.random() < 0.7 else [])
    first.append({"role": "user", "content": sentence(rng)})
    assistants, observations = [], []
    for _ in range(rng.randint(1, 5)):
        message = {"role": "assistant", "content": sentence(rng)}
        if rng.random() < 0.4:
            message["tool_calls"] = [{"type": "function", "function": {
                "name": "move", "arguments": {"direction": rng.choice(["up", "down"])}}}]
            if rng.random() < 0.5:
                message["content"] = None
            obs = [{"role": "tool", "content": sentence(rng)}]
        else:
            obs = [{"role": "user", "content": sentence(rng)} for _ in range(rng.randint(1, 2))]
        assistants.append([message])
        observations.append(obs)
    return first, assistants, observations


def check_prefix_property(tokenizer, seed: int, renderer: ChatRenderer | None = None) -> None:
    rng = random.Random(seed)
    renderer = renderer or ChatRenderer(tokenizer)
    first, assistants, observations = random_conversation(rng)
    tools = TOOLS if rng.random() < 0.7 else None
    conv = renderer.conversation(first, tools, on_broken="raise")
    messages = list(first)
    assert conv.ids == renderer.render(messages, tools, add_generation_prompt=True)
    sampled_total = 0
    suffix = renderer.turn_suffix
    for (assistant,), obs in zip(assistants, observations):
        prompt = renderer.render(messages, tools, add_generation_prompt=True)
        full = renderer.render([*messages, assistant], tools)
        assert full[: len(prompt)] == prompt
        turn = full[len(prompt):]
        assert turn[len(turn) - len(suffix):] == suffix
        content = turn[: len(turn) - len(suffix)]
        # the policy either stopped on the end-of-turn token or hit max_tokens before it
        sampled = content + suffix[:1] if rng.random() < 0.7 else content
        conv.add_assistant(sampled, message=assistant)
        sampled_total += len(sampled)
        conv.add_observation(obs)
        messages += [assistant, *obs]
        assert conv.ids == renderer.render(messages, tools, add_generation_prompt=True)
    assert sum(conv.mask) == sampled_total and not conv.prefix_broken and len(conv.mask) == len(conv.ids)


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.mark.parametrize("seed", range(50))
def test_prefix_property_tiny_template(tiny_tokenizer, seed):
    check_prefix_property(tiny_tokenizer, seed)


@pytest.mark.model
def test_prefix_property_default_model_template(default_model):
    tokenizer = AutoTokenizer.from_pretrained(default_model)
    for seed in range(50):
        check_prefix_property(tokenizer, seed)


def test_fast_path_matches_full_render_after_validation(tiny_tokenizer):
    """One renderer for 50 conversations: past its validation calls only a window is rendered and only
    new text is tokenized, and every step still equals a full render (check_prefix_property)."""
    renderer = ChatRenderer(tiny_tokenizer)
    for seed in range(50):
        check_prefix_property(tiny_tokenizer, seed, renderer)
    assert renderer._fast_path and renderer._windowed
    assert min(renderer._windows_checked) >= ChatRenderer.VALIDATE_CALLS


@pytest.mark.model
def test_fast_path_default_model_template(default_model):
    tokenizer = AutoTokenizer.from_pretrained(default_model)
    renderer = ChatRenderer(tokenizer)
    for seed in range(50):
        check_prefix_property(tokenizer, seed, renderer)
    assert renderer._fast_path and renderer._windowed
    assert min(renderer._windows_checked) >= ChatRenderer.VALIDATE_CALLS


def test_fast_path_turns_off_when_validation_disagrees(tiny_tokenizer):
    """A text boundary wrongly taken for a special token is caught by validation, not trusted."""
    renderer = ChatRenderer(tiny_tokenizer, chat_template=(
        "{% for m in messages %}{% if m['role'] == 'assistant' %}>{% endif %}{{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}>{% endif %}"))
    renderer.special_tokens = (" ",)  # pretend a space splits like a special token: "up " + "ok" merge
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "content": "up"}]
    assert renderer._append_by_text(messages, [{"role": "user", "content": "ok"}], None) is not None
    with pytest.raises(PrefixBroken):
        renderer.append_observation(messages, [{"role": "user", "content": "ok"}])
    assert not renderer._fast_path


def test_close_turn(tiny_tokenizer):
    renderer = ChatRenderer(tiny_tokenizer)
    end, newline = renderer.turn_suffix
    assert tiny_tokenizer.decode([end]) == "<|im_end|>"
    words = renderer.encode("move up")
    assert renderer.close_turn(words + [end]) == [newline]
    assert renderer.close_turn(words) == [end, newline]
    assert renderer.close_turn([]) == [end, newline]


DROPS_REASONING = CHAT_TEMPLATE.replace(
    "(message['content'] or '')",
    "((message['content'] or '').split('</think>')[-1] if message['role'] == 'assistant' and not loop.last"
    " else (message['content'] or ''))",
)


def test_template_that_drops_past_reasoning_is_detected(tiny_tokenizer):
    renderer = ChatRenderer(tiny_tokenizer, chat_template=DROPS_REASONING)
    first = [{"role": "user", "content": "Where is the goal?"}]
    reply = "<think>the goal is up</think>move up"
    conv = renderer.conversation(first, on_broken="raise")
    conv.add_assistant(renderer.encode(reply) + renderer.turn_suffix[:1], text=reply)
    with pytest.raises(PrefixBroken, match="not prefix-stable"):
        conv.add_observation([{"role": "user", "content": "You moved up."}])

    conv = renderer.conversation(first)  # default: re-render from scratch and mark it
    sampled = renderer.encode(reply) + renderer.turn_suffix[:1]
    conv.add_assistant(sampled, text=reply)
    conv.add_observation([{"role": "user", "content": "You moved up."}])
    assert conv.prefix_broken and len(conv.segments) == 1
    assert sum(conv.segments[0].mask) == len(sampled)
    messages = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "You moved up."}]
    assert conv.ids == renderer.render(messages, add_generation_prompt=True)
    assert sum(conv.mask) == 0 and len(conv.all_segments()) == 2


def test_encode_matches_the_tokenizer_call(tiny_tokenizer):
    """The backend shortcut gives the ids ``tokenizer(text)`` gives, special tokens and odd text included."""
    renderer = ChatRenderer(tiny_tokenizer)
    rng = random.Random(0)
    pieces = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "\n", " ", "  ", "é", "日本", "move", "{\"a\": 1}", "\t", "!!"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
        assert renderer.encode(text) == tiny_tokenizer(text, add_special_tokens=False)["input_ids"]


def test_encode_takes_the_slow_path_while_the_backend_truncates(tiny_tokenizer):
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer.name_or_path)
    tokenizer.backend_tokenizer.enable_truncation(max_length=2)
    text = "move up down left right"
    assert len(ChatRenderer(tokenizer).encode(text)) > 2
    assert ChatRenderer(tokenizer).encode(text) == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_window_is_system_a_stand_in_user_message_and_the_reply():
    system, user = {"role": "system", "content": "s"}, {"role": "user", "content": "u"}
    reply, tool = {"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"}
    assert ChatRenderer.window([system, user, reply]) == [system, WINDOW_USER, reply]
    history = [system, user, reply, tool, reply, {"role": "user", "content": "u2"}, reply]
    assert ChatRenderer.window(history) == [system, WINDOW_USER, reply]
    assert ChatRenderer.window([user, reply, tool, reply]) == [WINDOW_USER, reply]
    assert ChatRenderer.window([system, user]) is None  # no reply yet


NUMBERS_TURNS = CHAT_TEMPLATE.replace(
    "'<|im_start|>' + message['role'] + '\\n'", "'<|im_start|>' + message['role'] + ' ' + loop.index|string + '\\n'"
).replace("'<|im_start|>assistant\\n'", "'<|im_start|>assistant ' + (messages|length + 1)|string + '\\n'")


def test_window_turns_off_for_a_template_that_reads_the_whole_history(tiny_tokenizer):
    """A template that numbers messages renders new ones differently after a window: validation
    notices on the first call that takes the window, and every id stays what a full render gives."""
    renderer = ChatRenderer(tiny_tokenizer, chat_template=NUMBERS_TURNS)
    assert "<|im_start|>user 2" in renderer.render_text([{"role": "system", "content": "s"},
                                                        {"role": "user", "content": "u"}])
    for seed in range(10):
        check_prefix_property(tiny_tokenizer, seed, renderer)
    assert not renderer._windowed and renderer._fast_path


def test_windows_are_spot_checked_after_validation(tiny_tokenizer, monkeypatch):
    renderer = ChatRenderer(tiny_tokenizer)
    checks = []
    slow = renderer._append_by_tokens
    monkeypatch.setattr(renderer, "_append_by_tokens", lambda *a: checks.append(1) or slow(*a))
    for seed in range(120):
        check_prefix_property(tiny_tokenizer, seed, renderer)
    calls, validations = renderer._window_calls, 2 * ChatRenderer.VALIDATE_CALLS
    assert renderer._windowed and min(renderer._windows_checked) >= ChatRenderer.VALIDATE_CALLS
    assert calls > 4 * ChatRenderer.SPOT_CHECK_EVERY
    assert validations < len(checks) <= validations + calls // ChatRenderer.SPOT_CHECK_EVERY
    assert renderer._openings  # the window's opening was rendered once and kept


def test_first_prompts_reuse_the_system_message_ids(tiny_tokenizer):
    renderer = ChatRenderer(tiny_tokenizer)
    system = {"role": "system", "content": "Reach the goal. Reply with one move."}
    rng = random.Random(3)
    for i in range(30):
        tools = TOOLS if i % 3 else None
        messages = [system, {"role": "user", "content": sentence(rng)}]
        expected = renderer.encode(renderer.render_text(messages, tools, add_generation_prompt=True))
        assert renderer.initial(messages, tools) == expected
    assert renderer._head_reuse and renderer._heads_checked == ChatRenderer.VALIDATE_CALLS
    assert len(renderer._heads) == 2  # one per system message and tools
    no_system = [{"role": "user", "content": "hi"}]
    assert renderer.initial(no_system) == renderer.encode(renderer.render_text(no_system, None, True))


def test_a_wrong_system_message_split_is_caught_by_validation(tiny_tokenizer):
    renderer = ChatRenderer(tiny_tokenizer, chat_template=(
        "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}>{% endif %}"))
    renderer.special_tokens = (" ",)  # pretend a space splits like a special token: "up " + "down" merge
    messages = [{"role": "system", "content": "up"}, {"role": "user", "content": "down"}]
    text = renderer.render_text(messages, None, True)
    assert renderer.encode("up ") + renderer.encode(text[3:]) != renderer.encode(text)
    assert renderer.initial(messages) == renderer.encode(text)
    assert not renderer._head_reuse
