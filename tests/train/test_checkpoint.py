"""Checkpoints: atomic, checksummed, corrupted or partial ones never loaded, pruned."""

import json

from agentgym.train.checkpoint import latest_valid, list_checkpoints, save_checkpoint, step_dir, verify


def writer(text):
    return lambda path: path.write_text(text)


def test_save_verify_prune(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"a.txt": writer(f"step {step}")}, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 3]
    assert verify(step_dir(tmp_path, 3)) == 3
    assert latest_valid(tmp_path) == step_dir(tmp_path, 3)


def test_corrupted_partial_and_temporary_are_skipped(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"a.txt": writer(f"step {step}"), "b.bin": writer("x" * 100)})
    (step_dir(tmp_path, 4) / "b.bin").write_text("y" * 100)  # same size, wrong bytes
    (step_dir(tmp_path, 3) / "manifest.json").unlink()  # crashed before the manifest
    (step_dir(tmp_path, 2) / "a.txt").write_text("trunc")  # truncated file
    (tmp_path / ".tmp-step-000009-1").mkdir()  # a crash mid-write
    assert latest_valid(tmp_path) == step_dir(tmp_path, 1)
    m = json.loads((step_dir(tmp_path, 1) / "manifest.json").read_text())
    assert set(m["files"]) == {"a.txt", "b.bin"}


def test_resave_same_step_replaces(tmp_path):
    save_checkpoint(tmp_path, 5, {"a.txt": writer("old")})
    save_checkpoint(tmp_path, 5, {"a.txt": writer("new")})
    assert (step_dir(tmp_path, 5) / "a.txt").read_text() == "new"
    assert verify(step_dir(tmp_path, 5)) == 5
