"""Fixtures shared across test packages, and the ``gpu`` marker's skip."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu``-marked tests with the reason where CUDA is absent (always on CI: it has no GPU)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    reason = None
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        reason = "needs CUDA (CI has no GPU)"
    else:
        try:
            import torch

            if not torch.cuda.is_available():
                reason = "needs CUDA"
        except ImportError:
            reason = "needs CUDA (torch is not installed)"
    if reason is not None:
        skip = pytest.mark.skip(reason=reason)
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A folder with the tiny Llama built in code (no downloads); tests only read it."""
    from agentgym.policy.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"))
