"""Chat templates rendered in a remembering sandbox: the same text as apply_chat_template, or it steps aside."""

from __future__ import annotations

import random

import pytest
from jinja2.exceptions import SecurityError, TemplateError
from transformers import AutoTokenizer

from agentgym.policy import templates
from agentgym.policy.templates import TemplateRenderer
from tests.policy.test_chat import TOOLS, random_conversation
from tests.policy.test_tools_prompt import NO_TOOLS_TEMPLATE


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def test_renders_what_apply_chat_template_renders(tokenizer):
    renderer = TemplateRenderer(tokenizer)
    for seed in range(60):
        rng = random.Random(seed)
        first, assistants, observations = random_conversation(rng)
        messages = [*first, *(m for pair in zip(assistants, observations) for part in pair for m in part)]
        for m in messages:
            m["content"] = m["content"] or ""
        tools = TOOLS if seed % 2 else None
        for gp in (False, True):
            assert renderer.render(messages, tools, gp) == renderer.reference(messages, tools, gp)
    assert renderer._fast and renderer._renders == 120  # every render took the fast path (16 were checked)


def test_a_template_rendered_differently_is_left_to_apply_chat_template(tokenizer, monkeypatch):
    compile_ = templates._compile
    monkeypatch.setattr(templates, "_compile", lambda source: compile_(source.replace("<|im_start|>", "<|x|>")))
    renderer = TemplateRenderer(tokenizer)
    messages = [{"role": "user", "content": "hi"}]
    assert renderer.render(messages, None, True) == renderer.reference(messages, None, True)
    assert not renderer._fast


@pytest.mark.parametrize("source", ["{{ messages.__class__.__mro__ }}", "{{ messages.append(1) }}",
                                    "{% for m in messages %}{{ m.update({'role': 'x'}) }}{% endfor %}"])
def test_the_sandbox_still_refuses_what_it_refuses(tokenizer, source):
    """Remembering verdicts changes no verdict: unsafe attributes stay unsafe, on every render."""
    compiled = templates._compile(source)
    for _ in range(3):
        with pytest.raises((SecurityError, TemplateError)):
            compiled.render(messages=[{"role": "user", "content": "hi"}])
    renderer = TemplateRenderer(tokenizer, chat_template=source)
    with pytest.raises((SecurityError, TemplateError)):
        renderer.render([{"role": "user", "content": "hi"}], None, False)
    assert renderer._fast  # the template's own error, which apply_chat_template raises too


def test_tools_dropped_by_the_template_still_render_identically(tokenizer):
    renderer = TemplateRenderer(tokenizer, chat_template=NO_TOOLS_TEMPLATE)
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert renderer.render(messages, TOOLS, True) == renderer.reference(messages, TOOLS, True)
