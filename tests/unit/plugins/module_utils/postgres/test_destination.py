"""postgres/destination.py: what may be at dest, and the staged backup that becomes dest and its
manifest only when complete.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
from pg_unit_support import FOREIGN_DIRECTORY, make_backup

from ansible_collections.ceres.rollout.plugins.module_utils.common import atomic_files
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import destination as pg_destination
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.destination import StagedBackup
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import DestinationError

# --- staging: dest and its manifest appear complete or not at all ------------------------


def test_staged_output_removes_the_temporary_output_on_failure_and_leaves_dest_untouched(tmp_path):
    dest = tmp_path / "ceres.dump"
    dest.write_bytes(b"old backup")
    with pytest.raises(RuntimeError):
        with StagedBackup(str(dest)) as staged:
            assert os.path.dirname(staged.temp_path) == str(tmp_path)
            with open(staged.temp_path, "wb") as handle:
                handle.write(b"half a dump")
            raise RuntimeError("pg_dump died")
    assert dest.read_bytes() == b"old backup"
    assert sorted(os.listdir(tmp_path)) == ["ceres.dump"]


def test_staged_output_commit_replaces_a_file_and_its_old_manifest(tmp_path):
    dest = tmp_path / "ceres.dump"
    dest.write_bytes(b"old")
    (tmp_path / "ceres.dump.manifest.json").write_text("{}")
    with StagedBackup(str(dest)) as staged:
        with open(staged.temp_path, "wb") as handle:
            handle.write(b"new")
        staged.commit()
    assert dest.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["ceres.dump"]


def test_staged_output_commit_replaces_a_directory(tmp_path):
    dest = tmp_path / "ceres.d"
    dest.mkdir()
    (dest / "old.dat.gz").write_bytes(b"old")
    with StagedBackup(str(dest)) as staged:
        os.mkdir(staged.temp_path)
        with open(os.path.join(staged.temp_path, "toc.dat"), "wb") as handle:
            handle.write(b"toc")
        staged.commit()
    assert sorted(os.listdir(dest)) == ["toc.dat"]
    assert sorted(os.listdir(tmp_path)) == ["ceres.d"]


def test_check_destination_refuses_an_existing_dest_without_force(tmp_path):
    dest = tmp_path / "ceres.dump"
    dest.write_bytes(b"precious")
    with pytest.raises(DestinationError, match="already exists; set force=true"):
        pg_destination.check_destination(str(dest), force=False)
    pg_destination.check_destination(str(dest), force=True)
    assert dest.read_bytes() == b"precious"


def test_check_destination_refuses_a_leftover_manifest_without_force(tmp_path):
    (tmp_path / "ceres.dump.manifest.json").write_text("{}")
    with pytest.raises(DestinationError, match="manifest.json already exists"):
        pg_destination.check_destination(str(tmp_path / "ceres.dump"), force=False)


def test_check_destination_needs_an_existing_writable_directory(tmp_path, monkeypatch):
    with pytest.raises(DestinationError, match="does not exist"):
        pg_destination.check_destination(str(tmp_path / "missing" / "ceres.dump"), force=False)

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(pg_destination.tempfile, "mkstemp", read_only)
    with pytest.raises(DestinationError, match="not writable: Read-only file system"):
        pg_destination.check_destination(str(tmp_path / "ceres.dump"), force=False)


def tree(directory):
    """{relative path: bytes, or None for a directory} of everything under directory."""
    listing = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            listing[os.path.relpath(os.path.join(root, name), directory) + "/"] = None
        for name in files:
            path = os.path.join(root, name)
            listing[os.path.relpath(path, directory)] = open(path, "rb").read()
    return listing


@pytest.mark.parametrize("backup_format", ["custom", "directory", "tar", "plain"])
@pytest.mark.parametrize("force", [True, False])
def test_check_destination_never_accepts_a_directory_that_is_not_a_previous_backup(tmp_path, backup_format, force):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "other.dump").write_text("precious")
    before = tree(tmp_path)
    with pytest.raises(DestinationError, match="dest %s %s" % (victim, FOREIGN_DIRECTORY)):
        pg_destination.check_destination(str(victim) + "/", force=force, backup_format=backup_format)
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "setup, reason",
    [
        ("toc only", "it has no manifest"),
        ("manifest only", "it holds no toc.dat"),
        ("unlisted file", "it also holds notes.txt, which its manifest does not list"),
        ("unlisted directory", "it also holds keep/, which its manifest does not list"),
        ("broken manifest", "cannot be read"),
    ],
)
def test_a_directory_backup_is_replaced_only_when_it_is_one_of_ours(tmp_path, setup, reason):
    path, manifest = make_backup(tmp_path, "directory")
    pg_destination.check_destination(path, force=True, backup_format="directory")
    if setup == "toc only":
        os.unlink(path + ".manifest.json")
    elif setup == "manifest only":
        os.unlink(os.path.join(path, "toc.dat"))
    elif setup == "unlisted file":
        open(os.path.join(path, "notes.txt"), "w").write("mine")
    elif setup == "unlisted directory":
        os.mkdir(os.path.join(path, "keep"))
        open(os.path.join(path, "keep", "x"), "w").write("mine")
    else:
        open(path + ".manifest.json", "w").write("{")
    with pytest.raises(DestinationError, match=FOREIGN_DIRECTORY) as raised:
        pg_destination.check_destination(path, force=True, backup_format="directory")
    assert reason in str(raised.value)


def test_a_backup_of_one_kind_never_replaces_one_of_another(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").mkdir()
    directory_backup, _manifest = make_backup(tmp_path / "d", "directory")
    file_backup, _manifest = make_backup(tmp_path / "f", "custom")
    before = tree(tmp_path)
    for backup_format in ("custom", "tar", "plain"):
        with pytest.raises(
            DestinationError,
            match="is a previous directory-format backup; a %s-format backup cannot replace it" % backup_format,
        ):
            pg_destination.check_destination(directory_backup, force=True, backup_format=backup_format)
    with pytest.raises(DestinationError, match="is an existing file; a directory-format backup cannot replace it"):
        pg_destination.check_destination(file_backup, force=True, backup_format="directory")
    pg_destination.check_destination(file_backup, force=True, backup_format="tar")
    pg_destination.check_destination(directory_backup, force=True, backup_format="directory")
    assert tree(tmp_path) == before


def test_force_replaces_neither_a_symlink_nor_a_manifest_path_that_is_no_file(tmp_path):
    target = tmp_path / "elsewhere.dump"
    target.write_bytes(b"kept")
    os.symlink(str(target), str(tmp_path / "link.dump"))
    with pytest.raises(DestinationError, match="is a symbolic link"):
        pg_destination.check_destination(str(tmp_path / "link.dump"), force=True)
    (tmp_path / "ceres.dump.manifest.json").mkdir()
    with pytest.raises(DestinationError, match="manifest path of dest, .*, exists and is not a regular file"):
        pg_destination.check_destination(str(tmp_path / "ceres.dump"), force=True)


def stage(staged, backup_format, content):
    if backup_format == "directory":
        os.mkdir(staged.temp_path)
        with open(os.path.join(staged.temp_path, "toc.dat"), "wb") as handle:
            handle.write(content)
    else:
        with open(staged.temp_path, "wb") as handle:
            handle.write(content)


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
def test_commit_moves_the_new_backup_and_then_its_manifest_into_place(tmp_path, backup_format):
    path, _old_manifest = make_backup(tmp_path, backup_format)
    with StagedBackup(path) as staged:
        stage(staged, backup_format, b"new")
        staged.stage_manifest({"new": True})
        assert json.load(open(path + ".manifest.json"))["database"] == "ceres_db", "the old manifest was touched early"
        staged.commit()
    assert json.load(open(path + ".manifest.json")) == {"new": True}
    assert stat.S_IMODE(os.stat(path + ".manifest.json").st_mode) == 0o600
    if backup_format == "directory":
        assert tree(path) == {"toc.dat": b"new"}
    else:
        assert open(path, "rb").read() == b"new"
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(path), os.path.basename(path) + ".manifest.json"])


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
def test_a_manifest_that_cannot_be_written_leaves_the_old_backup_and_no_temporary_file(
    tmp_path, monkeypatch, backup_format
):
    path, _manifest = make_backup(tmp_path, backup_format)
    before = tree(tmp_path)

    def disk_full(document, handle, **options):
        handle.write('{"half')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_files.json, "dump", disk_full)
    with pytest.raises(OSError):
        with StagedBackup(path) as staged:
            stage(staged, backup_format, b"new")
            staged.stage_manifest({"new": True})
            staged.commit()
    assert tree(tmp_path) == before


@pytest.mark.parametrize("backup_format", ["custom", "directory"])
@pytest.mark.parametrize("failing_rename", [1, 2, 3, 4])
def test_a_failed_rename_while_committing_puts_the_old_backup_back(
    tmp_path, monkeypatch, backup_format, failing_rename
):
    """The renames: old manifest aside, old backup aside, new backup in, new manifest in."""
    path, _manifest = make_backup(tmp_path, backup_format)
    before = tree(tmp_path)
    real_rename = os.rename
    calls = []

    def rename(source, target):
        calls.append((source, target))
        if len(calls) == failing_rename:
            raise OSError(5, "Input/output error")
        real_rename(source, target)

    monkeypatch.setattr(atomic_files.os, "rename", rename)
    with pytest.raises(
        DestinationError,
        match="could not move the new backup to .*: Input/output error; the previous backup was left as it was",
    ):
        with StagedBackup(path) as staged:
            stage(staged, backup_format, b"new")
            staged.stage_manifest({"new": True})
            staged.commit()
    monkeypatch.setattr(atomic_files.os, "rename", real_rename)
    assert tree(tmp_path) == before
