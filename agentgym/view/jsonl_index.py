"""A line index of a JSONL file: offsets found once, summaries built once, reused until the file changes.

A run's trajectory files can hold tens of thousands of episodes of about 10 KB each. The viewer
never loads a whole file: it keeps the byte offset of every complete line (one pass of
``bytes.find``, tens of milliseconds per 100 MB), parses only the lines a page shows, and builds
a small summary per line (what the filters need) once. When a live run appends lines the index is
extended, not rebuilt; when the file was rewritten (shorter, another inode, other first bytes) it
is rebuilt. Indexes are saved in agentgym's cache, so reopening a run costs one small JSON read.

A line still being written (no newline yet) is left out until it is finished; a finished line
whose summary cannot be made (not JSON, not an object) has the summary ``None``: pages show it
as unreadable and filters skip it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

Summarize = Callable[[bytes], Any]
_CHUNK = 16 << 20
_HEAD = 4096
_SUMMARY_CHUNK = 2000  # lines parsed per step of a summary build


def cache_root() -> Path:
    """Where indexes are kept: ``$AGENTGYM_CACHE/view``, else ``$XDG_CACHE_HOME/agentgym/view``."""
    if os.environ.get("AGENTGYM_CACHE"):
        base = Path(os.environ["AGENTGYM_CACHE"]).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentgym"
    return base / "view"


class FileIndex:
    """Offsets and summaries of one JSONL file (thread-safe; every method may block on I/O).

    ``summarize`` turns one line (bytes, without the newline) into a JSON-serialisable summary or
    ``None``; ``version`` names its format, so a changed summarizer never reads an old cache.
    """

    def __init__(
        self, path: Path, summarize: Summarize, *, version: str = "1", cache_dir: Path | None = None
    ):
        self.path = Path(path)
        self._summarize = summarize
        self._version = version
        self._cache = None
        if cache_dir is not None:
            digest = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:20]
            self._cache = Path(cache_dir) / f"{digest}.json"
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one summary builder at a time
        self.generation = 0  # bumped whenever the index starts over (the file was rewritten)
        self._reset()
        self._loaded = False
        self._dirty = False

    def _reset(self) -> None:
        self.generation = getattr(self, "generation", 0) + 1
        self.offsets: list[int] = []  # start of each complete line
        self.end = 0  # bytes indexed: just past the last complete line's newline
        self.summaries: list[Any] = []  # for lines [0, len(summaries))
        self.pending = 0  # bytes of an unfinished last line
        self._ino: int | None = None
        self._head = ""  # hash of the first indexed bytes: tells an append from a rewrite
        self._head_len = 0

    # ----------------------------------------------------------------- offsets
    def refresh(self) -> bool:
        """Bring the offsets up to date with the file; True when it grew by lines or was rewritten."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        if not self._loaded:
            self._loaded = True
            self._load_cache()
        try:
            st = self.path.stat()
            fh = self.path.open("rb")
        except FileNotFoundError:
            changed = bool(self.offsets)
            self._reset()
            return changed
        except OSError as exc:  # e.g. no permission: a sentence for the page, not a traceback
            raise ValueError(f"cannot read {self.path} ({exc.strerror or exc})") from exc
        rebuilt = False
        with fh:
            if self._rewritten(fh, st):
                self._reset()
                self._dirty = rebuilt = True
            self._ino = st.st_ino
            if st.st_size == self.end + self.pending and not rebuilt:
                return False
            before = len(self.offsets)
            self._scan(fh, st.st_size)
            if self._head_len < min(_HEAD, self.end):
                self._head_len = min(_HEAD, self.end)
                self._head = _hash(fh, 0, self._head_len)
        if len(self.offsets) != before:
            self._dirty = True
        return rebuilt or len(self.offsets) != before

    def _rewritten(self, fh, st: os.stat_result) -> bool:
        """Shorter than indexed, another inode, or other first bytes: not the file we indexed."""
        if st.st_size < self.end or (self._ino is not None and st.st_ino != self._ino):
            return True
        return bool(self._head_len) and _hash(fh, 0, self._head_len) != self._head

    def _scan(self, fh, size: int) -> None:
        pos = self.end
        fh.seek(pos)
        carry = b""
        while pos < size:
            chunk = fh.read(min(_CHUNK, size - pos))
            if not chunk:
                break
            data = carry + chunk
            base = pos - len(carry)
            start = 0
            while True:
                nl = data.find(b"\n", start)
                if nl < 0:
                    break
                if nl > start:  # an empty line is no record
                    self.offsets.append(base + start)
                start = nl + 1
            self.end = base + start
            carry = data[start:]
            pos += len(chunk)
        self.pending = size - self.end

    def __len__(self) -> int:
        return len(self.offsets)

    def span(self, number: int) -> tuple[int, int]:
        """Byte range of line ``number`` (without its newline)."""
        start = self.offsets[number]
        stop = self.offsets[number + 1] if number + 1 < len(self.offsets) else self.end
        return start, stop - 1

    def read(self, numbers: Sequence[int]) -> list[bytes]:
        """The raw bytes of the given lines (refresh first; numbers must be < len(self))."""
        out = []
        with self._lock, self.path.open("rb") as fh:
            for n in numbers:
                start, stop = self.span(n)
                fh.seek(start)
                out.append(fh.read(stop - start).rstrip(b"\r"))
        return out

    # ----------------------------------------------------------------- summaries
    def summaries_for(self, numbers: Sequence[int]) -> list[Any]:
        """Summaries of some lines: cached ones, the rest made from their bytes (not cached)."""
        known = self.summaries
        missing = [n for n in numbers if n >= len(known)]
        made = dict(zip(missing, (self._safe_summary(b) for b in self.read(missing)))) if missing else {}
        return [known[n] if n < len(known) else made[n] for n in numbers]

    @property
    def complete(self) -> bool:
        """Has every line indexed so far its summary?"""
        return len(self.summaries) >= len(self.offsets)

    def ensure_summaries(self) -> list[Any]:
        """Summaries of every complete line, made once (only new lines after an append).

        Lines are parsed in chunks outside the index lock, so pages, reads and offset updates of
        the same file go on while a large file is summarized (in the background, when a run opens).
        """
        with self._build_lock:
            while True:
                with self._lock:
                    self._refresh()
                    first, generation = len(self.summaries), self.generation
                    if first >= len(self.offsets):
                        self._save_cache()
                        return self.summaries
                    starts = self.offsets[first : first + _SUMMARY_CHUNK] + [
                        self._line_end(first + _SUMMARY_CHUNK)
                    ]
                with self.path.open("rb") as fh:
                    fh.seek(starts[0])
                    data = fh.read(starts[-1] - starts[0])
                base = starts[0]
                made = [
                    self._safe_summary(data[a - base : b - base - 1].rstrip(b"\r"))
                    for a, b in zip(starts, starts[1:])
                ]
                with self._lock:
                    if self.generation == generation and len(self.summaries) == first:
                        self.summaries.extend(made)
                        self._dirty = True

    def _line_end(self, number: int) -> int:
        """Where line ``number`` starts, or the indexed end past the last line."""
        return self.offsets[number] if number < len(self.offsets) else self.end

    def _safe_summary(self, line: bytes) -> Any:
        try:
            return self._summarize(line)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    # ----------------------------------------------------------------- cache
    def _load_cache(self) -> None:
        if self._cache is None or not self._cache.is_file():
            return
        try:
            data = json.loads(self._cache.read_text(encoding="utf-8"))
            if data.get("version") != self._version or data.get("path") != str(self.path.resolve()):
                return
            self.offsets, self.end, self.summaries = (
                list(data["offsets"]),
                int(data["end"]),
                list(data["summaries"]),
            )
            self._ino, self._head, self._head_len = data.get("ino"), str(data["head"]), int(data["head_len"])
            if len(self.summaries) > len(self.offsets):
                raise ValueError("more summaries than lines")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("ignoring the index cache %s (%s)", self._cache, exc)
            self._reset()

    def save(self) -> None:
        """Write the index to the cache (when it changed)."""
        with self._lock:
            self._save_cache()

    def _save_cache(self) -> None:
        if self._cache is None or not self._dirty:
            return
        payload = {
            "version": self._version,
            "path": str(self.path.resolve()),
            "ino": self._ino,
            "head": self._head,
            "head_len": self._head_len,
            "end": self.end,
            "offsets": self.offsets,
            "summaries": self.summaries,
        }
        try:
            self._cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._cache.with_name(f"{self._cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
            tmp.replace(self._cache)
            self._dirty = False
        except OSError as exc:  # a read-only cache only costs the next start an index build
            log.debug("cannot save the index cache %s (%s)", self._cache, exc)


def _hash(fh, start: int, length: int) -> str:
    fh.seek(start)
    return hashlib.sha1(fh.read(length)).hexdigest()


class IndexRegistry:
    """One :class:`FileIndex` per file, shared by every run and request of a server."""

    def __init__(self, summarize: Summarize, *, version: str, cache_dir: Path | None):
        self._summarize = summarize
        self._version = version
        self._cache_dir = cache_dir
        self._indexes: dict[Path, FileIndex] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> FileIndex:
        """The index of ``path`` (made on first use)."""
        path = Path(path)
        with self._lock:
            index = self._indexes.get(path)
            if index is None:
                index = self._indexes[path] = FileIndex(
                    path, self._summarize, version=self._version, cache_dir=self._cache_dir
                )
            return index
