"""Atomic checkpoints with a checksummed manifest; only complete ones are ever loaded.

A checkpoint is a folder ``checkpoints/step-000010/`` holding whatever files the
learner writes (weights, optimizer, random states, trainer state) plus
``manifest.json`` listing each file's size and SHA-256. It is written as
``checkpoints/.tmp-step-000010-<pid>/``, every file fsynced, the manifest written
last, then renamed into place (rename is atomic on POSIX) and the parent fsynced. A
crash at any moment leaves either the old set of checkpoints or the new one, plus
maybe a temporary folder that is ignored and swept. On load, folders are tried newest
first and one whose manifest is missing or whose files do not match it is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_NAME = re.compile(r"^step-(\d+)$")

Writer = Callable[[Path], None]
"""Writes one file at the given path."""


class CheckpointError(Exception):
    """A checkpoint folder is incomplete or does not match its manifest."""


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step-{step:06d}"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(root: str | Path, step: int, files: dict[str, Writer], keep_last: int | None = None) -> Path:
    """Write ``files`` (name -> writer) as the checkpoint of ``step``, atomically.

    An existing checkpoint of the same step is replaced. Older checkpoints beyond
    ``keep_last`` are deleted afterwards.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    entries = {}
    for name, write in files.items():
        if "/" in name or name == MANIFEST:
            raise ValueError(f"bad checkpoint file name {name!r}")
        path = tmp / name
        write(path)
        _fsync_file(path)
        entries[name] = {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
    manifest = tmp / MANIFEST
    manifest.write_text(json.dumps({"step": step, "files": entries}, indent=1), encoding="utf-8")
    _fsync_file(manifest)
    _fsync_dir(tmp)
    if final.exists():  # re-saving a step (after a resume): move the old one out of the way first
        old = root / f".old-{final.name}-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    _fsync_dir(root)
    if keep_last:
        prune(root, keep_last)
    return final


def verify(path: str | Path) -> int:
    """Check a checkpoint folder against its manifest; return its step or raise CheckpointError."""
    path = Path(path)
    manifest = path / MANIFEST
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        files = data["files"]
        step = int(data["step"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: missing or unreadable manifest ({exc})") from exc
    for name, entry in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{path}: {name} is missing")
        if f.stat().st_size != entry["bytes"]:
            raise CheckpointError(f"{path}: {name} has {f.stat().st_size} bytes, expected {entry['bytes']}")
        if sha256_of(f) != entry["sha256"]:
            raise CheckpointError(f"{path}: {name} does not match its checksum")
    return step


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete-looking checkpoint folders (by name), oldest first; temporary folders excluded."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = _NAME.match(child.name)
        if m and child.is_dir():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_valid(root: str | Path) -> Path | None:
    """The newest checkpoint that passes :func:`verify`; broken ones are skipped with a warning."""
    for _step, path in reversed(list_checkpoints(root)):
        try:
            verify(path)
        except CheckpointError as exc:
            log.warning("skipping checkpoint: %s", exc)
            continue
        return path
    return None


def prune(root: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, and stale temporary folders."""
    root = Path(root)
    for _step, path in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)
    for child in root.iterdir():
        if child.name.startswith((".tmp-", ".old-")) and not child.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(child, ignore_errors=True)
