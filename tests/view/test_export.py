"""The static report: one self-contained file, curves as inline SVG, tables, episodes, no secrets."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from agentgym.view.export import export_report
from agentgym.view.viewer import Viewer
from tests.view.conftest import SECRET


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def test_report_is_self_contained(runs_root, tmp_path):
    path = export_report(Viewer([runs_root]), tmp_path / "report", episodes=5, progress=False)
    html = path.read_text()
    parser = Tags()
    parser.feed(html)
    assert parser.tags.get("script", 0) == 0 and parser.tags.get("link", 0) == 0
    assert all(ref.startswith("#") for ref in parser.refs), [r for r in parser.refs if not r.startswith("#")]
    assert parser.tags["svg"] == 8  # the training run's curves (all but KL, which it did not log)
    assert parser.tags["table"] >= 4  # runs, eval results, training evaluations, the comparison
    assert "Comparisons" in html and "eval/before against eval/after" in html
    assert html.count('class="report-episode"') == 5 * 4  # 5 episodes of each of the 4 runs
    assert SECRET not in html
    ids = set(re.findall(r'id="([^"]+)"', html))
    for ref in parser.refs:
        assert ref[1:] in ids, ref  # every link lands on a section of the report


def test_report_without_episodes(runs_root, tmp_path):
    html = export_report(Viewer([runs_root / "maze"]), tmp_path / "r", episodes=0, progress=False).read_text()
    assert "report-episode" not in html and "<svg" in html
