"""postgres/manifest.py: the manifest written beside a backup, the sha256 of its files, and the
refusal of a backup that does not match its manifest.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess

import pytest
from pg_unit_support import make_backup

from ansible_collections.ceres.rollout.plugins.module_utils.common.digests import FileDigest
from ansible_collections.ceres.rollout.plugins.module_utils.postgres import manifest as pg_manifest
from ansible_collections.ceres.rollout.plugins.module_utils.postgres.errors import ManifestError


def test_directory_sha256_is_what_sha256sum_prints_for_the_sorted_files(tmp_path):
    backup = tmp_path / "ceres.d"
    backup.mkdir()
    for name, content in (("toc.dat", b"toc"), ("3001.dat.gz", b"rows"), ("3000.dat.gz", b"more rows")):
        (backup / name).write_bytes(content)
    files = pg_manifest.digest_backup(str(backup), "directory")
    listing = subprocess.run(["sha256sum"] + sorted(files), cwd=backup, check=True, capture_output=True).stdout

    assert pg_manifest.backup_sha256(files, "directory") == hashlib.sha256(listing).hexdigest()
    assert files["toc.dat"] == FileDigest(size_bytes=3, sha256=hashlib.sha256(b"toc").hexdigest())


def test_single_file_digest_is_named_after_the_final_file(tmp_path):
    staged = tmp_path / ".ceres.dump.partial-1234"
    staged.write_bytes(b"dump")
    files = pg_manifest.digest_backup(str(staged), "custom", sync=True, single_file_name="ceres.dump")
    assert list(files) == ["ceres.dump"]
    assert pg_manifest.backup_sha256(files, "custom") == hashlib.sha256(b"dump").hexdigest()


# --- manifest -----------------------------------------------------------------------------


def test_manifest_is_written_next_to_the_backup_and_reads_back(tmp_path):
    path, manifest = make_backup(tmp_path)
    manifest_path = path + ".manifest.json"

    assert pg_manifest.manifest_path_for(path) == manifest_path
    assert pg_manifest.manifest_path_for(path + "/") == manifest_path
    assert stat.S_IMODE(os.stat(manifest_path).st_mode) == 0o600
    loaded = pg_manifest.load_manifest(manifest_path)
    assert loaded == manifest
    assert loaded["tables"]["public.orders"] == {"rows": 120000, "content_hash": "0f" * 16}
    assert loaded["tables"]["billing.Ünïcode"] == {"rows": 3, "content_hash": None}
    assert loaded["files"] == {"ceres.dump": {"size_bytes": os.path.getsize(path), "sha256": loaded["sha256"]}}
    for key in (
        "database",
        "server_version",
        "pg_dump_version",
        "format",
        "snapshot",
        "started_at",
        "finished_at",
        "content_hash_algorithm",
        "size_bytes",
    ):
        assert loaded[key], key
    pg_manifest.verify_backup_integrity(path, loaded)


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "cannot be read"),
        ("[1, 2]", "not a JSON object"),
        ('{"manifest_version": 1}', "lacks database, format, sha256, files, tables"),
        (
            '{"manifest_version": 99, "database": "d", "format": "custom", "sha256": "", "files": {}, "tables": {}}',
            "version 99",
        ),
    ],
)
def test_load_manifest_rejects_what_it_cannot_trust(tmp_path, content, message):
    manifest_path = tmp_path / "x.manifest.json"
    manifest_path.write_text(content)
    with pytest.raises(ManifestError, match=message):
        pg_manifest.load_manifest(str(manifest_path))


def test_a_missing_manifest_means_an_incomplete_backup(tmp_path):
    with pytest.raises(ManifestError, match="is missing; a backup without a manifest is incomplete"):
        pg_manifest.load_manifest(str(tmp_path / "nothing.manifest.json"))


def test_a_flipped_byte_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path)
    with open(path, "r+b") as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 0x01]))
    problems = pg_manifest.backup_integrity_problems(path, manifest)
    assert len(problems) == 1 and problems[0].startswith("file ceres.dump has sha256 ")
    with pytest.raises(ManifestError, match="refusing the backup"):
        pg_manifest.verify_backup_integrity(path, manifest)


def test_a_truncated_file_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path)
    with open(path, "r+b") as handle:
        handle.truncate(100)
    assert pg_manifest.backup_integrity_problems(path, manifest) == [
        "file ceres.dump has 100 bytes, the manifest says %d" % manifest["size_bytes"]
    ]


def test_a_renamed_backup_with_its_manifest_still_verifies(tmp_path):
    path, manifest = make_backup(tmp_path)
    os.rename(path, str(tmp_path / "renamed.dump"))
    assert pg_manifest.backup_integrity_problems(str(tmp_path / "renamed.dump"), manifest) == []


def test_a_removed_or_added_file_in_a_directory_backup_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path, "directory")
    assert pg_manifest.backup_integrity_problems(path, manifest) == []
    os.unlink(os.path.join(path, "3000.dat.gz"))
    with open(os.path.join(path, "9999.dat.gz"), "wb") as handle:
        handle.write(b"stray")
    assert pg_manifest.backup_integrity_problems(path, manifest) == [
        "file 3000.dat.gz is missing",
        "file 9999.dat.gz is not in the manifest",
    ]


def test_a_backup_of_the_wrong_kind_is_refused(tmp_path):
    path, manifest = make_backup(tmp_path, "directory")
    assert "is a directory" in pg_manifest.backup_integrity_problems(path, dict(manifest, format="custom"))[0]
    assert pg_manifest.backup_integrity_problems(str(tmp_path / "gone"), manifest) == [
        "the backup %s does not exist" % (tmp_path / "gone")
    ]
