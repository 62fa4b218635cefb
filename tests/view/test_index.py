"""The JSONL line index: offsets, unfinished lines, appends, rewrites, the saved cache."""

from __future__ import annotations

import json
import os

import pytest

from agentgym.view.jsonl_index import FileIndex


class Counting:
    """A summarizer that counts its calls (to see that work is done once)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, line: bytes):
        self.calls += 1
        return json.loads(line)["n"]


def lines(*ns):
    return "".join(json.dumps({"n": n, "pad": "x" * n}) + "\n" for n in ns)


def test_offsets_read_and_empty_lines(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(lines(1, 2) + "\n\n" + lines(3))
    index = FileIndex(path, Counting())
    assert index.refresh() is True
    assert len(index) == 3
    assert [json.loads(b)["n"] for b in index.read([2, 0, 1])] == [3, 1, 2]
    assert index.refresh() is False  # nothing changed


def test_unfinished_last_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "t.jsonl"
    full = lines(1, 2)
    path.write_text(full + '{"n": 3, "pad"')
    index = FileIndex(path, Counting())
    index.refresh()
    assert len(index) == 2 and index.pending > 0
    with path.open("a") as fh:
        fh.write(': "xxx"}\n')
    assert index.refresh() is True
    assert len(index) == 3 and index.pending == 0
    assert index.ensure_summaries() == [1, 2, 3]


def test_append_extends_summaries_without_redoing_them(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(lines(1, 2, 3))
    counting = Counting()
    index = FileIndex(path, counting)
    assert index.ensure_summaries() == [1, 2, 3]
    with path.open("a") as fh:
        fh.write(lines(4, 5))
    assert index.ensure_summaries() == [1, 2, 3, 4, 5]
    assert counting.calls == 5


def test_rewritten_file_is_indexed_again(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(lines(1, 2, 3, 4))
    index = FileIndex(path, Counting())
    index.ensure_summaries()
    generation = index.generation
    path.write_text(lines(7))  # shorter
    assert index.ensure_summaries() == [7]
    assert index.generation > generation
    # same size, other first bytes (a rewrite in place): no stale offsets either
    path.write_text(lines(8, 9))
    index.ensure_summaries()
    with path.open("r+") as fh:
        fh.write(lines(9, 8))
    assert index.ensure_summaries() == [9, 8]
    # replaced by another file (a new inode), as an atomic rewrite does
    tmp = tmp_path / "new.jsonl"
    tmp.write_text(lines(5, 6, 1))
    os.replace(tmp, path)
    assert index.ensure_summaries() == [5, 6, 1]


def test_unreadable_line_has_no_summary(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(lines(1) + "not json at all\n" + "[1, 2]\n" + lines(2))
    index = FileIndex(path, Counting())
    assert index.ensure_summaries() == [1, None, None, 2]


def test_windows_line_endings(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(lines(1, 2).replace("\n", "\r\n").encode())
    index = FileIndex(path, Counting())
    assert index.ensure_summaries() == [1, 2]
    assert index.read([1])[0].endswith(b"}")


def test_saved_index_is_reused_and_extended(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(lines(1, 2, 3))
    cache = tmp_path / "cache"
    FileIndex(path, Counting(), cache_dir=cache).ensure_summaries()
    assert len(list(cache.iterdir())) == 1
    again = Counting()
    index = FileIndex(path, again, cache_dir=cache)
    assert index.ensure_summaries() == [1, 2, 3]
    assert again.calls == 0  # read from the cache
    with path.open("a") as fh:
        fh.write(lines(4))
    third = Counting()
    assert FileIndex(path, third, cache_dir=cache).ensure_summaries() == [1, 2, 3, 4]
    assert third.calls == 1  # only the new line


def test_saved_index_of_another_format_or_a_changed_file_is_not_trusted(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(lines(1, 2, 3))
    cache = tmp_path / "cache"
    FileIndex(path, Counting(), version="a", cache_dir=cache).ensure_summaries()
    other = Counting()
    assert FileIndex(path, other, version="b", cache_dir=cache).ensure_summaries() == [1, 2, 3]
    assert other.calls == 3
    path.write_text(lines(9))
    assert FileIndex(path, Counting(), version="b", cache_dir=cache).ensure_summaries() == [9]
    (next(cache.iterdir())).write_text("{ torn")
    assert FileIndex(path, Counting(), version="b", cache_dir=cache).ensure_summaries() == [9]


def test_missing_file_and_unwritable_cache(tmp_path):
    path = tmp_path / "absent.jsonl"
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    index = FileIndex(path, Counting(), cache_dir=blocker)
    assert index.ensure_summaries() == []
    path.write_text(lines(1))
    assert index.ensure_summaries() == [1]  # saving failed quietly; the index still works


def test_unreadable_file_is_a_sentence(tmp_path):
    path = tmp_path / "t.jsonl"
    path.mkdir()  # something that is there but cannot be read as a file (as root, chmod would not do)
    with pytest.raises(ValueError, match="cannot read .*t.jsonl"):
        FileIndex(path, Counting()).refresh()
