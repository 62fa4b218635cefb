"""Fixtures for policy tests: the tiny model (built in code, seconds) and the default model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    from agentgym.policy.tiny import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="session")
def tiny_policy(tiny_model):
    from agentgym.policy.hf import HFPolicy

    return HFPolicy(tiny_model)


@pytest.fixture(scope="session")
def default_model() -> str:
    from agentgym.policy.default_model import default_model_path

    return str(default_model_path())
