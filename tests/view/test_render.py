"""The HTML fragments: everything from a run is escaped; charts, tables and comparisons are right."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from agentgym.view.charts import Series, line_chart, nice_ticks, tick_labels
from agentgym.view.viewer import Viewer
from tests.view.conftest import SECRET, make_eval_run, make_trajectory, results_for, write_jsonl

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def hostile_run(tmp_path):
    rows = [make_trajectory(i, entry="maze-easy") for i in range(3)]
    rows[1]["turns"][1]["action"] = EVIL
    rows[1]["messages"][-1]["content"] = EVIL
    rows[1]["messages"][-2]["content"] = EVIL
    rows[1]["task_id"] = EVIL
    rows[1]["env_id"] = EVIL
    rows[1]["error"] = EVIL
    rows[1]["metadata"]["guidance"] = {"text": EVIL, "kind": EVIL}
    rows[1]["reward_parts"] = {EVIL: EVIL}
    rows[1]["messages"][2] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": EVIL, "function": {"name": EVIL, "arguments": EVIL}}],
    }
    folder = tmp_path / "evil"
    folder.mkdir()
    write_jsonl(folder / "trajectories.jsonl", rows)
    (folder / "run.json").write_text('{"suite": "<b>s</b>", "policy": "<i>p</i>"}')
    return folder


def test_run_data_is_always_escaped(tmp_path):
    viewer = Viewer([hostile_run(tmp_path)])
    fragments = [
        viewer.runs_fragment(),
        viewer.head_fragment("evil"),
        viewer.results_fragment("evil"),
        viewer.episodes_fragment("evil", {}),
        viewer.episodes_fragment("evil", {"q": "alert"}),
        viewer.episode_fragment("evil", "0:1"),
        viewer.episode_fragment("evil", "0:1", reveal=True),
        viewer.run_fragment("evil"),
    ]
    for html in fragments:
        assert "<script" not in html and "<img" not in html and "<b>s</b>" not in html, html[:300]
    detail = fragments[5]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in detail


def test_token_text_is_escaped():
    from agentgym.view.episode_html import token_html
    from agentgym.view.tokens import token_view
    from tests.view.test_episode_view import ByteTokenizer

    html = token_html(
        token_view({"token_ids": [60, 115, 62, 10], "loss_mask": [0, 1, 1, 0]}, ByteTokenizer(), "n")
    )
    assert "<s>" not in html and "&lt;" in html and "&gt;" in html and "↵" in html
    assert html.count('class="tok s"') == 3  # two tokens and the legend


def test_reference_only_when_revealed(tmp_path):
    viewer = Viewer([make_eval_run(tmp_path / "e", n=3)])
    hidden = viewer.episode_fragment("e", "0:0")
    assert SECRET not in hidden and 'data-action="reveal"' in hidden
    assert SECRET in viewer.episode_fragment("e", "0:0", reveal=True)
    assert SECRET not in viewer.episode_fragment("e", "0:0", static=True)
    assert SECRET not in viewer.episodes_fragment("e", {"q": SECRET.lower()})


def test_detail_shows_guidance_progress_tool_calls_and_reward_parts(tmp_path):
    rows = [make_trajectory(0, guided=True, tools=True)]
    folder = tmp_path / "e"
    write_jsonl(folder / "trajectories.jsonl", rows)
    html = Viewer([folder]).episode_fragment("e", "0:0")
    assert "guidance injected (hint, append)" in html and "go right 0 times" in html
    assert "progress 0.25" in html and "progress 1" in html
    assert "tool call</span> <b>move</b> <code>call_0_a</code>" in html
    assert "tool result for call_0_b" in html and "you see a wall 0" in html
    assert "reward parts" in html and "tidy" in html
    assert "final observation of episode 0: goal reached" in html


def test_chart_svg_is_well_formed_and_draws_the_series():
    svg = line_chart(
        "reward",
        [
            Series("a", "#000", [(1, 0.1), (2, None), (3, 0.3), (4, 0.4)], key="a"),
            Series("b <eval>", "#111", [(4, 0.5)], [(4, 0.2, 0.8)], key="b"),
        ],
        metric="reward/mean",
    )
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    paths = root.findall(f".//{ns}path")
    assert len(paths) == 2
    assert (
        paths[0].get("d").count("M") == 2 and paths[0].get("d").count("L") == 1
    )  # broken at the missing value
    assert len(root.findall(f".//{ns}line[@class='ci']")) == 1
    assert root.get("data-metric") == "reward/mean"
    empty = ET.fromstring(line_chart("kl", []))
    assert "no data yet" in "".join(empty.itertext())


def test_ticks():
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert len(set(tick_labels(nice_ticks(6.4102, 6.4118)))) == 5
    assert tick_labels([0, 50000, 100000, 150000]) == ["0", "50k", "100k", "150k"]
    assert nice_ticks(3, 3)[0] <= 3 <= nice_ticks(3, 3)[-1]


def test_curves_overlay_and_eval_points(runs_root):
    viewer = Viewer([runs_root])
    html = viewer.curves_fragment(["maze", "maze"])
    assert html.count('data-metric="reward/mean"') == 1 and html.count('class="series" data-run="maze"') >= 18
    assert "Not logged by these runs: KL to the reference" in html
    assert 'class="ci"' in html  # the eval's interval on the success chart
    assert 'data-action="add-metric"' in html and '<option value="loss">' in html
    assert "loss" in viewer.curves_fragment(["maze"], ["loss"])
    assert "Pick one or more training runs" in viewer.curves_fragment(["eval/before"])


def test_eval_table_and_comparison(runs_root):
    viewer = Viewer([runs_root])
    table = viewer.results_fragment("eval/before")
    assert "pass@1" in table and "maze-easy" in table and "overall" in table
    html = viewer.compare_fragment("eval/before", "eval/after")
    # before: wins every 4th of 12 (3/12); after: every 2nd (6/12)
    assert "25.0%" in html and "50.0%" in html and "+25.0" in html
    wide = [make_trajectory(i, entry="maze-easy", success=i >= 10) for i in range(40)]
    narrow = [make_trajectory(i, entry="maze-easy", success=i >= 2) for i in range(40)]
    (runs_root / "eval" / "before" / "results.json").write_text(json.dumps(results_for(wide)))
    (runs_root / "eval" / "after" / "results.json").write_text(json.dumps(results_for(narrow)))
    html = viewer.compare_fragment("eval/before", "eval/after")
    assert "significant" in html
    assert "Choose two eval runs" in viewer.compare_fragment(None, None)


def test_training_page_links_its_evaluations(runs_root):
    viewer = Viewer([runs_root])
    html = viewer.results_fragment("maze")
    assert 'href="#/run/maze/eval/end-step-000003"' in html and "50.0%" in html
    head = viewer.head_fragment("maze/eval/end-step-000003")
    assert 'Evaluation of the training run <a href="#/run/maze">' in head


def test_long_context_stretches_are_cut_but_sampled_tokens_stay():
    from agentgym.view.episode_html import CONTEXT_RUN, token_html
    from agentgym.view.tokens import token_view

    n = 3 * CONTEXT_RUN
    html = token_html(token_view({"token_ids": list(range(n + 3)), "loss_mask": [0] * n + [1, 1, 1]}))
    assert html.count('class="tok s"') == 3 + 1  # every sampled token (and the legend)
    assert html.count('class="tok c"') == CONTEXT_RUN + 1
    assert f"… {n - CONTEXT_RUN} context tokens …" in html
