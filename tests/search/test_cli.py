"""`agentgym search index / query / tasks` through the real CLI entry point."""

from __future__ import annotations

import json

from agentgym.cli import main
from envs.search.corpus import write_corpus


def test_index_and_query(tmp_path, small_docs, capsys):
    corpus = write_corpus(small_docs, tmp_path / "c.jsonl")
    assert main(["search", "index", str(corpus), "--backend", "bm25s", "--out", str(tmp_path / "idx")]) == 0
    assert "indexed 8 documents" in capsys.readouterr().out
    assert main(["search", "query", str(tmp_path / "idx"), "Mona Lisa", "-k", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["id"] == "mona"


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["search", "query", str(tmp_path), "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentgym: error:") and "Traceback" not in err
    assert main(["search", "index", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "i")]) == 2


def test_tasks_export(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(["search", "tasks", "multihop", "--split", "test", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) > 50 and json.loads(lines[0])["reference"]["hops"]
