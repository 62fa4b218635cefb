"""`agentgym train` and `agentgym eval` check everything before any model loads: one line naming
the file and key, exit 2, in about a second."""

import time

import pytest

from agentgym.cli import main
from agentgym.core import Task, TextEnv

CONFIG = """\
name: pre
run_dir: {run_dir}
model:
  policy: hf:default     # SmolLM2: a model load would take many seconds
envs:
  - id: maze/v0
    kwargs: {{preset: easy}}
  - id: {second}
    name: second
eval:
  at_end: true
"""


class NoDataEnv(TextEnv):
    """Its constructor looks for a corpus that is not there (a real env's common first failure)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        raise FileNotFoundError("corpus.jsonl not found in /data")

    def generate_task(self, index: int) -> Task:
        return Task(id=str(index), inputs={})


def _run(tmp_path, capsys, second, *extra):
    path = tmp_path / "x.yaml"
    path.write_text(CONFIG.format(run_dir=tmp_path / "run", second=second))
    t = time.perf_counter()
    code = main(["train", str(path), *extra])
    took = time.perf_counter() - t
    err = capsys.readouterr().err.strip()
    return code, err, took, path


@pytest.mark.parametrize("flag", [(), ("--print-config",)])
def test_unknown_env_id_fails_before_the_model_loads(tmp_path, capsys, flag):
    code, err, took, path = _run(tmp_path, capsys, "maze-esy/v0", *flag)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"agentgym: error: {path}: envs.1.id: unknown environment 'maze-esy/v0'.")
    assert "Did you mean 'maze-easy/v0'" in err
    assert took < 10 and not (tmp_path / "run").exists()


def test_bad_kwargs_and_broken_constructors_name_the_key(tmp_path, capsys):
    code, err, _, path = _run(tmp_path, capsys, "maze/v0", "envs.1.kwargs.sise=3")
    assert code == 2 and f"{path}: envs.1.kwargs: bad arguments for maze/v0" in err and "'size'" in err
    import agentgym

    if "preflight-nodata/v0" not in agentgym.registry():
        agentgym.register("preflight-nodata/v0", NoDataEnv)
    code, err, _, path = _run(tmp_path, capsys, "preflight-nodata/v0")
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{path}: envs.1: preflight-nodata/v0 could not start an episode (FileNotFoundError: corpus" in err


def test_bad_policy_run_dir_and_eval_suite(tmp_path, capsys):
    code, err, _, path = _run(tmp_path, capsys, "maze/v0", "model.policy=hf:./no/such/model")
    assert code == 2 and f"{path}: model.policy:" in err and "no such model folder" in err
    (tmp_path / "afile").write_text("")
    code, err, _, path = _run(tmp_path, capsys, "maze/v0", f"run_dir={tmp_path / 'afile' / 'run'}")
    assert code == 2 and f"{path}: run_dir:" in err
    code, err, _, path = _run(tmp_path, capsys, "maze/v0", "eval.suite=no_such_suite")
    assert code == 2 and f"{path}: eval.suite: unknown suite 'no_such_suite'" in err


def test_print_config_of_a_good_config_prints_it(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text(CONFIG.format(run_dir=tmp_path / "run", second="maze/v0"))
    assert main(["train", str(path), "--print-config"]) == 0
    assert "maze/v0" in capsys.readouterr().out and not (tmp_path / "run").exists()


def test_yaml_errors_name_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nenvs: [1\nmodel: {}\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:" in err and "<unicode string>" not in err and len(err.strip().splitlines()) == 1
    assert main(["eval", "--suite", str(path), "--policy", "scripted:oracle"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3:" in err and "<unicode string>" not in err


def test_eval_checks_suite_envs_and_policy_before_loading(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nenvs:\n  - id: maze/v0\n    kwargs: {preset: easy, sise: 3}\n")
    t = time.perf_counter()
    code = main(["eval", "--suite", str(suite), "--policy", "hf:default", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"{suite}: envs.0.kwargs:" in err
    assert time.perf_counter() - t < 10 and not (tmp_path / "out").exists()
    code = main(["eval", "--suite", str(suite), "--policy", "scripted:dance"])
    assert code == 2 and "--policy: unknown scripted policy" in capsys.readouterr().err
