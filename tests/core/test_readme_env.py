"""The README's "Write and register a new environment" example, as a user would use it: its package
is extracted from the README, pip-installed (into a temp folder), listed, checked, evaluated with
``scripted:oracle`` at 1.0 and trained two steps with its own ``lock.yaml``."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Write and register a new environment"


def readme_files() -> dict[str, str]:
    """The section's fenced blocks whose first line names a file (``# my_envs/__init__.py``)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION):]
    section = section[: section.index("\n## ", len(SECTION))]
    files = {}
    for body in re.findall(r"```[a-z]*\n(.*?)```", section, re.DOTALL):
        first, _, rest = body.partition("\n")
        name = re.match(r"#\s*([\w./-]+\.(?:py|toml|yaml))", first)
        if name:
            files[name.group(1)] = body if name.group(1).endswith(".py") else rest
    return files


def test_the_readme_names_every_file_of_the_package():
    assert set(readme_files()) == {"my_envs/__init__.py", "pyproject.toml", "lock.yaml"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example package pip-installed into a temp site folder (the shared venv is left alone)."""
    root = tmp_path_factory.mktemp("readme")
    pkg = root / "pkg"
    for name, body in readme_files().items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(pkg)], check=True, capture_output=True, timeout=300)
    return pkg, site


def agentgym(installed, *args, timeout=600):
    pkg, site = installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    return subprocess.run([sys.executable, "-m", "agentgym", *args], cwd=pkg, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_readme_env_installs_lists_checks_and_scores_1_with_the_oracle(installed):
    listing = agentgym(installed, "envs", "list")
    assert listing.returncode == 0 and "lock/v0" in listing.stdout and "listen, try_code" in listing.stdout
    check = agentgym(installed, "envs", "check", "lock/v0", "--fuzz", "300")
    assert check.returncode == 0 and "FAIL" not in check.stdout, check.stdout + check.stderr
    out = installed[0] / "eval-oracle"
    ev = agentgym(installed, "eval", "--env", "lock/v0", "--policy", "scripted:oracle", "--num-tasks", "10",
                  "--out", str(out), "--no-progress")
    assert ev.returncode == 0, ev.stderr
    assert json.loads((out / "results.json").read_text())["overall"]["success_rate"] == 1.0


@pytest.mark.slow
def test_readme_env_trains_two_steps_with_a_tiny_model(installed, tiny_folder):
    run = installed[0] / "runs" / "tiny"
    train = agentgym(installed, "train", "lock.yaml", f"model.policy=hf:{tiny_folder}", f"run_dir={run}",
                     "--no-progress")
    assert train.returncode == 0, train.stderr[-2000:]
    assert json.loads(train.stdout.strip().splitlines()[-1])["final_step"] == 2
    assert (run / "final").is_dir()


@pytest.mark.slow
@pytest.mark.model
def test_readme_env_trains_two_steps_with_the_default_model(installed):
    run = installed[0] / "runs" / "default"
    train = agentgym(installed, "train", "lock.yaml", f"run_dir={run}", "--no-progress", timeout=1200)
    assert train.returncode == 0, train.stderr[-2000:]
    assert json.loads(train.stdout.strip().splitlines()[-1])["final_step"] == 2
    # SmolLM2's template drops tools: the schemas reached the model through the system prompt
    assert "ignores `tools`" in train.stderr
    from transformers import AutoTokenizer

    from agentgym.policy.default_model import default_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    first = json.loads((run / "trajectories" / "step-000001.jsonl").read_text().splitlines()[0])
    prompt = tokenizer.decode(first["token_ids"][: first["loss_mask"].index(1)])
    assert '"name": "try_code"' in prompt and '"name": "listen"' in prompt
