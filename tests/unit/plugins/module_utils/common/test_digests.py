"""digests.py: sha256 of files and of sets of files."""

from __future__ import annotations

import hashlib
import subprocess

from ansible_collections.ceres.rollout.plugins.module_utils.common import digests


def test_digest_file_reads_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(digests, "READ_CHUNK_BYTES", 7)
    path = tmp_path / "f"
    path.write_bytes(b"0123456789" * 5)
    assert digests.digest_file(str(path), sync=True) == digests.FileDigest(
        size_bytes=50, sha256=hashlib.sha256(b"0123456789" * 5).hexdigest()
    )


def test_listing_sha256_is_the_sha256_of_what_sha256sum_prints(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_bytes(b"x")
    (tmp_path / "a").write_bytes(b"a")
    files = {name: digests.digest_file(path) for name, path in digests.files_under(str(tmp_path)).items()}
    assert sorted(files) == ["a", "b/x"]
    printed = subprocess.run(["sha256sum", "a", "b/x"], cwd=tmp_path, check=True, capture_output=True).stdout
    assert digests.listing_sha256(files) == hashlib.sha256(printed).hexdigest()
    as_dicts = {name: {"size_bytes": d.size_bytes, "sha256": d.sha256} for name, d in files.items()}
    assert digests.listing_sha256(as_dicts) == digests.listing_sha256(files)
