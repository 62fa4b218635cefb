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


def parse_policy_spec(spec: str) -> tuple[str, str]:
    """``(backend, rest)`` of a spec, checked without loading anything (what ``train`` and ``eval``
    run before a model loads): a malformed spec, a missing local model folder or replay file,
    or an ``openai:`` spec without a URL is a :class:`UserError`."""
    from pathlib import Path

    from agentgym.policy.default_model import ALIASES

    spec = (spec or "").strip()
    if spec.lower() in ALIASES:
        spec = f"hf:{spec}"
    backend, sep, rest = spec.partition(":")
    if not sep or backend not in BACKENDS or not rest:
        raise UserError(f"unknown policy {spec!r}: use one of {SPEC_HELP}.")
    local = backend in ("hf", "vllm") and rest.lower() not in ALIASES and rest.startswith(("/", "./", "../", "~"))
    if local and not Path(rest).expanduser().exists():
        raise UserError(f"policy {spec!r}: cannot load {rest}: there is no such model folder.")
    if backend == "openai" and not rest.startswith(("http://", "https://")):
        raise UserError(f"policy {spec!r} needs a URL: openai:http://HOST:PORT/v1#MODEL.")
    if backend == "scripted":
        kind, _, arg = rest.partition(":")
        if not ((kind in ("random", "oracle") and not arg) or (kind == "replay" and arg)):
            raise UserError(f"unknown scripted policy {spec!r}: use scripted:random, scripted:oracle or "
                            "scripted:replay:FILE.")
        if kind == "replay" and not Path(arg).is_file():
            raise UserError(f"policy {spec!r}: the replay file {arg} does not exist.")
    return backend, rest


def load_policy(spec: str, **kwargs: Any) -> Policy | ActionSource:
    """The policy named by ``spec`` (``scripted:*`` give action sources); ``kwargs`` go to its constructor."""
    backend, rest = parse_policy_spec(spec)
    if backend == "hf":
        from agentgym.policy.hf import HFPolicy

        return HFPolicy(rest, **kwargs)
    if backend == "vllm":
        from agentgym.policy.vllm_engine import VLLMPolicy

        return VLLMPolicy(rest, **kwargs)
    if backend == "openai":
        url, _, model = rest.partition("#")
        from agentgym.policy.openai_client import OpenAIPolicy

        return OpenAIPolicy(url, model or None, **kwargs)
    from agentgym.policy import scripted

    kind, _, arg = rest.partition(":")
    if kind == "random" and not arg:
        return scripted.RandomPolicy(**kwargs)
    if kind == "oracle" and not arg:
        return scripted.OraclePolicy(**kwargs)
    return scripted.ReplayPolicy(arg, **kwargs)
