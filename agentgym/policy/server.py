"""An OpenAI-compatible HTTP endpoint (aiohttp) in front of any local :class:`Policy`.

Routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions`` (prompt as
text, a list of token ids, or a list of those). Answers are non-streaming. Logprobs of the
sampled tokens come back when asked (``logprobs``), and vLLM's extensions are honoured:
``return_token_ids`` adds ``token_ids`` to each choice and ``return_tokens_as_token_ids`` names
tokens ``"token_id:N"``. Assistant replies are plain text (tool calls are not parsed into
``tool_calls``); tools are passed to the chat template.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from agentgym.policy.base import Completion, GenerationRequest, Policy, SamplingParams


class BadRequest(Exception):
    """The request is malformed; answered with HTTP 400."""


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status)


def _params(body: dict[str, Any]) -> SamplingParams:
    stop = body.get("stop")
    try:
        return SamplingParams(
            temperature=float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0),
            top_p=float(body.get("top_p", 1.0) if body.get("top_p") is not None else 1.0),
            max_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 256),
            stop=[stop] if isinstance(stop, str) else (list(stop) if stop else None),
            n=int(body.get("n") or 1),
            seed=None if body.get("seed") is None else int(body["seed"]),
        )
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"bad sampling parameter: {exc}") from exc


class PolicyServer:
    """Serves ``policy`` under the model name ``model_name``."""

    def __init__(self, policy: Policy, model_name: str | None = None):
        self.policy = policy
        self.model_name = model_name or policy.name
        self.tokenizer = getattr(policy, "tokenizer", None)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/health", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.model_name, "object": "model", "created": 0, "owned_by": "agentgym"}]})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        if body.get("stream"):
            raise BadRequest("streaming is not supported by agentgym serve-policy; send stream=false")
        model = body.get("model")
        if model not in (None, self.model_name):
            raise LookupError(f"the model {model!r} does not exist; this server has {self.model_name!r}")
        return body

    def _token(self, token_id: int, as_id: bool) -> str:
        if as_id or self.tokenizer is None:
            return f"token_id:{token_id}"
        return self.tokenizer.decode([token_id])

    async def _run(self, request: web.Request, chat: bool) -> web.Response:
        try:
            body = await self._body(request)
            params = _params(body)
            if chat:
                messages = body.get("messages")
                if not isinstance(messages, list) or not messages:
                    raise BadRequest("messages must be a non-empty list")
                requests = [GenerationRequest(messages=messages, tools=body.get("tools"), params=params)]
            else:
                requests = [GenerationRequest(prompt_ids=ids, params=params) for ids in self._prompts(body.get("prompt"))]
            results = await self.policy.generate(requests)
        except BadRequest as exc:
            return _error(400, str(exc))
        except LookupError as exc:
            return _error(404, str(exc), "not_found_error")
        except ValueError as exc:
            return _error(400, str(exc))
        as_id = bool(body.get("return_tokens_as_token_ids"))
        with_ids = bool(body.get("return_token_ids"))
        want_logprobs = bool(body.get("logprobs")) if chat else body.get("logprobs") is not None
        choices, used = [], 0
        for prompt_index, completions in enumerate(results):
            for completion in completions:
                choice = self._choice(completion, len(choices), chat, want_logprobs, as_id)
                if with_ids:
                    choice["token_ids"] = completion.token_ids
                    if not chat:
                        choice["prompt_token_ids"] = requests[prompt_index].prompt_ids
                choices.append(choice)
                used += len(completion.token_ids)
        prompt_tokens = sum(len(r.prompt_ids or []) for r in requests)
        return web.json_response({
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": used,
                      "total_tokens": prompt_tokens + used},
        })

    def _prompts(self, prompt: Any) -> list[list[int]]:
        """Prompts as token ids: a string, a list of ints, or a list of either."""
        if isinstance(prompt, (str, int)) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], int)):
            prompt = [prompt]
        if not isinstance(prompt, list) or not prompt:
            raise BadRequest("prompt must be a string, a list of token ids, or a list of those")
        out = []
        for item in prompt:
            if isinstance(item, str):
                if self.tokenizer is None:
                    raise BadRequest("this policy has no tokenizer: send token ids")
                out.append(list(self.tokenizer(item, add_special_tokens=False)["input_ids"]))
            elif isinstance(item, list) and item and all(isinstance(i, int) for i in item):
                out.append(item)
            else:
                raise BadRequest("each prompt must be a non-empty string or list of token ids")
        return out

    def _choice(self, c: Completion, index: int, chat: bool, logprobs: bool, as_id: bool) -> dict[str, Any]:
        finish = c.finish_reason if c.finish_reason in ("stop", "length") else "stop"
        if chat:
            choice: dict[str, Any] = {"index": index, "message": {"role": "assistant", "content": c.text},
                                      "finish_reason": finish, "logprobs": None}
            if logprobs and c.logprobs:
                choice["logprobs"] = {"content": [
                    {"token": self._token(t, as_id), "logprob": lp, "bytes": None, "top_logprobs": []}
                    for t, lp in zip(c.token_ids, c.logprobs)]}
            return choice
        choice = {"index": index, "text": c.text, "finish_reason": finish, "logprobs": None}
        if logprobs and c.logprobs:
            choice["logprobs"] = {"tokens": [self._token(t, as_id) for t in c.token_ids],
                                  "token_logprobs": list(c.logprobs), "top_logprobs": None, "text_offset": []}
        return choice

    async def chat_completions(self, request: web.Request) -> web.Response:
        return await self._run(request, chat=True)

    async def completions(self, request: web.Request) -> web.Response:
        return await self._run(request, chat=False)


async def start_server(policy: Policy, host: str = "127.0.0.1", port: int = 8000,
                       model_name: str | None = None) -> web.AppRunner:
    """Start serving in the running event loop; ``await runner.cleanup()`` stops it."""
    runner = web.AppRunner(PolicyServer(policy, model_name).app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
