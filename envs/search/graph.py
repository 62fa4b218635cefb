"""The mention graph: which documents name which other documents' titles in their text.

Multi-hop questions walk this graph. A document mentions another when the other's
title (or its title without a parenthetical qualifier, when that is unambiguous)
occurs in its text as whole words with the same capitalisation. One-word titles at
the start of a sentence do not count: "Water is..." is not a link.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from envs.search.corpus import Document

_WORD = re.compile(r"\w+")
_PAREN = re.compile(r"\s*\([^)]*\)\s*$")


def base_title(title: str) -> str:
    """The title without a trailing parenthetical qualifier: ``Mercury (planet)`` -> ``Mercury``."""
    return _PAREN.sub("", title).strip() or title


def title_keys(docs: Sequence[Document]) -> dict[tuple[str, ...], str]:
    """Word-tuple keys of every title (and unambiguous base title) -> document id."""
    keys: dict[tuple[str, ...], str] = {}
    for doc in docs:
        key = tuple(_WORD.findall(doc.title))
        if key and len(" ".join(key)) >= 3:
            keys[key] = doc.id
    base_owner: dict[tuple[str, ...], list[str]] = {}
    for doc in docs:
        base = base_title(doc.title)
        if base != doc.title:
            base_owner.setdefault(tuple(_WORD.findall(base)), []).append(doc.id)
    for key, owners in base_owner.items():
        if key and len(owners) == 1 and key not in keys and len(" ".join(key)) >= 3:
            keys[key] = owners[0]
    return keys


def mention_graph(docs: Sequence[Document]) -> dict[str, list[str]]:
    """For each document id, the ids of the documents it mentions, in order of first mention."""
    keys = title_keys(docs)
    max_len = max((len(k) for k in keys), default=1)
    graph: dict[str, list[str]] = {}
    for doc in docs:
        text = doc.contents
        spans = [(m.group(), m.start()) for m in _WORD.finditer(text)]
        words = [w for w, _ in spans]
        found: list[str] = []
        i = 0
        while i < len(words):
            hit = None
            for n in range(min(max_len, len(words) - i), 0, -1):
                target = keys.get(tuple(words[i : i + n]))
                if target is None:
                    continue
                if n == 1 and _sentence_start(text, spans[i][1]):
                    continue
                hit = (target, n)
                break
            if hit is None:
                i += 1
                continue
            target, n = hit
            if target != doc.id and target not in found:
                found.append(target)
            i += n
        graph[doc.id] = found
    return graph


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip(" \"'(\u201c")
    return not before or before[-1] in ".!?\n:;"
