"""A third-party package registers an env through the entry-point group and passes `envs check`."""

import subprocess
import sys
import textwrap

import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "agentgym-plugin-demo"
version = "0.0.1"

[project.entry-points."agentgym.envs"]
plugin_demo = "agentgym_plugin_demo:register"
"""

MODULE = '''
import agentgym
from agentgym import Task, TextEnv, tool


def register():
    agentgym.register("plugin-guess/v0", "agentgym_plugin_demo:GuessEnv", description="guess a digit")


class GuessEnv(TextEnv):
    blocking = False

    def generate_task(self, index):
        return Task(id=f"g{index}", inputs={"round": index}, reference={"digit": index % 10})

    def setup(self, task):
        return "Guess my digit with guess[d]."

    @tool
    def guess(self, digit: int) -> str:
        """Guess the digit.

        Args:
            digit: 0 to 9.
        """
        ok = digit == self.task.reference["digit"]
        if ok:
            self.finish(1.0, True)
        return "right" if ok else "wrong"

    def oracle_action(self):
        return f"guess[{self.task.reference['digit']}]"
'''


@pytest.mark.slow
def test_third_party_package_is_discovered_and_checked(tmp_path):
    pkg = tmp_path / "plugin"
    (pkg / "agentgym_plugin_demo").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "agentgym_plugin_demo" / "__init__.py").write_text(textwrap.dedent(MODULE))
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(pkg)]
    subprocess.run(pip, check=True, capture_output=True)
    try:
        cli = [sys.executable, "-m", "agentgym"]
        listing = subprocess.run(cli + ["envs", "list"], capture_output=True, text=True, check=True)
        assert "plugin-guess/v0" in listing.stdout and "guess a digit" in listing.stdout
        check = subprocess.run(cli + ["envs", "check", "plugin-guess/v0", "--fuzz", "300"], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "FAIL" not in check.stdout
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "agentgym-plugin-demo"], capture_output=True)
