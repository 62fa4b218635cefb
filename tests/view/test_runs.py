"""Finding runs and reading their metrics, results and state tolerantly."""

from __future__ import annotations

import json

from agentgym.view.runs import Catalog, MetricsCache, detect_kind, eval_overview, read_json, train_overview
from tests.view.conftest import make_eval_run, make_train_run, write_jsonl


def test_kinds(tmp_path, runs_root):
    assert detect_kind(runs_root / "maze") == "train"
    assert detect_kind(runs_root / "eval" / "before") == "eval"
    assert detect_kind(runs_root / "eval" / "before" / "trajectories.jsonl") == "file"
    assert detect_kind(runs_root) is None and detect_kind(tmp_path / "nope") is None
    started = tmp_path / "starting"
    started.mkdir()
    (started / "config.yaml").write_text("envs: [{id: maze/v0}]\n")  # train wrote only its config so far
    assert detect_kind(started) == "train"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.yaml").write_text("something: else\n")
    assert detect_kind(tmp_path / "other") is None


def test_catalog_finds_runs_below_a_folder_with_nested_evals(runs_root):
    catalog = Catalog([runs_root])
    assert list(catalog.runs) == ["eval/after", "eval/before", "maze", "maze/eval/end-step-000003"]
    nested = catalog.runs["maze/eval/end-step-000003"]
    assert nested.parent == "maze" and catalog.runs["maze"].children == [nested.id]
    assert catalog.warnings == []
    assert [p.name for p in catalog.runs["maze"].trajectory_files()] == [
        f"step-00000{i}.jsonl" for i in (1, 2, 3)
    ]


def test_catalog_warns_and_keeps_ids(tmp_path, runs_root):
    (tmp_path / "empty").mkdir()
    catalog = Catalog(
        [runs_root / "maze", tmp_path / "empty", tmp_path / "missing", runs_root / "eval" / "before"]
    )
    assert set(catalog.runs) == {"maze", "maze/eval/end-step-000003", "before"}
    assert any("empty is not a run folder" in w for w in catalog.warnings)
    assert any("missing does not exist" in w for w in catalog.warnings)
    assert catalog.refresh() is False
    make_eval_run(tmp_path / "empty" / "late")  # a run that appears while the viewer runs
    assert catalog.refresh() is True
    assert (
        "late" in catalog.runs and "maze" in catalog.runs and not any("empty" in w for w in catalog.warnings)
    )


def test_same_names_get_distinct_ids(tmp_path):
    make_eval_run(tmp_path / "a" / "run")
    make_eval_run(tmp_path / "b" / "run")
    catalog = Catalog([tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "a" / "run"])
    assert list(catalog.runs) == ["run", "run~2"]


def test_metrics_skip_torn_lines_and_follow_the_file(tmp_path):
    run = Catalog([make_train_run(tmp_path / "t")]).runs["t"]
    cache = MetricsCache()
    records = cache.read(run)
    assert [r["step"] for r in records] == [1, 2, 3, 3]
    with (run.path / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 4, "kind": "train", "reward/mean": 0.9}\n{"step": 5, "kin')
    assert [r["step"] for r in cache.read(run)] == [1, 2, 3, 3, 4]


def test_train_overview(tmp_path):
    run = Catalog([make_train_run(tmp_path / "t")]).runs["t"]
    ov = train_overview(run, MetricsCache().read(run))
    assert ov["envs"] == ["maze/v0"] and ov["policy"] == "scripted:random"
    assert (ov["steps"], ov["total_steps"], ov["finished"], ov["live"]) == (3, 3, True, False)
    s = ov["success"]
    assert (s.rate, s.low, s.high, s.episodes) == (0.5, 0.2, 0.8, 8) and "eval (end) at step 3" in s.label
    # without evaluations: the last step's training episodes, with a Wilson interval
    records = [r for r in MetricsCache().read(run) if r["kind"] == "train"]
    s = train_overview(run, records)["success"]
    assert abs(s.rate - 0.3) < 1e-9 and s.episodes == 8 and 0 < s.low < 0.3 < s.high < 1


def test_live_and_unfinished_runs(tmp_path):
    run = Catalog([make_train_run(tmp_path / "t", finished=False)]).runs["t"]
    ov = train_overview(run, MetricsCache().read(run))
    assert ov["live"] and not ov["finished"]
    ev = Catalog([make_eval_run(tmp_path / "e", n=10, finished=False, wins_every=2)]).runs["e"]
    ov = eval_overview(ev, {}, (5, 10))
    assert ov["live"] and ov["episodes"] == 10 and ov["success"].rate == 0.5
    assert ov["policy"] == "scripted:random"


def test_eval_overview_from_results(tmp_path):
    run = Catalog([make_eval_run(tmp_path / "e", n=12)]).runs["e"]
    ov = eval_overview(run, read_json(run.path / "results.json"), None)
    assert ov["envs"] == ["maze-easy"] and ov["episodes"] == 12 and ov["success"].rate == 4 / 12


def test_damaged_files_count_as_absent(tmp_path):
    run_dir = make_train_run(tmp_path / "t")
    (run_dir / "summary.json").write_text("{ torn")
    (run_dir / "config.yaml").write_text("envs: [unclosed")
    run = Catalog([run_dir]).runs["t"]
    ov = train_overview(run, MetricsCache().read(run))
    assert ov["envs"] == [] and not ov["finished"] and ov["steps"] == 3
    write_jsonl(run_dir / "metrics.jsonl", [])
    assert train_overview(run, MetricsCache().read(run))["success"] is None
    assert read_json(tmp_path / "missing.json") == {} and read_json(run_dir / "summary.json") == {}
    (run_dir / "list.json").write_text(json.dumps([1]))
    assert read_json(run_dir / "list.json") == {}


def test_a_trajectories_file_is_a_run(tmp_path):
    from agentgym.view.viewer import Viewer

    path = make_eval_run(tmp_path / "e", n=9) / "trajectories.jsonl"
    viewer = Viewer([path])
    run = viewer.catalog.runs["trajectories.jsonl"]
    assert run.kind == "file" and run.trajectory_files() == [path]
    ov = viewer.overview(run)
    assert ov["episodes"] == 9 and ov["success"] is None  # not counted before its summaries are built
    viewer.episodes(run).warm()
    ov = viewer.overview(run)
    assert ov["success"].rate == 3 / 9 and ov["envs"] == ["maze-easy"] and ov["started"]
