import json

import pytest

from agentgym.cli import main
from agentgym.core.task import Task, save_tasks
from agentgym.rewards.generation import fallback_rubric, generate_rubrics, parse_criteria
from tests.rewards.helpers import FakePolicy

TASK = Task(id="t1", inputs={"question": "What is 6 x 7?"},
            reference={"answer": "42", "solution": "6 x 7 = 42 because six sevens are forty-two."})

GOOD = json.dumps([
    {"text": "States the final answer 42", "type": "answer", "weight": 5},
    {"text": "Multiplies six by seven", "type": "step", "weight": 2},
    {"text": "Adds 6 and 7 to get 13", "type": "error", "weight": 3},
])


@pytest.mark.parametrize("text,n", [
    (GOOD, 3),
    ("Sure! Here is the rubric:\n```json\n" + GOOD + "\n```\nHope it helps.", 3),
    ('{"criteria": [{"criterion": "Gives 42", "points": 4},]}', 1),
    ("[{'text': 'Gives 42 as the answer', 'type': 'final'}]", 1),
    ("1. Gives 42 as the answer [5]\n2. Shows the multiplication (weight 2)\n- Error: adds instead of multiplying", 3),
    ("I cannot do that.", 0),
    ("", 0),
    ('[{"text": "ok"}, 17, null, {"weight": 3}]', 0),  # too short / not criteria
])
def test_parse_criteria(text, n):
    assert len(parse_criteria(text)) == n


def test_parsed_fields():
    items = parse_criteria("1. Gives 42 as the answer [5]\n- Error: adds instead of multiplying")
    assert items[0] == {"text": "Gives 42 as the answer", "type": "step", "weight": 5.0}
    assert items[1]["type"] == "error" and items[1]["text"] == "adds instead of multiplying"
    assert parse_criteria('[{"text": "Way too heavy", "weight": 99}]')[0]["weight"] == 5.0


async def test_generate_rubrics_success_and_fallbacks():
    other = Task(id="t2", inputs={"question": "Capital of France?"}, reference={"answer": "Paris"})
    policy = FakePolicy(lambda prompt: GOOD if "6 x 7" in prompt else "no idea, sorry")
    results = await generate_rubrics([TASK, other], policy)
    good, bad = results
    assert good.source == "generated" and good.error is None
    kinds = {c.id: (c.kind, c.weight) for c in good.rubric.criteria}
    assert kinds["answer_f1"] == ("verifiable", 1.0) and kinds["error3"] == ("judged", -3.0)
    assert "forty-two" in policy.prompts[0]  # the generator sees the hidden reference
    assert bad.source == "fallback" and "no usable criteria" in bad.error
    assert {c.id for c in bad.rubric.criteria} >= {"answer_contained", "answer_f1"}
    down = await generate_rubrics([TASK], FakePolicy(fail_first=1))
    assert down[0].source == "fallback" and "backend down" in down[0].error


def test_fallback_needs_a_reference():
    with pytest.raises(ValueError):
        fallback_rubric(Task(id="x"))


def test_cli_build(tmp_path, capsys):
    """The command with a real (scripted replay) generator backend: one good reply, one useless one."""
    tasks = tmp_path / "tasks.jsonl"
    save_tasks([TASK, Task(id="t2", inputs={"question": "Capital of France?"}, reference={"answer": "Paris"})], tasks)
    replies = tmp_path / "replies.jsonl"
    replies.write_text(json.dumps(GOOD) + "\n" + json.dumps("I would rather not.") + "\n")
    out = tmp_path / "rubrics.jsonl"
    spec = f"scripted:replay:{replies}"
    assert main(["rubrics", "build", str(tasks), "--generator", spec, "--out", str(out), "--batch-size", "1"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["source"] for r in rows] == ["generated", "fallback"] and "error" in rows[1]
    captured = capsys.readouterr()
    assert "1 generated, 1 fallback" in captured.out and "t2: generation failed" in captured.err
    assert main(["rubrics", "validate", str(out)]) == 0
    bare = tmp_path / "bare.jsonl"
    save_tasks([Task(id="b", inputs={"question": "?"})], bare)
    assert main(["rubrics", "build", str(bare), "--generator", spec, "--out", str(out)]) == 2
    assert "no reference" in capsys.readouterr().err
    assert main(["rubrics", "build", str(tmp_path / "nope.jsonl"), "--generator", "x", "--out", str(out)]) == 2
