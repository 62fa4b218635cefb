import pytest

from agentgym.cli import main
from agentgym.errors import UserError
from agentgym.eval import evaluate, load_suite
from agentgym.eval.runner import TRAJECTORIES
from agentgym.policy.base import Completion
from agentgym.rollout import read_jsonl

from .conftest import OraclePolicy, count_move, transcript

SUITE = """
name: count_small
sampling: {temperature: 0.0, max_tokens: 16}
envs:
  - id: testcount/v0
    num_tasks: 4
    samples: 3
    max_turns: 6
  - id: testcount/v0
    name: one-turn
    num_tasks: 3
    samples: 2
    max_turns: 1
    seed: 1
"""


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "count_small.yaml"
    path.write_text(SUITE)
    return path


class FlakyOracle(OraclePolicy):
    """Fails on the first `fail` requests, then answers like the oracle."""

    def __init__(self, fail: int = 0):
        super().__init__()
        self.fail = fail

    async def generate(self, requests):
        out = []
        for r in requests:
            if self.fail > 0:
                self.fail -= 1
                out.append([Completion(text="", finish_reason="error", error="boom")])
            else:
                out.append([Completion(text=count_move(transcript(r)))])
        return out


def test_suite_loading_and_errors(suite_file, tmp_path):
    suite = load_suite(suite_file)
    assert [e.name for e in suite.envs] == ["testcount/v0", "one-turn"]
    assert suite.envs[0].env_kwargs() == {"split": "test", "max_turns": 6}
    assert suite.with_overrides(samples=5).envs[1].samples == 5
    with pytest.raises(UserError, match="unknown suite"):
        load_suite("no_such_suite")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nenvs:\n  - {id: testcount/v0}\n  - {id: testcount/v0}\n")
    with pytest.raises(UserError, match="unique"):
        load_suite(bad)
    bad.write_text("name: x\nenvs: [{id: testcount/v0, samples: 0}]\n")
    with pytest.raises(UserError, match="samples"):
        load_suite(bad)


def test_shipped_suites_resolve_by_name():
    for name in ("maze_easy", "maze_medium", "maze_hard", "sokoban_easy", "sokoban_medium", "sokoban_hard"):
        suite = load_suite(name)
        assert suite.name == name and suite.envs


def test_evaluate_writes_reports_and_metrics(suite_file, tmp_path):
    out = tmp_path / "run"
    result = evaluate(suite_file, OraclePolicy(), out_dir=out, progress=False)
    r = result.results
    assert r["envs"]["testcount/v0"]["episodes"] == 12 and r["envs"]["one-turn"]["episodes"] == 6
    assert r["envs"]["testcount/v0"]["success_rate"] == 1.0 and r["envs"]["testcount/v0"]["pass@2"] == 1.0
    assert r["envs"]["one-turn"]["mean_turns"] == 1.0
    assert r["overall"]["episodes"] == 18 and r["overall"]["tasks"] == 7
    for name in ("results.json", "report.md", "success_by_env.png", "turns_hist.png", TRAJECTORIES, "suite.yaml"):
        assert (out / name).stat().st_size > 0
    assert "| **overall** | 18 |" in (out / "report.md").read_text()
    assert (out / "success_by_env.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_resumes_skips_finished_retries_failed_and_tolerates_torn_line(suite_file, tmp_path):
    out = tmp_path / "run"
    first = evaluate(suite_file, FlakyOracle(fail=2), out_dir=out, progress=False)
    assert first.results["overall"]["failed"] == 2
    with (out / TRAJECTORIES).open("a") as fh:
        fh.write('{"id": "torn", "env_id": "testc')  # a crash mid-write
    policy = FlakyOracle()
    policy.name = "test-oracle"
    second = evaluate(suite_file, policy, out_dir=out, progress=False)
    assert second.results["episodes_run"] == 2 and second.results["episodes_resumed"] == 16
    assert second.results["overall"]["failed"] == 0 and second.results["overall"]["success_rate"] == 1.0
    assert len(list(read_jsonl(out / TRAJECTORIES))) == 20  # 18 + 2 retried; the torn line was cut
    third = evaluate(suite_file, policy, out_dir=out, progress=False)
    assert third.results["episodes_run"] == 0


def test_out_dir_of_another_policy_is_refused(suite_file, tmp_path):
    evaluate(suite_file, OraclePolicy(), out_dir=tmp_path / "run", num_tasks=1, samples=1, progress=False)
    other = OraclePolicy()
    other.name = "someone-else"
    with pytest.raises(UserError, match="another --out"):
        evaluate(suite_file, other, out_dir=tmp_path / "run", progress=False)
    with pytest.raises(UserError, match="sampling"):
        evaluate(suite_file, OraclePolicy(), out_dir=tmp_path / "run", temperature=0.5, progress=False)
    with pytest.raises(UserError, match="envs.one-turn"):
        evaluate(suite_file, OraclePolicy(), out_dir=tmp_path / "run", max_turns=3, progress=False)
    more = evaluate(suite_file, OraclePolicy(), out_dir=tmp_path / "run", num_tasks=2, samples=2, progress=False)
    assert more.results["episodes_resumed"] == 2 and more.results["overall"]["episodes"] == 8


def test_compare_and_show_cli(suite_file, tmp_path, capsys):
    a = evaluate(suite_file, FlakyOracle(fail=8), out_dir=tmp_path / "a", progress=False)
    b = evaluate(suite_file, OraclePolicy(), out_dir=tmp_path / "b", progress=False)
    assert a.success_rate < b.success_rate
    capsys.readouterr()
    assert main(["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    assert "overall" in text and "B-A" in text
    assert main(["trajectories", "show", str(tmp_path / "b" / TRAJECTORIES), "--color", "never"]) == 0
    shown = capsys.readouterr().out
    assert "--- turn 1" in shown and "model:" in shown and "env [tool]" in shown and "\033[" not in shown
    assert main(["trajectories", "show", str(tmp_path / "a" / TRAJECTORIES), "--failed"]) == 0
    assert "error: PolicyFailure" in capsys.readouterr().out
    assert main(["eval", "compare", str(tmp_path / "missing"), str(tmp_path / "b")]) == 2
    assert main(["eval", "--suite", "no_such_suite", "--policy", "scripted:oracle"]) == 2


def test_help_renders(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "compare" in capsys.readouterr().out
