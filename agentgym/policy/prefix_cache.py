"""Keys and values of finished turns, kept so the next turn prefills only what is new.

A multi-turn episode sends the whole conversation at every turn: the prompt of turn
``k + 1`` is the prompt of turn ``k``, the reply and the new observation. Without a cache
the ``hf`` backend recomputes attention keys and values for all of it every time, so
generation cost grows with the square of the number of turns. vLLM and SGLang avoid that
with prefix caching; this is the same idea for the ``hf`` backend, one entry per finished
sequence: the token ids it fed the model and their keys/values per layer.

Entries are only reused for prompts that start with exactly their token ids, and only at
the weight version that produced them (a learner update makes them stale). Memory is
bounded: least recently used entries go first once ``max_bytes`` is reached.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class PrefixEntry:
    """The keys and values (per layer, ``[heads, tokens, dim]``) of ``ids`` at ``version``."""

    ids: list[int]
    layers: list[tuple[Any, Any]]
    version: int
    nbytes: int


class PrefixCache:
    """An LRU store of :class:`PrefixEntry`, bounded by bytes and by ``max_entries``.

    Entries are indexed by (length, last token), so a lookup costs one dictionary probe per
    distinct entry length, not a comparison with every entry.
    """

    def __init__(self, max_bytes: int, max_entries: int = 4096):
        self.max_bytes = int(max_bytes)
        self.max_entries = int(max_entries)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.reused_tokens = 0
        self._entries: OrderedDict[int, PrefixEntry] = OrderedDict()
        self._index: dict[tuple[int, int], list[PrefixEntry]] = {}
        self._lengths: Counter[int] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, prompt: list[int], version: int) -> PrefixEntry | None:
        """The longest entry whose ids are a proper prefix of ``prompt`` (at least one token stays new)."""
        for n in sorted((n for n in self._lengths if n < len(prompt)), reverse=True):
            for entry in self._index.get((n, prompt[n - 1]), ()):
                if entry.version == version and prompt[:n] == entry.ids:
                    self.hits += 1
                    self.reused_tokens += n
                    self._entries.move_to_end(id(entry))
                    return entry
        self.misses += 1
        return None

    def store(self, ids: list[int], layers: list[tuple[Any, Any]], version: int) -> None:
        """Keep ``layers`` for ``ids``, evicting the least recently used entries beyond the budget."""
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if not ids or nbytes > self.max_bytes:
            return
        entry = PrefixEntry(list(ids), layers, version, nbytes)
        self._entries[id(entry)] = entry
        self._index.setdefault((len(ids), ids[-1]), []).append(entry)
        self._lengths[len(ids)] += 1
        self.nbytes += nbytes
        while self.nbytes > self.max_bytes or len(self._entries) > self.max_entries:
            self.discard(next(iter(self._entries.values())))

    def discard(self, entry: PrefixEntry) -> None:
        """Drop ``entry`` (its sequence has moved on; a longer entry replaces it)."""
        if self._entries.pop(id(entry), None) is None:
            return
        self.nbytes -= entry.nbytes
        key = (len(entry.ids), entry.ids[-1])
        bucket = self._index[key]
        bucket.remove(entry)
        if not bucket:
            del self._index[key]
        self._lengths[len(entry.ids)] -= 1
        if not self._lengths[len(entry.ids)]:
            del self._lengths[len(entry.ids)]

    def clear(self) -> None:
        self._entries.clear()
        self._index.clear()
        self._lengths.clear()
        self.nbytes = 0
