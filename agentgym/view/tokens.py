"""The loss mask over the exact tokens of a trajectory, decoded with the run's own tokenizer.

The learner trains on exactly the tokens the policy sampled (mask 1) and on nothing else
(prompt, observation and template tokens, mask 0). Showing each token with its mask and
behaviour log-prob makes that visible. The tokenizer comes from the policy the run names
(``model.policy`` of a training config, ``policy`` of an eval run) and is only read from local
files: a viewer never downloads. Without one the page shows the token ids.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from agentgym.errors import UserError
from agentgym.view.episodes import as_dict, as_list, number

log = logging.getLogger(__name__)


@dataclass
class Token:
    """One token of a trajectory with its mask, behaviour log-prob and turn."""

    id: int
    text: str
    mask: int
    logprob: float | None
    turn: int | None  # 1-based turn whose sampled span holds this token


@dataclass
class TokenView:
    """All tokens of a trajectory, and how they were decoded."""

    tokens: list[Token]
    decoded: bool
    note: str  # why the ids are not decoded, or which tokenizer decoded them

    @property
    def sampled(self) -> int:
        """Tokens with loss mask 1."""
        return sum(t.mask for t in self.tokens)


def model_path(spec: str | None) -> str | None:
    """The local folder (or Hugging Face id) of a policy spec; None where it has no tokenizer."""
    if not spec:
        return None
    spec = spec.strip()
    backend, sep, rest = spec.partition(":")
    if sep and backend in ("hf", "vllm"):
        spec = rest
    elif sep and backend in ("openai", "scripted"):
        return None
    from agentgym.policy.default_model import ALIASES, default_model_path

    if spec.lower() in ALIASES:
        try:
            return str(default_model_path(fetch=False))
        except UserError:
            return None
    return spec or None


class Tokenizers:
    """Tokenizers loaded once per policy spec (failures remembered too); loading blocks."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[Any, str]] = {}
        self._lock = threading.Lock()

    def get(self, spec: str | None) -> tuple[Any, str]:
        """``(tokenizer or None, a note for the page)``."""
        key = spec or ""
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = _load(spec)
            return self._loaded[key]


def _load(spec: str | None) -> tuple[Any, str]:
    path = model_path(spec)
    if path is None:
        return None, f"showing token ids: the policy {spec or '(unknown)'} names no local tokenizer"
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None, "showing token ids: transformers is not installed (pip install 'agentgym[hf]')"
    try:
        return AutoTokenizer.from_pretrained(
            path, local_files_only=True
        ), f"decoded with the tokenizer of {path}"
    except Exception as exc:  # any loader failure: the ids still show
        log.info("no tokenizer for %s: %s", spec, exc)
        return None, f"showing token ids: no local tokenizer at {path}"


def token_view(data: Mapping[str, Any], tokenizer: Any = None, note: str = "") -> TokenView:
    """Every token of ``data`` (a parsed trajectory) with its mask, log-prob and turn."""
    ids = [int(i) for i in as_list(data.get("token_ids")) if isinstance(i, (int, float))]
    mask = as_list(data.get("loss_mask"))
    logprobs = as_list(data.get("logprobs"))
    turn_of = [None] * len(ids)
    for n, turn in enumerate(as_list(data.get("turns")), 1):
        turn = as_dict(turn)
        start, end = number(turn.get("start"), None), number(turn.get("end"), None)
        if start is not None and end is not None:
            for i in range(max(0, int(start)), min(len(ids), int(end))):
                turn_of[i] = n
    texts = _decode(tokenizer, ids) if tokenizer is not None and ids else None
    tokens = [
        Token(
            id=tid,
            text=texts[i] if texts is not None else f"[{tid}]",
            mask=1 if i < len(mask) and mask[i] else 0,
            logprob=number(logprobs[i], None) if i < len(logprobs) and i < len(mask) and mask[i] else None,
            turn=turn_of[i],
        )
        for i, tid in enumerate(ids)
    ]
    if not ids:
        note = "this trajectory has no token-level record (a text-only policy: scripted or an OpenAI server)"
    return TokenView(tokens, texts is not None, note)


def _decode(tokenizer: Any, ids: list[int]) -> list[str] | None:
    """Each id on its own, as text (byte-level pieces join back to the exact text)."""
    try:
        pieces = tokenizer.convert_ids_to_tokens(ids)
        return [tokenizer.convert_tokens_to_string([p]) if p is not None else "" for p in pieces]
    except Exception as exc:  # a tokenizer that cannot decode these ids: show the ids
        log.info("decoding failed: %s", exc)
        return None
