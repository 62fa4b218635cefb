"""Pull structured data out of model text: judges and rubric generators are models too.

Small models wrap JSON in code fences, prefix it with chatter, use single quotes or
leave trailing commas. These helpers find the first JSON value that parses, trying
progressively more lenient readings, and never raise on model output.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|yaml|JSON)?\s*\n?(.*?)(?:```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def extract_json(text: str, want: type | tuple[type, ...] = (dict, list)) -> Any:
    """The first JSON value of type ``want`` in ``text``, or ``None``."""
    if not isinstance(text, str) or not text.strip():
        return None
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        value = _loads_lenient(candidate)
        if isinstance(value, want):
            return value
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch not in "{[":
            continue
        for variant in (text[i:], _repair(text[i:])):
            try:
                value, _ = decoder.raw_decode(variant)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(value, want):
                return value
    return None


def _loads_lenient(text: str) -> Any:
    for variant in (text, _repair(text)):
        try:
            return json.loads(variant)
        except (json.JSONDecodeError, RecursionError):
            continue
    return None


def _repair(text: str) -> str:
    """Common slips: trailing commas; single-quoted strings when no double quotes are used."""
    fixed = _TRAILING_COMMA.sub(r"\1", text)
    if '"' not in fixed and "'" in fixed:
        fixed = fixed.replace("'", '"')
    return fixed


def get_path(obj: Any, path: str) -> tuple[bool, Any]:
    """Follow a dotted path (``a.b.0.c``) through dicts and lists: ``(found, value)``."""
    current = obj
    for part in [p for p in path.split(".") if p] if path else []:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and re.fullmatch(r"-?\d+", part) and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return False, None
    return True, current
