"""Fixtures shared across test packages."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A folder with the tiny Llama built in code (no downloads); tests only read it."""
    from agentgym.policy.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"))
