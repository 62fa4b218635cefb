"""Tools for every model: when a chat template drops ``tools``, the schemas are written into the
system prompt (docs/policy.md), said once in the log, and counted as prompt tokens (mask 0)."""

import json
import logging

import pytest

import agentgym
from agentgym.core import Task, TextEnv, tool
from agentgym.policy.chat import ChatRenderer
from agentgym.policy.templates import TOOLS_HEADER, with_tools_in_system_prompt

#: ChatML that never looks at ``tools`` (as SmolLM2's template).
NO_TOOLS_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
TOOLS = [{"type": "function", "function": {"name": "open_door", "description": "Open a door.",
                                           "parameters": {"type": "object", "properties": {"door": {"type": "integer"}},
                                                          "required": ["door"]}}}]


class DoorEnv(TextEnv):
    """Two tools; the right door opens."""

    blocking = False

    def generate_task(self, index: int) -> Task:
        return Task(id=f"d{index}", inputs={"house": index}, reference={"door": index % 3})

    def setup(self, task: Task) -> str:
        return "Open the right door (0, 1 or 2)."

    @tool
    def open_door(self, door: int) -> str:
        """Open a door.

        Args:
            door: which door, 0 to 2.
        """
        if door == self.task.reference["door"]:
            self.finish(1.0, True)
            return "It opens."
        return "Locked."

    @tool
    async def knock(self, door: int) -> str:
        """Knock on a door and listen.

        Args:
            door: which door, 0 to 2.
        """
        return "hollow" if door == self.task.reference["door"] else "solid"


def test_with_tools_in_system_prompt_extends_or_adds_the_system_message():
    added = with_tools_in_system_prompt([{"role": "user", "content": "hi"}], TOOLS)
    assert added[0]["role"] == "system" and added[0]["content"].startswith(TOOLS_HEADER)
    assert json.dumps(TOOLS[0]) in added[0]["content"] and "open_door" not in added[1]["content"]
    kept = with_tools_in_system_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}],
                                       TOOLS)
    assert kept[0]["content"].startswith("Be brief.\n\n# Tools") and len(kept) == 2


def test_a_template_that_shows_tools_is_left_alone(tiny_model):
    from transformers import AutoTokenizer

    renderer = ChatRenderer(AutoTokenizer.from_pretrained(str(tiny_model)))
    assert not renderer.template_drops_tools
    text = renderer.render_text([{"role": "user", "content": "hi"}], TOOLS, True)
    assert "open_door" in text and TOOLS_HEADER not in text


def _tiny_without_tools(folder):
    from transformers import AutoTokenizer

    from agentgym.policy.tiny import make_tiny_model

    path = make_tiny_model(folder)
    tok = AutoTokenizer.from_pretrained(str(path))
    tok.chat_template = NO_TOOLS_TEMPLATE
    tok.save_pretrained(str(path))
    return path


def test_eval_with_a_template_that_ignores_tools_shows_the_schemas(tmp_path, caplog):
    """A plugin-style env with tools, evaluated with a tiny model whose template ignores ``tools``."""
    from agentgym.eval import evaluate

    folder = _tiny_without_tools(tmp_path / "tiny")
    if "tools-door/v0" not in agentgym.registry():
        agentgym.register("tools-door/v0", DoorEnv)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nsampling: {max_tokens: 4}\nenvs:\n  - id: tools-door/v0\n    num_tasks: 2\n"
                     "    max_turns: 2\n")
    with caplog.at_level(logging.INFO, logger="agentgym"):
        result = evaluate(str(suite), f"hf:{folder}", progress=False)
    told = [r for r in caplog.records if "ignores `tools`" in r.getMessage()]
    assert len(told) <= 1  # once per model and process (an earlier test in this process may have said it)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    for traj in result.trajectories:
        assert traj.status != "failed", traj.error
        prompt_end = traj.loss_mask.index(1)
        prompt = tok.decode(traj.token_ids[:prompt_end])
        assert prompt.startswith("<|im_start|>system\n# Tools") and '"name": "open_door"' in prompt
        assert '"name": "knock"' in prompt and "TOOL[ARGUMENT]" in prompt


@pytest.mark.model
def test_smollm2_template_drops_tools_and_gets_them_in_the_system_prompt():
    from transformers import AutoTokenizer

    from agentgym.policy.default_model import default_model_path

    renderer = ChatRenderer(AutoTokenizer.from_pretrained(str(default_model_path())))
    assert renderer.template_drops_tools
    ids = renderer.initial([{"role": "system", "content": "Open doors."}, {"role": "user", "content": "go"}], TOOLS)
    text = renderer.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nOpen doors.\n\n# Tools") and '"name": "open_door"' in text
    # the prefix property still holds: an observation appends to the same ids
    messages = [{"role": "system", "content": "Open doors."}, {"role": "user", "content": "go"},
                {"role": "assistant", "content": "open_door[1]"}]
    sampled = renderer.encode("open_door[1]<|im_end|>")
    added = renderer.append_observation(messages, [{"role": "user", "content": "Locked."}], TOOLS, sampled)
    whole = renderer.initial([*messages, {"role": "user", "content": "Locked."}], TOOLS)
    assert ids + sampled + added == whole
