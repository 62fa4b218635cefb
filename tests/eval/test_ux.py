"""Small things a new user meets: eval's progress counts turns, compare warns across suites,
`trajectories show --failed` with no failures, serve-policy with a bad port, envs list width."""

import json

from agentgym.cli import main
from agentgym.eval.report import compare

SUITE = "name: {name}\nenvs:\n  - id: maze-easy/v0\n    num_tasks: 3\n"


def test_eval_progress_bar_counts_turns(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE.format(name="s"))
    assert main(["eval", "--suite", str(suite), "--policy", "scripted:oracle", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "turns=" in err and "3/3" in err
    # a run with no failures: --failed says so, exit 0
    assert main(["trajectories", "show", str(tmp_path / "o" / "trajectories.jsonl"), "--failed"]) == 0
    assert "all 3 succeeded" in capsys.readouterr().out


def test_compare_warns_about_different_suites(tmp_path):
    row = {"successes": 1, "episodes": 2, "success_rate": 0.5, "mean_reward": 0.5, "mean_turns": 2.0}
    a = {"suite": "maze_easy", "policy": "p", "envs": {"m": row}, "overall": row}
    b = {**a, "suite": "maze_hard"}
    assert "different suites" in compare(a, b)
    assert "warning" not in compare(a, dict(a))


def test_serve_policy_bad_port_is_one_line(capsys):
    assert main(["serve-policy", "scripted:oracle", "--port", "99999"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--port 99999" in err


def test_envs_list_puts_descriptions_last(capsys):
    assert main(["envs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "TOOLS", "EXTRA", "DESCRIPTION"]
    assert all(line == line.rstrip() for line in lines)


def test_learning_curve_has_whole_step_ticks(tmp_path):
    from agentgym.train.metrics import plot_learning_curve

    records = [{"step": s, "kind": "train", "reward/mean": 0.1 * s, "success/mean": 0.0} for s in (1, 2)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    captured = {}
    real_savefig = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        fig.canvas.draw()
        captured["ticks"] = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 2]
        return real_savefig(fig, *args, **kwargs)

    plt.Figure.savefig = spy
    try:
        plot_learning_curve(tmp_path)
    finally:
        plt.Figure.savefig = real_savefig
    assert captured["ticks"] and all(float(t).is_integer() for t in captured["ticks"])


def test_eval_env_instead_of_a_suite(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["eval", "--env", "maze-easy/v0", "--num-tasks", "4", "--policy", "scripted:oracle", "--out", str(out),
                 "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["overall"]["episodes"] == 4 and results["overall"]["success_rate"] == 1.0
    assert main(["eval", "--env", "maze-esy/v0", "--policy", "scripted:oracle"]) == 2
    assert "envs.0.id: unknown environment 'maze-esy/v0'" in capsys.readouterr().err
    assert main(["eval", "--env", "maze/v0", "--suite", "maze_easy", "--policy", "scripted:oracle"]) == 2
