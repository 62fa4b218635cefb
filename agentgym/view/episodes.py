"""Episode lists of a run: per-line summaries, filters, text search and pages over many JSONL files.

Trajectories are read as plain JSON and tolerantly (unknown keys ignored, missing keys defaulted),
so files from older and newer writers both show. A summary is made without parsing the token
arrays (they are most of a line's bytes): they are cut out with a regular expression first, which
is safe because a JSON string can never contain the unescaped ``"token_ids":`` that the pattern
needs. An unfiltered page parses only its own lines; a filtered one uses the summaries of every
line, built once per file by :class:`~agentgym.view.jsonl_index.FileIndex`.

Text search looks in what a person reads (messages, actions, observations, tool calls, guidance,
errors, task inputs), never in the hidden ``task.reference``; a cheap scan of the raw bytes picks
the candidate lines and each candidate is confirmed on its parsed text.
"""

from __future__ import annotations

import json
import mmap
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from agentgym.view.jsonl_index import FileIndex, IndexRegistry

SUMMARY_VERSION = "episodes-1"
STATUSES = ("completed", "truncated", "failed")
_ARRAYS = re.compile(rb'"(token_ids|loss_mask|logprobs|unguided_prompt_ids)"\s*:\s*\[[^\]]*\]')
_MASK = re.compile(rb'"loss_mask"\s*:\s*\[([^\]]*)\]')
_STEP_FILE = re.compile(r"step-0*(\d+)\.jsonl$")


def parse_light(line: bytes) -> Any:
    """A trajectory line as JSON, without its token arrays (empty lists in their place)."""
    return json.loads(_ARRAYS.sub(rb'"\1":[]', line))


def parse_full(line: bytes) -> Any:
    """A trajectory line as JSON, token arrays included (the token view needs them)."""
    return json.loads(line)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty one (JSON from any writer)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def number(value: Any, default: float | None = 0.0) -> float | None:
    """A finite float from a JSON value, else ``default`` (JSON writers differ on NaN and null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value) if value == value and abs(value) != float("inf") else default


def summarize_line(line: bytes) -> dict[str, Any] | None:
    """What the list and the filters need from one trajectory line; None when it is not one."""
    mask = _MASK.search(line)
    data = parse_light(line)
    if not isinstance(data, dict):
        return None
    meta = as_dict(data.get("metadata"))
    turns = [t for t in as_list(data.get("turns")) if isinstance(t, dict)]
    sampled = mask.group(1).count(b"1") if mask else 0
    if not sampled:
        sampled = int(sum(number(t.get("num_tokens")) or 0 for t in turns))
    task = as_dict(data.get("task"))
    reward = number(data.get("reward"), None)
    if reward is None:
        reward = number(as_dict(data.get("reward_parts")).get("total"), None)
    step = meta.get("step")
    status = data.get("status")
    return {
        "id": str(data.get("id") or ""),
        "env": str(data.get("env_id") or task.get("env_id") or ""),
        "entry": str(as_dict(meta.get("eval")).get("entry") or ""),
        "task": str(data.get("task_id") or task.get("id") or ""),
        "reward": reward,
        "success": bool(data.get("success")),
        "status": status if status in STATUSES else "completed",
        "guided": bool(meta.get("guided") or meta.get("guidance")),
        "turns": len(turns)
        or sum(1 for m in as_list(data.get("messages")) if as_dict(m).get("role") == "assistant"),
        "tokens": sampled,
        "step": step if isinstance(step, int) and not isinstance(step, bool) else None,
        "seconds": number(as_dict(data.get("timings")).get("wall_s"), None),
        "error": bool(data.get("error")),
    }


# ----------------------------------------------------------------------------- filters
@dataclass(frozen=True)
class EpisodeFilter:
    """What a person asked the list to show; every field is optional."""

    env: str | None = None
    task: str | None = None
    success: bool | None = None
    reward_min: float | None = None
    reward_max: float | None = None
    guided: bool | None = None
    status: str | None = None
    step: int | None = None
    text: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "EpisodeFilter":
        """From URL query parameters; a bad value raises ValueError with a sentence for the page."""

        def text(key: str) -> str | None:
            value = (query.get(key) or "").strip()
            return value or None

        def flag(key: str) -> bool | None:
            value = text(key)
            if value is None:
                return None
            if value.lower() in ("1", "yes", "true"):
                return True
            if value.lower() in ("0", "no", "false"):
                return False
            raise ValueError(f"{key} must be yes or no, not {value!r}")

        def real(key: str) -> float | None:
            value = text(key)
            if value is None:
                return None
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"{key} must be a number, not {value!r}") from None

        status = text("status")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        step = text("step")
        if step is not None and not step.isdigit():
            raise ValueError(f"step must be a whole number, not {step!r}")
        return cls(
            env=text("env"),
            task=text("task"),
            success=flag("success"),
            reward_min=real("rmin"),
            reward_max=real("rmax"),
            guided=flag("guided"),
            status=status,
            step=int(step) if step is not None else None,
            text=text("q"),
        )

    @property
    def active(self) -> bool:
        """Is any filter set?"""
        return any(v is not None for v in vars(self).values())

    def matches(self, s: Mapping[str, Any]) -> bool:
        """Does a summary pass every filter but the text search (which needs the line itself)?"""
        if self.env is not None and self.env not in (s["env"], s["entry"]):
            return False
        if self.task is not None and self.task.lower() not in s["task"].lower():
            return False
        if self.success is not None and s["success"] != self.success:
            return False
        if self.guided is not None and s["guided"] != self.guided:
            return False
        if self.status is not None and s["status"] != self.status:
            return False
        reward = s["reward"]
        if self.reward_min is not None and (reward is None or reward < self.reward_min):
            return False
        if self.reward_max is not None and (reward is None or reward > self.reward_max):
            return False
        return True


# ----------------------------------------------------------------------------- search
def searchable_text(data: Mapping[str, Any]) -> str:
    """The text a person reads in a trajectory, lower-cased; never the hidden task.reference."""
    parts: list[str] = [str(data.get(k) or "") for k in ("id", "env_id", "task_id", "error")]
    for message in as_list(data.get("messages")):
        message = as_dict(message)
        parts.append(content_text(message.get("content")))
        for call in as_list(message.get("tool_calls")):
            fn = as_dict(as_dict(call).get("function")) or as_dict(call)
            parts += [str(fn.get("name") or ""), _text(fn.get("arguments"))]
    for turn in as_list(data.get("turns")):
        turn = as_dict(turn)
        parts += [
            str(turn.get("action") or ""),
            content_text(as_dict(turn.get("observation")).get("content")),
        ]
    parts.append(str(as_dict(as_dict(data.get("metadata")).get("guidance")).get("text") or ""))
    task = as_dict(data.get("task"))
    parts += [str(task.get("id") or ""), _text(task.get("inputs"))]
    return "\n".join(parts).lower()


def content_text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of an OpenAI content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            part = as_dict(part)
            out.append(str(part.get("text") if "text" in part else f"[{part.get('type', 'part')}]"))
        return "\n".join(out)
    return _text(content)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class _Search:
    """Which lines of one file contain a query; extended, not redone, as the file grows."""

    def __init__(self, needle: str):
        self.needle = needle
        raw = json.dumps(needle, ensure_ascii=False)[1:-1]
        # Non-ASCII text may be stored as \\u escapes by some writers: confirm every line then.
        self.raw = raw.encode() if raw.isascii() else None
        self.lines: list[int] = []
        self.scanned = 0
        self.generation = -1
        self.lock = threading.Lock()

    def extend(self, index: FileIndex) -> list[int]:
        with self.lock:
            if self.generation != index.generation:
                self.lines, self.scanned, self.generation = [], 0, index.generation
            if self.scanned < len(index):
                self._scan(index, len(index))
            return list(self.lines)

    def _scan(self, index: FileIndex, count: int) -> None:
        with index.path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for n in range(self.scanned, count):
                start, stop = index.span(n)
                line = mm[start:stop]
                if self.raw is not None and self.raw not in line.lower():
                    continue
                try:
                    data = parse_light(line)
                except ValueError:
                    continue
                if isinstance(data, dict) and self.needle in searchable_text(data):
                    self.lines.append(n)
        self.scanned = count


# ----------------------------------------------------------------------------- pages
@dataclass
class Item:
    """One row of a page: where the line is, and its summary (None: an unreadable line)."""

    file: int
    line: int
    summary: dict[str, Any] | None
    step: int | None = None


@dataclass
class Page:
    """A page of the list: the matching total, its rows, and what could not be shown."""

    total: int
    offset: int
    limit: int
    items: list[Item] = field(default_factory=list)
    unreadable: int = 0  # lines skipped by a filtered page because they are not trajectories
    pending: bool = False  # a line is still being written


class EpisodeSet:
    """The trajectories of one run, across its files, in file order (thread-safe; blocking I/O)."""

    def __init__(self, files: Sequence[Path], registry: IndexRegistry, searches: "SearchCache"):
        self.files = [Path(f) for f in files]
        self.indexes = [registry.get(f) for f in self.files]
        self.searches = searches
        self.steps = [file_step(f) for f in self.files]

    def page(self, flt: EpisodeFilter, offset: int = 0, limit: int = 50, *, newest: bool = False) -> Page:
        """Rows ``offset .. offset + limit`` of the trajectories that pass ``flt``, in the order they
        were written (``newest``: the other way round, as a training run's page shows them)."""
        for index in self.indexes:
            index.refresh()
        pending = any(index.pending for index in self.indexes)
        files = [i for i, step in enumerate(self.steps) if flt.step is None or step == flt.step]
        if not flt.active or (flt.step is not None and not _others_active(flt)):
            return self._plain_page(files[::-1] if newest else files, offset, limit, pending, newest)
        hits = list(self._matching(files, flt))
        if newest:
            hits.reverse()
        chosen = hits[offset : offset + limit]
        unreadable = sum(s is None for i in files for s in self.indexes[i].summaries)
        return Page(len(hits), offset, limit, chosen, unreadable, pending)

    def _plain_page(self, files: list[int], offset: int, limit: int, pending: bool, newest: bool) -> Page:
        total = sum(len(self.indexes[i]) for i in files)
        items: list[Item] = []
        skip = offset
        for i in files:
            index = self.indexes[i]
            count = len(index)
            if skip >= count:
                skip -= count
                continue
            take = min(count - skip, limit - len(items))
            numbers = list(
                range(count - 1 - skip, count - 1 - skip - take, -1) if newest else range(skip, skip + take)
            )
            skip = 0
            for n, s in zip(numbers, index.summaries_for(numbers)):
                items.append(Item(i, n, s, self.steps[i]))
            if len(items) >= limit:
                break
        return Page(total, offset, limit, items, 0, pending)

    def _matching(self, files: list[int], flt: EpisodeFilter) -> Iterator[Item]:
        for i in files:
            index = self.indexes[i]
            summaries = index.ensure_summaries()
            lines: Sequence[int] = range(len(summaries))
            if flt.text:
                lines = self.searches.lines(index, flt.text.lower())
            for n in lines:
                s = summaries[n]
                if s is not None and flt.matches(s):
                    yield Item(i, n, s, self.steps[i])

    def warm(self) -> bool:
        """Build every summary now (a background job when a run opens); True when any was missing."""
        missing = False
        for index in self.indexes:
            index.refresh()
            missing = missing or not index.complete
            index.ensure_summaries()
        return missing

    def options(self) -> dict[str, list[str]]:
        """Values seen so far, for the filter menus (only from summaries already built)."""
        envs: set[str] = set()
        for index in self.indexes:
            for s in index.summaries:
                if s is not None:
                    envs.add(s["entry"] or s["env"])
        return {"env": sorted(envs)}

    def locate(self, file: int, line: int) -> tuple[FileIndex, int]:
        """The index and line of one trajectory; ValueError when it is not there."""
        if not 0 <= file < len(self.indexes):
            raise ValueError(f"this run has no trajectory file number {file}")
        index = self.indexes[file]
        index.refresh()
        if not 0 <= line < len(index):
            raise ValueError(f"{self.files[file].name} has no line {line + 1}")
        return index, line


def _others_active(flt: EpisodeFilter) -> bool:
    return any(v is not None for k, v in vars(flt).items() if k != "step")


def file_step(path: Path) -> int | None:
    """The learner step of a training batch file (``step-000012.jsonl`` -> 12)."""
    m = _STEP_FILE.search(path.name)
    return int(m.group(1)) if m else None


class SearchCache:
    """Text searches already run, per file and query (the few most recent queries)."""

    def __init__(self, keep: int = 16):
        self._keep = keep
        self._searches: dict[tuple[Path, str], _Search] = {}
        self._lock = threading.Lock()

    def lines(self, index: FileIndex, needle: str) -> list[int]:
        """Line numbers of ``index`` whose text contains ``needle`` (lower case)."""
        key = (index.path, needle)
        with self._lock:
            search = self._searches.pop(key, None) or _Search(needle)
            self._searches[key] = search  # most recent last
            while len(self._searches) > self._keep * 8:
                self._searches.pop(next(iter(self._searches)))
        return search.extend(index)
