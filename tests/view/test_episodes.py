"""Episode summaries, filters, pages across files and text search."""

from __future__ import annotations

import json

import pytest

from agentgym.view.episodes import (
    SUMMARY_VERSION,
    EpisodeFilter,
    EpisodeSet,
    SearchCache,
    file_step,
    summarize_line,
)
from agentgym.view.jsonl_index import IndexRegistry
from tests.view.conftest import SECRET, make_trajectory, write_jsonl


def line(data) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def episode_set(files, cache=None):
    return EpisodeSet(
        files, IndexRegistry(summarize_line, version=SUMMARY_VERSION, cache_dir=cache), SearchCache()
    )


def test_summary_of_a_real_trajectory():
    s = summarize_line(line(make_trajectory(3, guided=True, step=4, entry="maze-easy")))
    assert s == {
        "id": "traj-00003",
        "env": "maze/v0",
        "entry": "maze-easy",
        "task": "task-0",
        "reward": 1.0,
        "success": True,
        "status": "completed",
        "guided": True,
        "turns": 2,
        "tokens": 5,
        "step": 4,
        "seconds": 1.03,
        "error": False,
    }


def test_summary_is_tolerant_of_missing_and_unknown_keys():
    s = summarize_line(b'{"id": "x", "brand_new_key": [1, 2], "status": "weird", "reward": NaN}')
    assert s["id"] == "x" and s["env"] == "" and s["turns"] == 0 and s["tokens"] == 0
    assert s["status"] == "completed" and s["reward"] is None and s["success"] is False
    # the total of typed reward parts stands in for a missing reward; turns counted from messages
    s = summarize_line(
        line(
            {
                "reward_parts": {"total": 0.75},
                "messages": [{"role": "assistant", "content": "a"}],
                "turns": "not a list",
                "metadata": "not a dict",
            }
        )
    )
    assert s["reward"] == 0.75 and s["turns"] == 1 and s["guided"] is False
    assert summarize_line(b"[1, 2]") is None


def test_token_arrays_inside_text_do_not_confuse_the_summary():
    data = make_trajectory(1)
    data["messages"][1]["content"] = 'the log said "token_ids": [1, 2] and "loss_mask": [1, 1, 1]'
    s = summarize_line(line(data))
    assert s["tokens"] == 5  # from the real loss_mask, not the quoted text


def test_filter_from_query_and_its_mistakes():
    f = EpisodeFilter.from_query(
        {
            "success": "no",
            "guided": "yes",
            "rmin": "0.5",
            "status": "failed",
            "step": "3",
            "q": "  wall ",
            "env": "",
        }
    )
    assert (f.success, f.guided, f.reward_min, f.status, f.step, f.text, f.env) == (
        False,
        True,
        0.5,
        "failed",
        3,
        "wall",
        None,
    )
    assert not EpisodeFilter.from_query({}).active
    for query, words in (
        ({"success": "maybe"}, "success must be yes or no"),
        ({"rmax": "lots"}, "rmax must be a number"),
        ({"status": "done"}, "status must be one of"),
        ({"step": "-1"}, "step must be a whole number"),
    ):
        with pytest.raises(ValueError, match=words):
            EpisodeFilter.from_query(query)


@pytest.fixture
def two_files(tmp_path):
    a = [make_trajectory(i, step=0, guided=i % 5 == 0) for i in range(30)]
    b = [
        make_trajectory(100 + i, step=1, env="sokoban/v0", status="truncated" if i % 2 else "completed")
        for i in range(25)
    ]
    write_jsonl(tmp_path / "trajectories" / "step-000001.jsonl", a)
    write_jsonl(tmp_path / "trajectories" / "step-000002.jsonl", b)
    return sorted((tmp_path / "trajectories").glob("*.jsonl")), a + b


def test_plain_pages_run_across_files(two_files):
    files, rows = two_files
    episodes = episode_set(files)
    page = episodes.page(EpisodeFilter(), offset=20, limit=20)
    assert page.total == 55
    assert [it.summary["id"] for it in page.items] == [r["id"] for r in rows[20:40]]
    assert [it.step for it in page.items] == [1] * 10 + [2] * 10
    assert all(not index.summaries for index in episodes.indexes)  # a plain page builds no summaries
    assert episodes.page(EpisodeFilter(), offset=50, limit=20).items[-1].summary["id"] == rows[-1]["id"]
    assert episodes.page(EpisodeFilter(), offset=500).items == []


def test_newest_first(two_files):
    files, rows = two_files
    episodes = episode_set(files)
    newest = [r["id"] for r in reversed(rows)]
    assert [it.summary["id"] for it in episodes.page(EpisodeFilter(), 20, 20, newest=True).items] == newest[
        20:40
    ]
    failed = [r["id"] for r in reversed(rows) if not r["success"]]
    page = episodes.page(EpisodeFilter(success=False), 3, 5, newest=True)
    assert [it.summary["id"] for it in page.items] == failed[3:8]
    page = episodes.page(EpisodeFilter(step=1), 0, 3, newest=True)
    assert [it.summary["id"] for it in page.items] == [r["id"] for r in rows[29:26:-1]]


def test_filtered_pages(two_files):
    files, rows = two_files
    episodes = episode_set(files)

    def ids(**query):
        page = episodes.page(EpisodeFilter.from_query(query), 0, 1000)
        return [it.summary["id"] for it in page.items]

    assert ids(success="no") == [r["id"] for r in rows if not r["success"]]
    assert ids(guided="yes") == [r["id"] for r in rows if r["metadata"].get("guided")]
    assert ids(env="sokoban/v0", status="truncated") == [
        r["id"] for r in rows[30:] if r["status"] == "truncated"
    ]
    assert ids(rmin="0.5") == [r["id"] for r in rows if r["reward"] >= 0.5]
    assert ids(rmax="0.5") == [r["id"] for r in rows if r["reward"] <= 0.5]
    assert ids(task="TASK-1") == [r["id"] for r in rows if "task-1" in r["task_id"]]
    assert ids(step="2") == [r["id"] for r in rows[30:]]
    assert ids(step="2", success="yes") == [r["id"] for r in rows[30:] if r["success"]]
    page = episodes.page(EpisodeFilter.from_query({"success": "no"}), offset=5, limit=3)
    assert page.total == sum(not r["success"] for r in rows) and len(page.items) == 3


def test_text_search_reads_what_a_person_reads(tmp_path):
    rows = [
        make_trajectory(i, tools=i == 2, text='he said "hi"\nthen left' if i == 1 else "") for i in range(6)
    ]
    rows[4]["metadata"]["guidance"] = {"text": "Try the Südtor first."}
    path = tmp_path / "t.jsonl"
    write_jsonl(path, rows)
    episodes = episode_set([path])

    def found(text):
        return [it.summary["id"] for it in episodes.page(EpisodeFilter(text=text.lower()), 0, 100).items]

    assert found("final observation of episode 3") == ["traj-00003"]
    assert found('said "hi"\nthen') == ["traj-00001"]  # quotes and newlines are escaped in the file
    assert found("you see a wall 2") == ["traj-00002"]  # a tool result
    assert found("südtor") == ["traj-00004"]  # guidance, non-ASCII
    assert found(SECRET.lower()) == []  # the hidden reference is never searched
    assert found("token_ids") == []  # keys are not text
    # a search goes on from where it stopped when the file grows
    write_jsonl(path, [make_trajectory(9, text="a brand new line")], mode="a")
    assert found("brand new") == ["traj-00009"]


def test_unreadable_and_unfinished_lines_are_reported(tmp_path):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [make_trajectory(0), make_trajectory(1)])
    with path.open("a") as fh:
        fh.write("{broken\n")
        fh.write(json.dumps(make_trajectory(2))[:50])  # still being written
    episodes = episode_set([path])
    plain = episodes.page(EpisodeFilter(), 0, 10)
    assert plain.total == 3 and plain.items[2].summary is None and plain.pending
    filtered = episodes.page(EpisodeFilter(success=False), 0, 10)
    assert filtered.total == 1 and filtered.unreadable == 1


def test_locate_rejects_what_is_not_there(two_files):
    files, _ = two_files
    episodes = episode_set(files)
    with pytest.raises(ValueError, match="no trajectory file number 5"):
        episodes.locate(5, 0)
    with pytest.raises(ValueError, match="has no line 31"):
        episodes.locate(0, 30)
    assert file_step(files[1]) == 2
