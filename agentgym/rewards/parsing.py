"""Pull structured data out of model text: judges and rubric generators are models too.

Small models wrap JSON in code fences, prefix it with chatter, use single quotes or
leave trailing commas. These helpers find the first JSON value that parses, trying
progressively more lenient readings, and read a judge's verdict (:func:`parse_judgment`);
they never raise on model output.
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


_YES = {"yes", "y", "true", "pass", "passed", "correct", "met", "meets"}
_NO = {"no", "n", "false", "fail", "failed", "incorrect", "not met"}
_SCORE_LINE = re.compile(
    r"\b(?:score|rating|verdict|grade|answer)\s*[:=]\s*\**\s*"
    r"(yes|no|true|false|pass|fail|[-+]?\d+(?:\.\d+)?)\s*(?:/\s*(\d+))?",
    re.IGNORECASE,
)
_RATIONALE = re.compile(r"\b(?:rationale|reason|reasoning|explanation)\s*[:=]\s*(.+)", re.IGNORECASE)
_SENTENCE = re.compile(r"\b(?:answer|verdict)\b[^.\n]{0,40}?\bis\s*:?\s*(yes|no)\b", re.IGNORECASE)
_LONE = re.compile(r"^\W*(yes|no|true|false|pass|fail|[-+]?\d+(?:\.\d+)?)\s*(?:/\s*(\d+))?\W*$", re.IGNORECASE)


def _value(token: Any, denom: Any, scale: int) -> float | None:
    """A raw verdict token -> normalised score, or None when out of range."""
    if isinstance(token, bool):
        return float(token)
    text = str(token).strip().lower()
    if text in _YES:
        return 1.0
    if text in _NO:
        return 0.0
    try:
        number = float(text)
    except ValueError:
        return None
    top = float(denom) if denom not in (None, "") else float(scale)
    if top <= 0 or not 0 <= number <= top:
        return None
    return number / top


def parse_judgment(text: str, scale: int = 1) -> tuple[float, str] | None:
    """``(score in [0, 1], rationale)`` from a judge's reply, or ``None`` if unparseable.

    Accepted, in order: a JSON object with ``score``/``verdict``/``rating``; the last
    ``Score: N`` (or ``N/k``, yes/no) line; for yes/no criteria, "the answer is yes/no"
    (one verdict only); a first or last line that is only a verdict.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    obj = extract_json(text, dict)
    if obj is not None:
        for key in ("score", "verdict", "rating", "grade", "answer"):
            if key in obj and not isinstance(obj[key], (dict, list)):
                value = _value(obj[key], None, scale)
                if value is not None:
                    why = obj.get("rationale") or obj.get("reason") or obj.get("explanation") or ""
                    return value, str(why)[:500]
    matches = list(_SCORE_LINE.finditer(text))
    rationale_m = _RATIONALE.search(text)
    rationale = rationale_m.group(1).strip()[:500] if rationale_m else ""
    for m in reversed(matches):
        value = _value(m.group(1), m.group(2), scale)
        if value is not None:
            if not rationale:
                rationale = text[: m.start()].strip()[-500:]
            return value, rationale
    if scale == 1:
        sentences = {m.group(1).lower() for m in _SENTENCE.finditer(text)}
        if len(sentences) == 1:
            return _value(sentences.pop(), None, 1), rationale  # type: ignore[return-value]
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    for line in (lines[0], lines[-1]) if lines else ():
        m = _LONE.match(line)
        if m:
            value = _value(m.group(1), m.group(2), scale)
            if value is not None:
                return value, rationale
    return None
