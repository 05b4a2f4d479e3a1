"""atomic_files.py: files written under a temporary name, fsynced and renamed into place."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.ceres.rollout.plugins.module_utils.common import atomic_files


def test_write_json_atomically_leaves_no_temporary_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "x.manifest.json"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_files.json, "dump", disk_full)
    with pytest.raises(OSError):
        atomic_files.write_json_atomically(str(target), {"a": 1})
    assert os.listdir(tmp_path) == []


def test_staged_output_moves_the_output_and_then_its_manifest_into_place(tmp_path):
    dest, manifest = tmp_path / "data.bin", tmp_path / "data.bin.json"
    with atomic_files.StagedOutput(str(dest), str(manifest)) as staged:
        with open(staged.temp_path, "wb") as handle:
            handle.write(b"complete")
        staged.stage_manifest({"size": 8})
        assert not dest.exists() and not manifest.exists()
        staged.commit()
    assert dest.read_bytes() == b"complete"
    assert json.loads(manifest.read_text()) == {"size": 8}
    assert sorted(os.listdir(tmp_path)) == ["data.bin", "data.bin.json"]


def test_a_failed_commit_says_what_it_could_not_undo(tmp_path, monkeypatch):
    dest, manifest = tmp_path / "data.bin", tmp_path / "data.bin.json"
    dest.write_bytes(b"old")
    real_rename = os.rename
    calls = []

    def rename(source, target):
        calls.append(source)
        if len(calls) == 2:  # the new output into place
            raise OSError(5, "Input/output error")
        if len(calls) == 3:  # moving the old output back
            raise OSError(5, "Input/output error")
        real_rename(source, target)

    monkeypatch.setattr(atomic_files.os, "rename", rename)
    with pytest.raises(atomic_files.CommitFailed) as raised:
        with atomic_files.StagedOutput(str(dest), str(manifest)) as staged:
            with open(staged.temp_path, "wb") as handle:
                handle.write(b"new")
            staged.commit()
    monkeypatch.setattr(atomic_files.os, "rename", real_rename)
    failure = raised.value
    assert failure.had_previous is True and failure.cause.strerror == "Input/output error"
    assert len(failure.left_aside) == 1 and ".data.bin.retired-" in failure.left_aside[0]
    assert "Input/output error" in str(failure)


def test_restrict_to_owner_makes_a_tree_private(tmp_path):
    tree = tmp_path / "out"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("x")
    os.chmod(tree / "sub" / "f", 0o644)
    os.chmod(tree / "sub", 0o755)
    atomic_files.restrict_to_owner(str(tree))
    assert stat.S_IMODE(os.stat(tree).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tree / "sub").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tree / "sub" / "f").st_mode) == 0o600


def test_remove_path_takes_files_trees_and_missing_paths(tmp_path):
    (tmp_path / "tree" / "a").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    for name in ("tree", "file", "missing"):
        atomic_files.remove_path(str(tmp_path / name))
    assert os.listdir(tmp_path) == []
