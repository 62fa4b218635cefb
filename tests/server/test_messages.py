"""The wire format's pure parts: parsing client messages and encoding answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agentgym.core.protocol import StepResult
from agentgym.core.task import Task
from agentgym.server import messages as msg
from agentgym.server.messages import ErrorCode, ProtocolError


def code_of(text: str | bytes, limit: int = 1 << 20) -> ErrorCode:
    with pytest.raises(ProtocolError) as err:
        msg.parse(text, limit)
    return err.value.code


def test_parse_accepts_openenv_and_agentgym_fields():
    kind, data = msg.parse('{"type": "reset", "data": {"seed": 3, "episode_id": "e"}}', 1 << 20)
    assert kind == "reset" and data.seed == 3 and data.env_id is None and data.kwargs == {}
    assert msg.parse('{"type": "reset"}', 1 << 20)[1].seed is None
    task = Task(id="t", inputs={"q": 1}, reference={"a": 2})
    _, data = msg.parse(json.dumps({"type": "reset", "data": {"env_id": "maze/v0", "task": task.model_dump()}}), 1 << 20)
    assert data.task == task
    _, step = msg.parse('{"type": "step", "data": {"action": "up"}}', 1 << 20)
    assert step.reply() == {"role": "assistant", "content": "up"}
    calls = [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    _, step = msg.parse(json.dumps({"type": "step", "data": {"message": {
        "role": "assistant", "content": None, "tool_calls": calls, "refusal": None}}}), 1 << 20)
    assert step.reply() == {"role": "assistant", "content": None, "tool_calls": calls}
    assert msg.parse('{"type": "state"}', 1 << 20)[1].include == []
    assert msg.parse('{"type": "close"}', 1 << 20) == ("close", None)


@pytest.mark.parametrize("text,code", [
    ("", ErrorCode.INVALID_JSON), ("{", ErrorCode.INVALID_JSON), ("[" * 100_000, ErrorCode.INVALID_JSON),
    ('"reset"', ErrorCode.VALIDATION_ERROR), ("null", ErrorCode.VALIDATION_ERROR),
    ('{"type": 3}', ErrorCode.UNKNOWN_TYPE), ('{"type": "Reset"}', ErrorCode.UNKNOWN_TYPE),
    ('{"type": "reset", "data": [1]}', ErrorCode.VALIDATION_ERROR),
    ('{"type": "reset", "extra": 1}', ErrorCode.VALIDATION_ERROR),
    ('{"type": "reset", "data": {"task": {"id": "a"}, "task_id": "a"}}', ErrorCode.VALIDATION_ERROR),
    ('{"type": "reset", "data": {"include": ["hint"]}}', ErrorCode.VALIDATION_ERROR),
    ('{"type": "step", "data": {"action": 5}}', ErrorCode.VALIDATION_ERROR),
    ('{"type": "step", "data": {"message": {"role": "user", "content": "x"}}}', ErrorCode.VALIDATION_ERROR),
    ('{"type": "state", "data": {"include": ["secrets"]}}', ErrorCode.VALIDATION_ERROR),
])
def test_parse_errors(text, code):
    assert code_of(text) == code


def test_size_limit_counts_bytes():
    text = json.dumps({"type": "step", "data": {"action": "é" * 600}}, ensure_ascii=False)
    assert len(text) < 1024 < len(text.encode())
    assert code_of(text, 1024) == ErrorCode.VALIDATION_ERROR
    assert msg.parse(text, 4096)[0] == "step"


def test_answers_encode_whatever_an_env_puts_in_info():
    task = Task(id="t", inputs={}, reference={"answer": 1})
    info = {"task": task, "n": np.int64(3), "x": np.float32(0.5), "bad": float("nan"), "s": {2}, "t": (1, 2),
            "arr": np.arange(3), "obj": object, 4: "int key"}
    result = StepResult([{"role": "tool", "tool_call_id": "c", "content": "ok"}], np.float64(1.0), True, False, info)
    decoded = json.loads(msg.dumps(msg.step_observation(result, episode_id="e", step_count=1)))
    data = decoded["data"]
    assert data["observation"] == {"role": "tool", "content": "ok"} and data["reward"] == 1.0 and data["done"]
    got = data["metadata"]["info"]
    assert got["task"]["reference"] == {"answer": 1} and got["n"] == 3 and got["x"] == 0.5 and got["bad"] is None
    assert got["s"] == [2] and got["t"] == [1, 2] and got["arr"] == [0, 1, 2] and got["4"] == "int key"
    assert isinstance(got["obj"], str)
    assert data["metadata"]["messages"][0]["tool_call_id"] == "c" and data["metadata"]["step_count"] == 1
    error = json.loads(msg.dumps(msg.error(ErrorCode.EXECUTION_ERROR, "boom", detail=float("inf"))))
    assert error == {"type": "error", "data": {"message": "boom", "code": "EXECUTION_ERROR", "detail": None}}


def test_schemas_are_json():
    schemas = msg.schemas()
    json.dumps(schemas)
    assert schemas["action"]["properties"]["action"]["anyOf"][0]["type"] == "string"


def test_binary_frames_hold_utf8_json():
    assert msg.parse('{"type": "state"}'.encode(), 1 << 20)[0] == "state"
    assert code_of(b"\xff\xfe") == ErrorCode.INVALID_JSON
    with pytest.raises(ProtocolError) as err:
        msg.parse(b"x" * 2000, 1024)
    assert err.value.code == ErrorCode.VALIDATION_ERROR
