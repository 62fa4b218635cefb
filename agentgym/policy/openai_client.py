"""The ``openai`` backend: an aiohttp client for any OpenAI-compatible server.

Chat requests go to ``/v1/chat/completions``; token-id requests to ``/v1/completions`` with the
prompt as a list of ints. With ``token_ids=True`` (default) it also asks for vLLM's extensions
(``return_token_ids``, ``return_tokens_as_token_ids``) so completions carry exact token ids and
their logprobs; servers without them give text (and logprobs if they offer them) only.
``agentgym serve-policy`` and ``vllm serve`` both offer them.

At most ``max_concurrency`` requests are in flight; each has a ``timeout``; connection errors,
timeouts, 429 and 5xx answers are retried ``retries`` times with exponential backoff. An
unreachable server ends in a :class:`~agentgym.errors.UserError`; timeouts and other failed
answers in a :class:`PolicyServerError` carrying the server's message.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Sequence

import aiohttp

from agentgym.errors import UserError
from agentgym.policy.base import Completion, GenerationRequest, SamplingParams


class PolicyServerError(RuntimeError):
    """The server answered a request with an error."""


def _sampling_body(params: SamplingParams) -> dict[str, Any]:
    body: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "n": params.n,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    return body


def _token_id(token: str) -> int | None:
    """``"token_id:123"`` (vLLM's ``return_tokens_as_token_ids``) -> 123."""
    if isinstance(token, str) and token.startswith("token_id:"):
        try:
            return int(token[len("token_id:"):])
        except ValueError:
            return None
    return None


def _finish(reason: str | None) -> str:
    return reason if reason in ("length", "tool_calls") else "stop"


def _tool_calls(raw: Any) -> list[dict[str, Any]] | None:
    """A chat message's native ``tool_calls`` in the shape the rest of agentgym uses (None: none)."""
    if not isinstance(raw, list) or not raw:
        return None
    calls = []
    for item in raw:
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict):
            continue
        args = fn.get("arguments")
        calls.append({"id": item.get("id"), "type": "function",
                      "function": {"name": fn.get("name"), "arguments": args if isinstance(args, str) else
                                   json.dumps(args if args is not None else {})}})
    return calls or None


def parse_choice(choice: dict[str, Any], chat: bool) -> Completion:
    """A :class:`Completion` from one choice of a (chat) completion response.

    A chat answer's native ``tool_calls`` (``content: null``, finish reason ``tool_calls``, as
    OpenAI models and ``vllm serve --tool-call-parser`` send them) are kept with their ids.
    """
    calls = None
    if chat:
        message = choice.get("message") or {}
        text = message.get("content") or ""
        calls = _tool_calls(message.get("tool_calls"))
        entries = ((choice.get("logprobs") or {}).get("content")) or []
        tokens = [e.get("token") for e in entries]
        logprobs = [float(e.get("logprob", 0.0)) for e in entries]
    else:
        text = choice.get("text") or ""
        lp = choice.get("logprobs") or {}
        tokens = lp.get("tokens") or []
        logprobs = [float(x) if x is not None else 0.0 for x in (lp.get("token_logprobs") or [])]
    token_ids = choice.get("token_ids")
    if token_ids is None:
        parsed = [_token_id(t) for t in tokens]
        token_ids = parsed if parsed and all(i is not None for i in parsed) else []
    return Completion(text=text, token_ids=list(token_ids), logprobs=logprobs, tool_calls=calls,
                      finish_reason=_finish(choice.get("finish_reason")))  # type: ignore[arg-type]


class OpenAIPolicy:
    """A policy served over HTTP by an OpenAI-compatible server (vLLM, agentgym serve-policy, ...)."""

    continuous_batching = True  # the server batches; each request goes out when ready

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        max_concurrency: int = 32,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 0.5,
        token_ids: bool = True,
        name: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.token_ids = token_ids
        self.name = name or f"openai:{self.base_url}" + (f"#{model}" if model else "")
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """The session of the running event loop (a new loop, e.g. a new asyncio.run, gets its own)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=self.max_concurrency),
            )
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        assert self._semaphore is not None
        return self._session, self._semaphore

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One HTTP call with retries; returns the JSON answer."""
        session, semaphore = self._client()
        url = f"{self.base_url}{path}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                async with semaphore, session.request(method, url, json=body) as response:
                    if response.status == 429 or response.status >= 500:
                        last = PolicyServerError(f"{url} answered {response.status}: {await response.text()}")
                        continue
                    try:
                        payload = await response.json(content_type=None)
                    except ValueError:
                        payload = None
                    if response.status >= 400 or not isinstance(payload, dict):
                        message = (payload.get("error") or {}) if isinstance(payload, dict) else {}
                        message = message.get("message", message) if isinstance(message, dict) else message
                        raise PolicyServerError(f"{url} answered {response.status}: {message or payload}")
                    return payload
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                last = exc
        if isinstance(last, PolicyServerError):
            raise last
        if isinstance(last, asyncio.TimeoutError):
            raise PolicyServerError(f"{url} did not answer within {self.timeout} s ({self.retries + 1} tries)")
        raise UserError(
            f"cannot reach the policy server at {self.base_url} ({type(last).__name__}: {last}); start it "
            "(`agentgym serve-policy POLICY` or `vllm serve MODEL`) or fix the URL."
        )

    async def resolve_model(self) -> str:
        """The model name: the one given, else the server's first model."""
        if self.model is None:
            answer = await self._call("GET", "/models")
            models = [m.get("id") for m in answer.get("data", [])]
            if not models:
                raise UserError(f"the server at {self.base_url} lists no models; name one: openai:URL#MODEL.")
            self.model = models[0]
        return self.model

    async def _one(self, request: GenerationRequest) -> list[Completion]:
        model = await self.resolve_model()
        body: dict[str, Any] = {"model": model, **_sampling_body(request.params)}
        if self.token_ids:
            body.update(return_token_ids=True, return_tokens_as_token_ids=True)
        if request.prompt_ids is not None:
            chat = False
            body.update(prompt=list(request.prompt_ids), logprobs=1)
            answer = await self._call("POST", "/completions", body)
        elif request.messages is not None:
            chat = True
            body.update(messages=request.messages, logprobs=True)
            if request.tools:
                body["tools"] = request.tools
            answer = await self._call("POST", "/chat/completions", body)
        else:
            raise ValueError("a GenerationRequest needs messages or prompt_ids")
        choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
        if not choices:
            raise PolicyServerError(f"{self.base_url} returned no choices: {answer}")
        return [parse_choice(c, chat) for c in choices]

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
