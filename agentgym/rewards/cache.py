"""A cache of judgments keyed by a hash of everything that decides the verdict.

The key covers the judge's identity (policy, prompt template, sampling settings),
the criterion text and scale, the reference the judge sees and the response. Only
successful judgments are stored, so failures are retried next time. With a ``path``
the cache persists as JSONL: read once when opened, appended off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any


def judgment_key(*parts: Any) -> str:
    """A stable sha256 over JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class JudgmentCache:
    """In-memory LRU of ``key -> judgment dict``, optionally backed by a JSONL file."""

    def __init__(self, path: str | Path | None = None, max_entries: int = 200_000):
        self.path = Path(path) if path else None
        self.max_entries = max_entries
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        if self.path and self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                        self._data[row["key"]] = row["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a torn last line from a crash
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def aput_many(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        """Store several entries; the file append runs in a worker thread."""
        for key, value in items:
            self.put(key, value)
        if self.path and items:
            await asyncio.to_thread(self._append, items)

    def _append(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            for key, value in items:
                fh.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")
