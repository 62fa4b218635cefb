"""SQuAD-style answer checks any environment can use as a verifiable reward.

The normalisation is the one the SQuAD evaluation script made standard (lower-case,
strip punctuation and the articles a/an/the, collapse whitespace), so exact match
and token F1 mean the same thing here as in the QA literature. Every check takes the
prediction and one or more gold answers and returns the best score over the golds.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(answers: str | Iterable[str]) -> list[str]:
    golds = [answers] if isinstance(answers, str) else [a for a in answers if isinstance(a, str)]
    return golds or [""]


def exact_match(prediction: str, answers: str | Iterable[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _golds(answers)))


def _f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: str | Iterable[str]) -> float:
    """Best bag-of-tokens F1 between the normalised prediction and a gold answer."""
    return max(_f1(prediction, g) for g in _golds(answers))


def contains_answer(prediction: str, answers: str | Iterable[str]) -> float:
    """1.0 when a normalised gold answer appears as whole words in the normalised prediction.

    Long explanatory replies rarely match exactly; this is the usual lenient check.
    """
    pred = f" {normalize_answer(prediction)} "
    return float(any(normalize_answer(g) and f" {normalize_answer(g)} " in pred for g in _golds(answers)))


CHECKS = {"exact_match": exact_match, "token_f1": token_f1, "f1": token_f1, "contains_answer": contains_answer}
"""Named verifiable checks, usable as ``check:`` in a rubric's verifiable criterion."""
