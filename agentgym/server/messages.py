"""The wire format of ``agentgym serve-envs``: OpenEnv's WebSocket messages with agentgym's fields.

One WebSocket connection to ``/ws`` is one session. Every message is a JSON object with a
``type``; the server answers each client message (but ``close``) with exactly one message,
in order:

========================================================  ===========================================
client                                                    server
========================================================  ===========================================
``{"type": "reset", "data": ResetData}``                  ``{"type": "observation", "data": ...}``
``{"type": "step", "data": StepData}``                    ``{"type": "observation", "data": ...}``
``{"type": "state", "data": StateData}`` (data optional)  ``{"type": "state", "data": StateInfo}``
``{"type": "close"}``                                     (the server closes the env and the socket)
anything wrong                                            ``{"type": "error", "data": {"message",
                                                          "code"}}``
========================================================  ===========================================

The observation data is ``{"observation": {"role", "content"}, "reward", "done", "metadata"}``;
agentgym's extras live in ``metadata`` (see :func:`observation`). Error codes are OpenEnv's
(:class:`ErrorCode`). The pydantic models below validate what clients send and are what
``GET /schema`` publishes, so a client can be written from them alone (docs/openenv.md).
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentgym.core.protocol import Message, StepResult
from agentgym.core.task import Task

STATE_INCLUDES = ("progress", "hint", "oracle_action", "valid_actions")
"""Optional env hooks a ``state`` message may ask for (agentgym's extension; each costs a hook call)."""


class ErrorCode(str, Enum):
    """OpenEnv's WebSocket error codes, and when agentgym's server sends each."""

    INVALID_JSON = "INVALID_JSON"  # the message is not JSON
    UNKNOWN_TYPE = "UNKNOWN_TYPE"  # ``type`` is not reset, step, state or close
    VALIDATION_ERROR = "VALIDATION_ERROR"  # bad fields, too large, or not valid now (step before reset...)
    EXECUTION_ERROR = "EXECUTION_ERROR"  # the environment failed while resetting, stepping or in a hook
    CAPACITY_REACHED = "CAPACITY_REACHED"  # the server has --max-sessions sessions open; sent at connect
    FACTORY_ERROR = "FACTORY_ERROR"  # the env could not be built (unknown or unhosted id, bad kwargs)
    SESSION_ERROR = "SESSION_ERROR"  # the session ended (idle timeout, server shutting down)


class ProtocolError(Exception):
    """A client message the server answers with an error (never a traceback)."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetData(_Data):
    """``reset``'s data. Every field is optional when the server hosts one environment."""

    env_id: str | None = Field(None, description="registered id, e.g. maze-easy/v0 (a family: its newest)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="environment constructor arguments")
    seed: int | None = Field(None, ge=0, description="reset seed: with no task given, it picks the task")
    task_id: str | None = Field(None, max_length=1024, description="play this task of the env's task list")
    task: Task | None = Field(None, description="play this task (inputs, hidden reference, metadata)")
    episode_id: str | None = Field(None, max_length=255, description="the episode's id (default: random)")
    include: list[Literal["progress"]] = Field(default_factory=list,
                                               description="hook values to add to the metadata (agentgym)")

    @model_validator(mode="after")
    def _one_task(self) -> "ResetData":
        if self.task is not None and self.task_id is not None:
            raise ValueError("give task or task_id, not both")
        return self


class AssistantMessage(BaseModel):
    """The assistant's reply in OpenAI chat format (other OpenAI fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class StepData(_Data):
    """``step``'s data: the reply as plain text (``action``) or as an assistant ``message``."""

    action: str | None = Field(None, description="the reply text; tool calls written in it are parsed")
    message: AssistantMessage | None = Field(None, description="the reply with native OpenAI tool_calls")
    include: list[Literal["progress"]] = Field(default_factory=list,
                                               description="hook values to add to the metadata (agentgym)")

    @model_validator(mode="after")
    def _exactly_one(self) -> "StepData":
        if (self.action is None) == (self.message is None):
            raise ValueError("give exactly one of action (text) or message (an assistant message)")
        return self

    def reply(self) -> Message:
        """What the environment's ``astep`` receives."""
        if self.message is not None:
            out: Message = {"role": "assistant", "content": self.message.content}
            if self.message.tool_calls:
                out["tool_calls"] = self.message.tool_calls
            return out
        return {"role": "assistant", "content": self.action}


class StateData(_Data):
    """``state``'s data (optional; OpenEnv clients send none)."""

    include: list[Literal["progress", "hint", "oracle_action", "valid_actions"]] = Field(
        default_factory=list, description="hook values to add (agentgym); null when the env has none")


class ObservationMessage(BaseModel):
    """What the model sees next: a user message, or a tool message (several tool results merged)."""

    role: Literal["user", "tool"]
    content: str


class ObservationData(BaseModel):
    """``observation``'s data (``GET /schema`` publishes this as the observation schema)."""

    observation: ObservationMessage
    reward: float | None = Field(None, description="this step's reward; null after reset")
    done: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict, description=(
        "agentgym's extras: info (the env's info dict), messages (the answer, one tool message per tool call "
        "with its tool_call_id), tools and system_prompt (after reset), valid_actions, success and reason "
        "(on the last step), terminated, truncated, episode_id, step_count, progress (when included). "
        "info.task holds the task with its hidden reference: for scoring, never show it to the model."))


class StateInfo(BaseModel):
    """``state``'s answer (extra keys: the hooks asked for with ``include``)."""

    model_config = ConfigDict(extra="allow")

    episode_id: str | None = None
    step_count: int = 0
    env_id: str | None = None
    done: bool = True


INCOMING = {"reset": ResetData, "step": StepData, "state": StateData}


def parse(text: str | bytes, max_bytes: int) -> tuple[str, BaseModel | None]:
    """A client message (a text frame, or a binary one holding UTF-8) as its type and validated data;
    :class:`ProtocolError` when it is wrong."""
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise ProtocolError(ErrorCode.VALIDATION_ERROR,
                                f"the message is larger than this server's limit of {max_bytes} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.INVALID_JSON, "a binary message must hold UTF-8 JSON") from None
    if len(text) * 4 > max_bytes and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(ErrorCode.VALIDATION_ERROR,
                            f"the message is larger than this server's limit of {max_bytes} bytes")
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"the message is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.VALIDATION_ERROR, "a message must be a JSON object with a 'type'")
    kind = raw.get("type")
    if kind == "close":
        return "close", None
    model = INCOMING.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE,
                            f"unknown message type {kind!r}; use reset, step, state or close")
    unknown = sorted(set(raw) - {"type", "data"})
    if unknown:
        raise ProtocolError(ErrorCode.VALIDATION_ERROR, f"unknown top-level field {unknown[0]!r}; "
                            "a message has only 'type' and 'data'")
    data = raw.get("data")
    if data is None and kind != "step":
        data = {}
    try:
        return kind, model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.VALIDATION_ERROR, f"invalid {kind} message: {first_error(exc)}",
                            errors=_errors(exc)) from None


def first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the echoed input (which may be large) and without URLs."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:10]]


# ---------------------------------------------------------------------------- server -> client
LIFTED = ("tools", "system_prompt", "valid_actions", "success", "reason")
"""Info keys repeated at the top of ``metadata`` so a client finds them without knowing agentgym's info."""


def observation(message: Message, reward: float | None, done: bool, info: dict[str, Any],
                messages: list[Message], *, terminated: bool = False, truncated: bool = False,
                **extra: Any) -> dict[str, Any]:
    """An ``observation`` answer; ``extra`` (episode_id, step_count, progress) goes into metadata.

    Values need not be JSON yet (tasks, numpy scalars): :func:`dumps` converts them.
    """
    metadata: dict[str, Any] = {"info": info, "messages": messages, "terminated": terminated,
                                "truncated": truncated}
    metadata.update({k: info[k] for k in LIFTED if k in info})
    metadata.update(extra)
    content = message.get("content")
    role = message.get("role") if message.get("role") in ("user", "tool") else "user"
    return {"type": "observation", "data": {
        "observation": {"role": role, "content": content if isinstance(content, str) else str(content or "")},
        "reward": None if reward is None else _number(reward), "done": bool(done), "metadata": metadata}}


def step_observation(result: StepResult, **extra: Any) -> dict[str, Any]:
    """The ``observation`` answer to a step."""
    return observation(result.observation, result.reward, result.done, result.info, result.messages,
                       terminated=bool(result.terminated), truncated=bool(result.truncated), **extra)


def state(**fields: Any) -> dict[str, Any]:
    """A ``state`` answer."""
    return {"type": "state", "data": fields}


def error(code: ErrorCode, message: str, **extra: Any) -> dict[str, Any]:
    """An ``error`` answer: one sentence saying what was wrong, and OpenEnv's code."""
    return {"type": "error", "data": {"message": message, "code": code.value, **jsonable(extra)}}


def dumps(payload: dict[str, Any]) -> str:
    """Compact JSON of an answer. The common case (plain values, tasks) is one ``json.dumps``; a payload
    that JSON cannot hold as is (NaN, tuple keys) is made :func:`jsonable` first."""
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_default)
    except (TypeError, ValueError):
        return json.dumps(jsonable(payload), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _default(value: Any) -> Any:
    """What ``json.dumps`` cannot encode by itself."""
    converted = jsonable(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON")
    return converted


def jsonable(value: Any) -> Any:
    """A JSON-safe copy: tasks and other pydantic models dumped, numpy scalars unwrapped, tuples and sets
    as lists, non-finite floats as null, anything else as its string."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"))
    if hasattr(value, "item") and callable(value.item):
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):
        return jsonable(value.tolist())
    return str(value)


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def schemas() -> dict[str, Any]:
    """``GET /schema``: the JSON schemas of the action (step data), observation and state."""
    return {"action": StepData.model_json_schema(), "observation": ObservationData.model_json_schema(),
            "state": StateInfo.model_json_schema(), "reset": ResetData.model_json_schema()}
