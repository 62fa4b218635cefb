"""Policies named by one string, for configs and the command line.

=================================  ===============================================================
``hf:PATH_OR_ID``                  transformers (CPU or CUDA); ``hf:smollm2-135m`` is the default model
``vllm:PATH_OR_ID``                in-process vLLM engine (extra ``vllm``)
``openai:http://HOST:PORT/v1#M``   any OpenAI-compatible server, model ``M`` (default: its first model)
``scripted:random``                uniform over the env's valid actions (``seed=`` kwarg)
``scripted:oracle``                the env's oracle action
``scripted:replay:FILE``           actions replayed from a text or JSONL file
``smollm2-135m``                   alias of ``hf:smollm2-135m`` (also ``smollm2``, ``default``)
=================================  ===============================================================
"""

from __future__ import annotations

from typing import Any

from agentgym.errors import UserError
from agentgym.policy.base import ActionSource, Policy

BACKENDS = ("hf", "vllm", "openai", "scripted")
SPEC_HELP = (
    "hf:PATH_OR_ID, vllm:PATH_OR_ID, openai:http://HOST:PORT/v1#MODEL, scripted:random, "
    "scripted:oracle, scripted:replay:FILE or smollm2-135m"
)


def load_policy(spec: str, **kwargs: Any) -> Policy | ActionSource:
    """The policy named by ``spec`` (``scripted:*`` give action sources); ``kwargs`` go to its constructor."""
    from agentgym.policy.default_model import ALIASES

    spec = (spec or "").strip()
    if spec.lower() in ALIASES:
        spec = f"hf:{spec}"
    backend, sep, rest = spec.partition(":")
    if not sep or backend not in BACKENDS or not rest:
        raise UserError(f"unknown policy {spec!r}: use one of {SPEC_HELP}.")
    if backend == "hf":
        from agentgym.policy.hf import HFPolicy

        return HFPolicy(rest, **kwargs)
    if backend == "vllm":
        from agentgym.policy.vllm_engine import VLLMPolicy

        return VLLMPolicy(rest, **kwargs)
    if backend == "openai":
        url, _, model = rest.partition("#")
        if not url.startswith(("http://", "https://")):
            raise UserError(f"policy {spec!r} needs a URL: openai:http://HOST:PORT/v1#MODEL.")
        from agentgym.policy.openai_client import OpenAIPolicy

        return OpenAIPolicy(url, model or None, **kwargs)
    from agentgym.policy import scripted

    kind, _, arg = rest.partition(":")
    if kind == "random" and not arg:
        return scripted.RandomPolicy(**kwargs)
    if kind == "oracle" and not arg:
        return scripted.OraclePolicy(**kwargs)
    if kind == "replay" and arg:
        return scripted.ReplayPolicy(arg, **kwargs)
    raise UserError(f"unknown scripted policy {spec!r}: use scripted:random, scripted:oracle or scripted:replay:FILE.")
