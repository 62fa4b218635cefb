"""Keeping the hidden answer out of guidance: whole-word, normalised redaction of reference answers.

A teacher reads the hidden reference to write its plan; before that plan reaches a student
prompt, every occurrence of a reference answer (SQuAD-normalised, whole words) is replaced,
or the plan is dropped.
"""

from __future__ import annotations

import re
import string
from typing import Sequence

from agentgym.core.task import Task
from agentgym.rewards.verifiable import normalize_answer


def redact_answers(text: str, answers: Sequence[str], token: str = "[redacted]") -> tuple[str, int]:
    """Replace every whole-word occurrence of a (normalised) answer in ``text``; returns (text, count)."""
    count = 0
    for answer in sorted({a for a in answers if normalize_answer(a)}, key=lambda a: -len(a)):
        target = normalize_answer(answer).split()
        words = [(normalize_answer(m.group()), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        words = [w for w in words if w[0]]
        spans = []
        i = 0
        while i + len(target) <= len(words):
            if [w[0] for w in words[i : i + len(target)]] == target:
                start, end = words[i][1], words[i + len(target) - 1][2]
                while text[start] in string.punctuation:  # keep the sentence's own punctuation
                    start += 1
                while text[end - 1] in string.punctuation:
                    end -= 1
                spans.append((start, end))
                i += len(target)
            else:
                i += 1
        for start, end in reversed(spans):
            text = text[:start] + token + text[end:]
        count += len(spans)
    return text, count


def answer_strings(task: Task, keys: Sequence[str]) -> list[str]:
    """The reference answers a teacher must not reveal (lists joined with spaces, and each string item)."""
    out: list[str] = []
    for key in keys:
        value = task.reference.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            items = [str(v) for v in value if v is not None]
            if items and all(isinstance(v, str) and len(v.split()) > 1 for v in value):
                out.extend(items)  # a list of alternative answers
            elif items:
                out.append(" ".join(items))  # a sequence of steps: the whole sequence is the answer
        else:
            out.append(str(value))
    return [a for a in out if a.strip()]
